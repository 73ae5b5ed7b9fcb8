import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { createRandomSource, randomIndex, sampleIndices, shuffleInPlace, Xoshiro128StarStar } from './random.ts';

describe('Xoshiro128StarStar', () => {
  it('matches the reference xoshiro128** output for state {1, 2, 3, 4}', () => {
    // First outputs of the reference C implementation (xoshiro128starstar.c) from s = {1, 2, 3, 4}; the first
    // three are also easy to derive by hand from the algorithm.
    const expected = [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804];
    const r = new Xoshiro128StarStar([1, 2, 3, 4]);
    assert.deepEqual(
      expected.map(() => r.nextUint32()),
      expected,
    );
  });

  it('is reproducible for a seed and differs between seeds', () => {
    const a = new Xoshiro128StarStar(42);
    const b = new Xoshiro128StarStar(42);
    const c = new Xoshiro128StarStar(43);
    const sa = Array.from({ length: 8 }, () => a.next());
    const sb = Array.from({ length: 8 }, () => b.next());
    const sc = Array.from({ length: 8 }, () => c.next());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
  });

  it('seed 0 yields a usable (non-zero) state', () => {
    const r = new Xoshiro128StarStar(0);
    const values = new Set(Array.from({ length: 16 }, () => r.nextUint32()));
    assert.ok(values.size > 1);
  });

  it('rejects an all-zero state', () => {
    assert.throws(() => new Xoshiro128StarStar([0, 0, 0, 0]), /must not be all zero/);
  });

  it('next() stays in [0, 1) and is roughly uniform', () => {
    const r = new Xoshiro128StarStar(7);
    const buckets = new Array<number>(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const x = r.next();
      assert.ok(x >= 0 && x < 1);
      buckets[Math.floor(x * 10)]! += 1;
    }
    // Each bucket expects 10 000; 5 standard deviations is ±474.
    for (const count of buckets) assert.ok(Math.abs(count - n / 10) < 500, `bucket count ${count}`);
  });

  it('createRandomSource seeds from entropy when no seed is given', () => {
    const a = createRandomSource();
    const b = createRandomSource();
    assert.notEqual(a.nextUint32() * 2 ** 32 + a.nextUint32(), b.nextUint32() * 2 ** 32 + b.nextUint32());
  });
});

describe('randomIndex / shuffleInPlace', () => {
  it('randomIndex never returns n even from a broken source returning 1', () => {
    assert.equal(randomIndex({ next: () => 1 }, 5), 4);
    assert.equal(randomIndex({ next: () => 0 }, 5), 0);
  });

  it('shuffleInPlace produces every permutation of 3 items about equally often', () => {
    const r = new Xoshiro128StarStar(11);
    const counts = new Map<string, number>();
    const n = 60_000;
    for (let i = 0; i < n; i++) {
      const key = shuffleInPlace(r, ['a', 'b', 'c']).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    assert.equal(counts.size, 6);
    for (const count of counts.values()) assert.ok(Math.abs(count - n / 6) < 500, `permutation count ${count}`);
  });
});

describe('sampleIndices', () => {
  it('returns min(k, n) distinct in-range indices', () => {
    const r = new Xoshiro128StarStar(3);
    for (const [n, k] of [
      [5, 1],
      [5, 3],
      [5, 5],
      [3, 10],
      [0, 2],
    ] as const) {
      const got = sampleIndices(r, n, k);
      assert.equal(got.length, Math.min(n, k));
      assert.equal(new Set(got).size, got.length);
      for (const i of got) assert.ok(i >= 0 && i < n);
    }
  });

  it('puts every index first about equally often', () => {
    const r = new Xoshiro128StarStar(5);
    const firsts = new Array<number>(4).fill(0);
    for (let i = 0; i < 40_000; i++) firsts[sampleIndices(r, 4, 2)[0]!]! += 1;
    for (const c of firsts) assert.ok(Math.abs(c - 10_000) < 450, `first-position count ${c}`);
  });
});
