import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeHandle, makeScored, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { ROUND_ROBIN_PICKER_TYPE, RoundRobinPicker, roundRobinPickerFactory } from './index.ts';

const names = (r: { targets: readonly { endpoint: { metadata: { name: string } } }[] }) => r.targets.map((t) => t.endpoint.metadata.name);

describe('round-robin-picker', () => {
  it('cycles through the candidates in name order, ignoring scores and input order', () => {
    const picker = new RoundRobinPicker();
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push(...names(picker.pick(new Map(), makeScored([['c', 9], ['a', 0], ['b', 5]]))));
    assert.deepEqual(got, ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('returns consecutive fallbacks, capped at the candidate count', () => {
    const picker = new RoundRobinPicker('rr', 2);
    assert.deepEqual(names(picker.pick(new Map(), makeScored([['a', 0], ['b', 0], ['c', 0]]))), ['a', 'b']);
    assert.deepEqual(names(picker.pick(new Map(), makeScored([['a', 0], ['b', 0], ['c', 0]]))), ['b', 'c']);
    assert.deepEqual(names(picker.pick(new Map(), makeScored([['a', 0], ['b', 0], ['c', 0]]))), ['c', 'a']);
    assert.deepEqual(names(new RoundRobinPicker('rr', 5).pick(new Map(), makeScored([['a', 0]]))), ['a']);
  });

  it('keeps rotating when the candidate count changes', () => {
    const picker = new RoundRobinPicker();
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(names(picker.pick(new Map(), makeScored([['a', 0], ['b', 0]])))[0] as string);
    assert.deepEqual([...seen].sort(), ['a', 'b']);
  });

  it('spreads evenly', () => {
    const picker = new RoundRobinPicker();
    const counts = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const n = names(picker.pick(new Map(), makeScored([['a', 0], ['b', 0], ['c', 0], ['d', 0]])))[0] as string;
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    assert.deepEqual([...counts.values()], [100, 100, 100, 100]);
  });

  it('throws on no candidates', () => {
    assert.throws(() => new RoundRobinPicker().pick(new Map(), []), /no endpoints/);
  });

  it('factory: defaults, parameters and rejection', () => {
    const p = roundRobinPickerFactory('rr', {}, makeHandle()) as RoundRobinPicker;
    assert.equal(p.typedName.type, ROUND_ROBIN_PICKER_TYPE);
    assert.equal(p.maxNumOfEndpoints, 1);
    assert.equal((roundRobinPickerFactory('rr', { maxNumOfEndpoints: 3 }, makeHandle()) as RoundRobinPicker).maxNumOfEndpoints, 3);
    assert.deepEqual(lenientFields(() => roundRobinPickerFactory('rr', { maxNumOfEndpoints: 0 }, makeHandle())), ['maxNumOfEndpoints']); // ≤ 0 → the default, as upstream
    assert.deepEqual(lenientFields(() => roundRobinPickerFactory('rr', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
