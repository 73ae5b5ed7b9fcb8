import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PrefixIndex } from './prefix-index.ts';

/** The obvious implementation: per endpoint, an array ordered least → most recently used. */
class ReferenceIndex {
  readonly lru = new Map<string, { capacity: number; order: bigint[] }>();
  add(endpoint: string, capacity: number, hashes: readonly bigint[]): void {
    let e = this.lru.get(endpoint);
    if (e === undefined) {
      e = { capacity, order: [] };
      this.lru.set(endpoint, e);
    }
    for (const h of [...hashes].reverse()) {
      e.order = e.order.filter((x) => x !== h);
      e.order.push(h);
      if (e.order.length > e.capacity) e.order.shift();
    }
  }
  match(hashes: readonly bigint[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const h of hashes) {
      const holders = [...this.lru].filter(([, e]) => e.order.includes(h)).map(([name]) => name);
      if (holders.length === 0) break;
      for (const n of holders) counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    return counts;
  }
  remove(endpoint: string): void {
    this.lru.delete(endpoint);
  }
}

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

  it('reuses the slot of a removed endpoint without mixing up holders', () => {
    const index = new PrefixIndex();
    index.add('a', 10, h(1, 2));
    index.add('b', 10, h(1));
    index.removeEndpoint('a');
    index.add('c', 10, h(2));
    assert.deepEqual(index.match(h(1, 2)), new Map([['b', 1], ['c', 1]]));
    assert.deepEqual(index.match(h(2)), new Map([['c', 1]]));
  });

  it('holds a block on 100 endpoints (more than one 32-endpoint word of holders) and forgets each exactly', () => {
    const index = new PrefixIndex();
    const names = Array.from({ length: 100 }, (_, i) => `ep-${i}`);
    index.add('first', 10, h(9)); // a block indexed before the holders widen keeps its holder
    for (const [i, name] of names.entries()) index.add(name, 10, i % 2 === 0 ? h(1, 2) : h(1));
    const all = index.match(h(1, 2));
    assert.equal(all.size, 100);
    for (const [i, name] of names.entries()) assert.equal(all.get(name), i % 2 === 0 ? 2 : 1, name);
    assert.deepEqual(index.match(h(9)), new Map([['first', 1]]));
    for (const name of names.slice(0, 99)) index.removeEndpoint(name);
    assert.deepEqual(index.match(h(1, 2)), new Map([['ep-99', 1]]));
    index.removeEndpoint('ep-99');
    assert.deepEqual(index.match(h(1)), new Map());
    assert.equal(index.size, 1, 'only first’s block is left');
    index.add('late', 10, h(1));
    assert.deepEqual(index.match(h(1)), new Map([['late', 1]]), 'a reused slot starts with no stale holder bits');
  });

