import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MIGRATE_SLOTS, PairTable } from './pair-table.ts';
import { Xoshiro128StarStar } from './random.ts';

const key = (hi: number, lo: number): string => `${hi}:${lo}`;

/** Checks every key of `model` is found with its payload, and that the table holds nothing else. */
function assertHolds(t: PairTable, model: Map<string, [number, number, number]>): void {
  assert.equal(t.size, model.size);
  for (const [hi, lo, v] of model.values()) {
    const s = t.find(hi, lo);
    assert.ok(s >= 0, `key ${key(hi, lo)} lost`);
    assert.equal(t.hiAt(s), hi);
    assert.equal(t.loAt(s), lo);
    assert.equal(t.data[t.off(s)], v);
  }
}

/** Inserts `count` random keys (seeded) with payload word `payload(i)`; returns them and the generator, to draw more. */
function fill(t: PairTable, seed: number, count: number, payload: (i: number) => number): { keys: [number, number][]; r: Xoshiro128StarStar } {
  const r = new Xoshiro128StarStar(seed);
  const keys: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const k: [number, number] = [r.nextUint32(), r.nextUint32()];
    keys.push(k);
    const s = t.insert(k[0], k[1]); // may start a resize: read `data` after
    t.data[t.off(s)] = payload(i);
  }
  return { keys, r };
}

describe('PairTable', () => {
  it('agrees with a Map through growth and shrinking, including operations in the middle of each resize', () => {
    const r = new Xoshiro128StarStar(7);
    const t = new PairTable(1, 16);
    const model = new Map<string, [number, number, number]>();
    const keys: [number, number][] = [];
    let resizes = 0;
    let wasResizing = false;
    // Fill to 6,000 keys, empty to 100, fill again: crosses many grow and shrink thresholds.
    for (const [target, insertShare] of [[6000, 0.8], [100, 0.2], [3000, 0.8]] as const) {
      while (insertShare > 0.5 ? model.size < target : model.size > target) {
        if (r.nextUint32() / 2 ** 32 < insertShare) {
          // A fifth of the keys share their low word with an earlier key: long probe chains, hi decides.
          const lo = keys.length > 0 && r.nextUint32() % 5 === 0 ? keys[r.nextUint32() % keys.length]![1] : r.nextUint32();
          const hi = r.nextUint32();
          const s = t.insert(hi, lo);
          const v = r.nextUint32();
          t.data[t.off(s)] = v;
          if (!model.has(key(hi, lo))) keys.push([hi, lo]);
          model.set(key(hi, lo), [hi, lo, v]);
        } else if (model.size > 0) {
          const at = r.nextUint32() % keys.length;
          const [hi, lo] = keys[at]!;
          keys[at] = keys[keys.length - 1]!;
          keys.pop();
          t.removeAt(t.find(hi, lo));
          model.delete(key(hi, lo));
        }
        if (t.resizing && !wasResizing) resizes++;
        wasResizing = t.resizing;
        if (model.size % 97 === 0) assertHolds(t, model);
      }
      assertHolds(t, model);
    }
    assert.ok(resizes >= 10, `only ${resizes} resizes exercised`);
    const seen = new Set<string>();
    t.forEach((s) => seen.add(key(t.hiAt(s), t.loAt(s))));
    assert.deepEqual([...seen].sort(), [...model.keys()].sort());
  });

  it('spreads a resize over later calls: no insert moves more than MIGRATE_SLOTS slots of the old array', () => {
    const t = new PairTable(1, 1024); // 2,048 slots: grows at the 1,025th key
    const r = new Xoshiro128StarStar(1);
    for (let i = 0; i < 1024; i++) t.insert(r.nextUint32(), r.nextUint32());
    assert.equal(t.capacity, 2048);
    assert.ok(!t.resizing);
    t.insert(r.nextUint32(), r.nextUint32());
    assert.equal(t.capacity, 4096);
    assert.ok(t.resizing, 'the grow moved every entry in one call');
    assert.equal(t.raw(), undefined, 'raw() must not be offered while keys are still in the old array');
    const callsToFinish = 2048 / MIGRATE_SLOTS;
    for (let i = 1; i < callsToFinish; i++) {
      t.insert(r.nextUint32(), r.nextUint32());
      assert.ok(t.resizing, `the resize finished after ${i} more inserts`);
    }
    t.insert(r.nextUint32(), r.nextUint32());
    assert.ok(!t.resizing);
    assert.ok(t.raw() !== undefined);
    assert.equal(t.size, 1025 + callsToFinish);
    assert.equal(t.bytes, 4096 * 4 * 4, 'the old array is released');
  });

  it('keeps a slot from an earlier find valid while later finds move keys out of the old array', () => {
    const t = new PairTable(1, 64);
    const { keys } = fill(t, 3, 65, (i) => i);
    assert.ok(t.resizing);
    const slots = keys.map(([hi, lo]) => t.find(hi, lo));
    keys.forEach(([hi, lo], i) => {
      assert.equal(t.hiAt(slots[i]!), hi);
      assert.equal(t.loAt(slots[i]!), lo);
      assert.equal(t.data[t.off(slots[i]!)], i);
    });
    assert.ok(!t.resizing, 'finding every key moved every key: the old array is dropped');
  });

  it('finishes a resize under way when asked, and before widening, clearing or iterating', () => {
    const t = new PairTable(1, 1024);
    const { keys, r } = fill(t, 5, 1025, (i) => i + 1);
    assert.ok(t.resizing);
    t.widen(2, (o, oo, n, no) => {
      n[no] = o[oo] as number;
      n[no + 1] = 1000 + (o[oo] as number);
    });
    assert.ok(!t.resizing);
    keys.forEach(([hi, lo], i) => {
      const s = t.find(hi, lo);
      assert.equal(t.data[t.off(s)], i + 1);
      assert.equal(t.data[t.off(s) + 1], 1001 + i);
    });
    while (!t.resizing) t.insert(r.nextUint32(), r.nextUint32());
    const size = t.size;
    t.finishResize();
    assert.ok(!t.resizing);
    assert.equal(t.size, size);
    while (!t.resizing) t.insert(r.nextUint32(), r.nextUint32());
    t.clear();
    assert.equal(t.size, 0);
    assert.equal(t.find(keys[0]![0], keys[0]![1]), -1);
    let n = 0;
    t.forEach(() => n++);
    assert.equal(n, 0);
  });
});
