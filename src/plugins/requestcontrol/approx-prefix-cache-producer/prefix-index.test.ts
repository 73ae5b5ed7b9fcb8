import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PrefixIndex } from './prefix-index.ts';

const h = (...xs: number[]) => xs.map((x) => BigInt(x));

describe('PrefixIndex', () => {
  it('matches the longest shared prefix and counts blocks per endpoint', () => {
    const index = new PrefixIndex();
    index.add('a', 100, h(1, 2, 3));
    index.add('b', 100, h(1, 2));
    assert.deepEqual(index.match(h(1, 2, 3, 4)), new Map([['a', 3], ['b', 2]]));
    assert.deepEqual(index.match(h(9, 1, 2)), new Map(), 'stops at the first block nobody holds');
    assert.deepEqual(index.match([]), new Map());
  });

  it('counts an endpoint’s blocks within the shared prefix, not only its own contiguous run (upstream walk)', () => {
    const index = new PrefixIndex();
    index.add('a', 100, h(1, 3));
    index.add('b', 100, h(2));
    assert.deepEqual(index.match(h(1, 2, 3)), new Map([['a', 2], ['b', 1]]));
  });

  it('evicts least recently used blocks per endpoint, tail of a prompt first', () => {
    const index = new PrefixIndex();
    index.add('a', 3, h(1, 2, 3));
    index.add('a', 3, h(7, 8)); // 3 (the oldest tail block) then 2 are evicted
    assert.equal(index.blocksOf('a'), 3);
    assert.equal(index.size, 3);
    assert.deepEqual(index.match(h(1)), new Map([['a', 1]]));
    assert.deepEqual(index.match(h(1, 2)), new Map([['a', 1]]));
    assert.deepEqual(index.match(h(7, 8)), new Map([['a', 2]]));
  });

  it('re-adding a block refreshes it instead of duplicating it', () => {
    const index = new PrefixIndex();
    index.add('a', 2, h(1, 2));
    index.add('a', 2, h(1));
    index.add('a', 2, h(3)); // evicts 2, the least recently used
    assert.equal(index.size, 2);
    assert.deepEqual(index.match(h(1)), new Map([['a', 1]]));
    assert.deepEqual(index.match(h(2)), new Map());
  });

  it('eviction on one endpoint leaves other holders of the block intact', () => {
    const index = new PrefixIndex();
    index.add('a', 1, h(1));
    index.add('b', 5, h(1));
    index.add('a', 1, h(2));
    assert.deepEqual(index.match(h(1)), new Map([['b', 1]]));
  });

  it('capacity is fixed at first insertion', () => {
    const index = new PrefixIndex();
    index.add('a', 2, h(1));
    index.add('a', 1000, h(2, 3, 4));
    assert.equal(index.capacityOf('a'), 2);
    assert.equal(index.blocksOf('a'), 2);
  });

  it('removeEndpoint drops its blocks and reverse entries', () => {
    const index = new PrefixIndex();
    index.add('a', 10, h(1, 2));
    index.add('b', 10, h(1));
    index.removeEndpoint('a');
    assert.deepEqual([...index.endpoints()], ['b']);
    assert.equal(index.size, 1);
    assert.deepEqual(index.match(h(1, 2)), new Map([['b', 1]]));
    index.removeEndpoint('missing');
  });
});
