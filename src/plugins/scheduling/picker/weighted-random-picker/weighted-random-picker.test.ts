import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Xoshiro128StarStar } from '../../../../util/random.ts';
import { factoryError, makeHandle, makeScored, names, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { WEIGHTED_RANDOM_PICKER_TYPE, WeightedRandomPicker, weightedRandomPickerFactory } from './index.ts';

function primaryFrequencies(picker: WeightedRandomPicker, scores: ReadonlyArray<readonly [string, number]>, runs: number) {
  const scored = makeScored(scores);
  const counts = new Map<string, number>();
  for (let i = 0; i < runs; i++) {
    const [first] = names(picker.pick(new Map(), scored).targets);
    counts.set(first ?? '', (counts.get(first ?? '') ?? 0) + 1);
  }
  return counts;
}

describe('weighted-random-picker', () => {
  it('picks the primary with probability proportional to score', () => {
    const runs = 20_000;
    const counts = primaryFrequencies(new WeightedRandomPicker('w', new Xoshiro128StarStar(1), 1), [['a', 1], ['b', 2], ['c', 5]], runs);
    for (const [n, share] of [['a', 1 / 8], ['b', 2 / 8], ['c', 5 / 8]] as const) {
      const count = counts.get(n) ?? 0;
      assert.ok(Math.abs(count / runs - share) < 0.015, `${n}: ${count / runs} vs ${share}`);
    }
  });

  it('never picks a zero-score candidate as primary while a positive one exists', () => {
    const counts = primaryFrequencies(new WeightedRandomPicker('w', new Xoshiro128StarStar(2), 1), [['z', 0], ['p', 0.001], ['n', -1]], 2000);
    assert.deepEqual([...counts.keys()], ['p']);
  });

  it('tiny positive scores keep their chance (no underflow of u^(1/s))', () => {
    const counts = primaryFrequencies(new WeightedRandomPicker('w', new Xoshiro128StarStar(3), 1), [['a', 1e-6], ['b', 1e-6]], 4000);
    assert.ok((counts.get('a') ?? 0) > 1700 && (counts.get('b') ?? 0) > 1700, JSON.stringify([...counts]));
  });

  it('all scores zero → uniform like random-picker', () => {
    const runs = 4000;
    const counts = primaryFrequencies(new WeightedRandomPicker('w', new Xoshiro128StarStar(4), 1), [['a', 0], ['b', 0], ['c', 0], ['d', 0]], runs);
    for (const n of ['a', 'b', 'c', 'd']) assert.ok(Math.abs((counts.get(n) ?? 0) - runs / 4) < runs * 0.04);
  });

  it('several targets: distinct, positives before zero scores, zero scores fill the rest', () => {
    const picker = new WeightedRandomPicker('w', new Xoshiro128StarStar(5), 3);
    const scored = makeScored([['z1', 0], ['p1', 1], ['z2', 0], ['p2', 3]]);
    const thirds = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const got = names(picker.pick(new Map(), scored).targets);
      assert.equal(got.length, 3);
      assert.deepEqual(new Set(got.slice(0, 2)), new Set(['p1', 'p2']));
      thirds.add(got[2] ?? '');
    }
    assert.deepEqual(thirds, new Set(['z1', 'z2']));
  });

  it('throws on an empty candidate list', () => {
    assert.throws(() => new WeightedRandomPicker('w', new Xoshiro128StarStar(1)).pick(new Map(), []), /no endpoints available/);
  });

  describe('factory', () => {
    it('defaults from {} and accepts maxNumOfEndpoints', () => {
      const p = weightedRandomPickerFactory('w', {}, makeHandle()) as WeightedRandomPicker;
      assert.deepEqual(p.typedName, { type: WEIGHTED_RANDOM_PICKER_TYPE, name: 'w' });
      assert.equal(p.maxNumOfEndpoints, 1);
      assert.equal((weightedRandomPickerFactory('w', { maxNumOfEndpoints: 4 }, makeHandle()) as WeightedRandomPicker).maxNumOfEndpoints, 4);
    });
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => weightedRandomPickerFactory('w', params, makeHandle())), re));
    }
    // Accepted as upstream accepts them (unknown keys ignored, values ≤ 0 or null → the default), with a warning.
    const lenient: ReadonlyArray<[string, unknown, string]> = [
      ['zero', { maxNumOfEndpoints: 0 }, 'maxNumOfEndpoints'],
      ['null value', { maxNumOfEndpoints: null }, 'maxNumOfEndpoints'],
      ['unknown key', { temperature: 1 }, 'temperature'],
    ];
    for (const [name, params, field] of lenient) {
      it(`accepts ${name} leniently, warning on the field`, () => assert.deepEqual(lenientFields(() => weightedRandomPickerFactory('w', params, makeHandle())), [field]));
    }
  });
});
