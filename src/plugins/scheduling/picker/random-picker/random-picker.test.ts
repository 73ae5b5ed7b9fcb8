import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Xoshiro128StarStar } from '../../../../util/random.ts';
import { factoryError, makeHandle, makeScored, names, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { RANDOM_PICKER_TYPE, RandomPicker, randomPickerFactory } from './index.ts';

describe('random-picker', () => {
  it('ignores scores: every candidate is primary about 1/n of the time', () => {
    const picker = new RandomPicker('r', new Xoshiro128StarStar(3), 1);
    const scored = makeScored([['a', 100], ['b', 0], ['c', 0.5], ['d', 1]]);
    const counts = new Map<string, number>();
    const runs = 4000;
    for (let i = 0; i < runs; i++) {
      const [first] = names(picker.pick(new Map(), scored).targets);
      counts.set(first ?? '', (counts.get(first ?? '') ?? 0) + 1);
    }
    for (const n of ['a', 'b', 'c', 'd']) {
      const count = counts.get(n) ?? 0;
      assert.ok(Math.abs(count - runs / 4) < runs * 0.04, `${n}: ${count}`);
    }
  });

  const sizes: ReadonlyArray<[number, number, number]> = [
    [4, 1, 1],
    [4, 3, 3],
    [4, 4, 4],
    [2, 5, 2],
  ];
  for (const [n, max, want] of sizes) {
    it(`${n} candidates, maxNumOfEndpoints ${max} → ${want} distinct targets`, () => {
      const picker = new RandomPicker('r', new Xoshiro128StarStar(5), max);
      const scored = makeScored(Array.from({ length: n }, (_, i) => [`e${i}`, i] as const));
      const got = names(picker.pick(new Map(), scored).targets);
      assert.equal(got.length, want);
      assert.equal(new Set(got).size, want);
    });
  }

  it('throws on an empty candidate list', () => {
    assert.throws(() => new RandomPicker('r', new Xoshiro128StarStar(1)).pick(new Map(), []), /no endpoints available/);
  });

  describe('factory', () => {
    it('defaults from {} and accepts maxNumOfEndpoints', () => {
      const p = randomPickerFactory('r', {}, makeHandle()) as RandomPicker;
      assert.deepEqual(p.typedName, { type: RANDOM_PICKER_TYPE, name: 'r' });
      assert.equal(p.maxNumOfEndpoints, 1);
      assert.equal((randomPickerFactory('r', { maxNumOfEndpoints: 2 }, makeHandle()) as RandomPicker).maxNumOfEndpoints, 2);
    });
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => randomPickerFactory('r', params, makeHandle())), re));
    }
    // Accepted as upstream accepts them (unknown keys ignored, values ≤ 0 or null → the default), with a warning.
    const lenient: ReadonlyArray<[string, unknown, string]> = [
      ['zero', { maxNumOfEndpoints: 0 }, 'maxNumOfEndpoints'],
      ['unknown key', { seed: 1 }, 'seed'],
    ];
    for (const [name, params, field] of lenient) {
      it(`accepts ${name} leniently, warning on the field`, () => assert.deepEqual(lenientFields(() => randomPickerFactory('r', params, makeHandle())), [field]));
    }
  });
});