  it('hashes round-trip through the index unchanged across the whole 64-bit range', () => {
    const index = new PrefixIndex();
    const xs = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, 0xdeadbeefcafebaben];
    index.add('a', 100, xs);
    assert.deepEqual(index.hashesOf('a'), [...xs].reverse(), 'touched last-to-first: the first block is most recent');
    assert.deepEqual(index.match(xs), new Map([['a', xs.length]]));
    assert.deepEqual(index.match([2n ** 32n + 1n]), new Map(), 'halves are not confused');
  });

  it('keeps working while its tables grow past their first size and shrink back', () => {
    const index = new PrefixIndex();
    const many = Array.from({ length: 5000 }, (_, i) => BigInt(i) * 0x9e3779b97f4a7c15n % 2n ** 64n);
    index.add('a', 3000, many);
    index.add('b', 10_000, many.slice(0, 2500));
    assert.equal(index.blocksOf('a'), 3000, 'the 2000 last-touched-first blocks (the tail) were evicted');
    assert.equal(index.size, 5500);
    assert.deepEqual(index.match(many.slice(0, 2500)), new Map([['a', 2500], ['b', 2500]]));
    assert.deepEqual(index.match(many.slice(3000, 3001)), new Map(), 'evicted from a, never on b');
    index.removeEndpoint('a');
    assert.equal(index.size, 2500);
    assert.deepEqual(index.match(many.slice(0, 2500)), new Map([['b', 2500]]));
  });

  it('walks an endpoint in pieces while it keeps changing: the last occurrences are its final recency order', () => {
    // a's blocks are 0..11 and b's 100..111, so a walk that strayed onto a node reused by b would show.
    const aHash = fc.array(fc.integer({ min: 0, max: 11 }).map(BigInt), { maxLength: 6 });
    const bHash = fc.array(fc.integer({ min: 100, max: 111 }).map(BigInt), { maxLength: 6 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('a' as const), hashes: aHash }),
      fc.record({ kind: fc.constant('b' as const), hashes: bHash }),
      fc.record({ kind: fc.constant('drop-b' as const) }),
    );
    let finished = 0;
    fc.assert(
      fc.property(aHash, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4 }), fc.array(fc.array(op, { maxLength: 3 }), { maxLength: 12 }), (initial, capacity, piece, steps) => {
        const index = new PrefixIndex();
        index.add('b', 4, h(100, 101));
        index.add('a', capacity, initial);
        const seen: bigint[] = [];
        let step = 0;
        // What a holds when the last piece is taken (the walk has reached the tail; later changes are not in it).
        let held = index.hashesOf('a');
        for (const chunk of index.walkHalves('a', piece)) {
          assert.ok(chunk.n >= 1 && chunk.n <= piece, `a piece holds 1..${piece} blocks, not ${chunk.n}`);
          for (let i = 0; i < chunk.n; i++) seen.push((BigInt(chunk.hi[i] as number) << 32n) | BigInt(chunk.lo[i] as number));
          held = index.hashesOf('a');
          for (const o of steps[step++] ?? []) {
            if (o.kind === 'a') index.add('a', capacity, o.hashes);
            else if (o.kind === 'b') index.add('b', 4, o.hashes);
            else index.removeEndpoint('b');
          }
        }
        assert.ok(seen.every((x) => x < 100n), 'only a\'s blocks');
        if (seen.length >= 2 * capacity) return; // possibly cut at twice the capacity: no completeness claim
        finished++;
        const last = seen.filter((x, i) => held.includes(x) && seen.lastIndexOf(x) === i);
        assert.deepEqual(last, held, 'every block a holds, in its recency order when the walk reached the tail');
      }),
      { seed: 7, numRuns: 400 },
    );
    assert.ok(finished > 100, `${finished} walks ran to the end`);
  });

  it('a walk ends when its endpoint is removed, and an unknown endpoint walks nothing', () => {
    const index = new PrefixIndex();
    index.add('a', 10, h(1, 2, 3, 4, 5));
    const walk = index.walkHalves('a', 2);
    assert.equal(walk.next().value?.n, 2);
    index.removeEndpoint('a');
    index.add('c', 10, h(7, 8, 9)); // reuses a's freed nodes
    assert.equal(walk.next().done, true);
    assert.deepEqual([...index.walkHalves('missing', 2)], []);
  });

  it('a walk into given arrays writes every step there and returns what a walk into new arrays does', () => {
    const index = new PrefixIndex();
    index.add('a', 10, h(1, 2, 3, 4, 5, 6, 7));
    const halves = (c: { n: number; hi: Uint32Array; lo: Uint32Array }): string => Array.from({ length: c.n }, (_, i) => `${c.hi[i]}:${c.lo[i]}`).join(',');
    const fresh = [...index.walkHalves('a', 3)].map(halves);
    const into = { hi: new Uint32Array(3), lo: new Uint32Array(3) };
    const reused: string[] = [];
    for (const c of index.walkHalves('a', 3, into)) {
      assert.ok(c.hi === into.hi && c.lo === into.lo, 'no arrays allocated per step');
      reused.push(halves(c));
    }
    assert.deepEqual(reused, fresh);
    assert.throws(() => index.walkHalves('a', 4, into).next(), /walkHalves: arrays of 3 for steps of 4 blocks/);
  });

  it('agrees with a reference implementation on random operation sequences', () => {
    const endpoint = fc.constantFrom('a', 'b', 'c', 'd');
    const hashes = fc.array(fc.integer({ min: 0, max: 12 }).map(BigInt), { maxLength: 8 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), endpoint, capacity: fc.integer({ min: 1, max: 6 }), hashes }),
      fc.record({ kind: fc.constant('remove' as const), endpoint }),
      fc.record({ kind: fc.constant('match' as const), hashes }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const index = new PrefixIndex();
        const ref = new ReferenceIndex();
        for (const o of ops) {
          if (o.kind === 'add') {
            index.add(o.endpoint, o.capacity, o.hashes);
            ref.add(o.endpoint, ref.lru.get(o.endpoint)?.capacity ?? o.capacity, o.hashes);
          } else if (o.kind === 'remove') {
            index.removeEndpoint(o.endpoint);
            ref.remove(o.endpoint);
          } else {
            assert.deepEqual(index.match(o.hashes), ref.match(o.hashes));
          }
        }
        let total = 0;
        for (const [name, e] of ref.lru) {
          assert.equal(index.blocksOf(name), e.order.length);
          assert.deepEqual(index.hashesOf(name), e.order, 'recency order, least recently used first');
          total += e.order.length;
        }
        assert.equal(index.size, total);
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
