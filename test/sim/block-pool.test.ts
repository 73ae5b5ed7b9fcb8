import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlockPool } from '../../src/sim/block-pool.ts';

/** Allocates `n` blocks and hashes them with `base + i`. */
function fill(pool: BlockPool, n: number, base: number): number[] {
  const ids: number[] = [];
  assert.equal(pool.allocate(n, ids), true);
  ids.forEach((id, i) => assert.equal(pool.cacheBlock(id, base + i), true));
  return ids;
}

const hashes = (base: number, n: number): number[] => Array.from({ length: n }, (_, i) => base + i);

describe('BlockPool', () => {
  it('evicts the least recently released prefix first, and a request\'s last blocks before its first', () => {
    const pool = new BlockPool(8, 16);
    const a = fill(pool, 4, 100);
    const b = fill(pool, 4, 200);
    pool.release(a);
    pool.release(b);
    assert.equal(pool.numFreeBlocks, 8);
    assert.equal(pool.lookup(hashes(100, 4), 4), 4);

    const evicted: number[] = [];
    pool.onEvict = (h) => evicted.push(h);
    const c: number[] = [];
    assert.equal(pool.allocate(2, c), true);
    assert.deepEqual(evicted, [103, 102]);
    assert.equal(pool.lookup(hashes(100, 4), 4), 2);
    assert.equal(pool.lookup(hashes(200, 4), 4), 4);
  });

  it('never evicts pinned blocks, and a hit moves idle blocks out of the free queue', () => {
    const pool = new BlockPool(6, 16);
    const a = fill(pool, 3, 100);
    pool.release(a);
    const pinned: number[] = [];
    pool.acquireHits(hashes(100, 3), 3, pinned);
    assert.equal(pool.numFreeBlocks, 3);
    const other: number[] = [];
    assert.equal(pool.allocate(3, other), true);
    assert.equal(pool.allocate(1, []), false, 'only pinned blocks are left');
    assert.equal(pool.lookup(hashes(100, 3), 3), 3);
    assert.equal(pool.usage, 1);
  });

  it('allocate is all or nothing', () => {
    const pool = new BlockPool(4, 16);
    fill(pool, 3, 1);
    const out: number[] = [];
    assert.equal(pool.allocate(2, out), false);
    assert.deepEqual(out, []);
    assert.equal(pool.numFreeBlocks, 1);
  });

  it('keeps the first copy of a duplicate hash and counts usage as pinned / total', () => {
    const pool = new BlockPool(4, 16);
    const [x, y] = [[] as number[], [] as number[]];
    pool.allocate(1, x);
    pool.allocate(1, y);
    assert.equal(pool.cacheBlock(x[0] as number, 7), true);
    assert.equal(pool.cacheBlock(y[0] as number, 7), false);
    assert.equal(pool.usage, 0.5);
    pool.release(x);
    pool.release(y);
    assert.equal(pool.usage, 0);
    assert.equal(pool.isCached(7), true);
    assert.throws(() => pool.release(x), /not pinned/);
  });

  it('clearIdle drops idle hashes but keeps pinned ones', () => {
    const pool = new BlockPool(4, 16);
    const a = fill(pool, 2, 10);
    const b = fill(pool, 2, 20);
    pool.release(a);
    assert.deepEqual(pool.clearIdle().sort(), [10, 11]);
    assert.equal(pool.isCached(10), false);
    assert.equal(pool.isCached(20), true);
    pool.release(b);
  });
});
