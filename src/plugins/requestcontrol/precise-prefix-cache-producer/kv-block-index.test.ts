import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KvBlockIndex } from './kv-block-index.ts';
import { KvEventApplier, stripLora } from './ingest.ts';
import type { KvEvent } from './kv-events.ts';
import { RequestKeyer, extraWords } from './request-keys.ts';

const B = 4;
const TIERS = [{ name: 'gpu', weight: 1 }, { name: 'cpu', weight: 0.8 }];

/** A BlockStored of a chain from the root, on the GPU tier, without LoRA or extra keys. */
const gpuStored = (blockHashes: bigint[], tokens: readonly number[]): KvEvent => ({
  type: 'BlockStored', blockHashes, parent: null, tokenIds: Uint32Array.from(tokens), blockSize: B, loraId: null, medium: 'GPU', loraName: null, extraKeys: null, groupIdx: null, specKind: null,
});

/** Blocks of the prompt keyed `k` that `endpoint` is matched with (one endpoint, every tier). */
const matched = (index: KvBlockIndex, k: ReturnType<RequestKeyer['keys']>, endpoint: string): number => index.match(k.hi, k.lo, k.n, [index.slotOf(endpoint)]).blocks[0] as number;

/** Tokens 1…n·B as blocks 1…n, the hashes and tokens of a chain from the root (`gpuStored` stores it). */
function chain(n: number): { blockHashes: bigint[]; tokens: number[] } {
  return { blockHashes: Array.from({ length: n }, (_, i) => BigInt(i + 1)), tokens: Array.from({ length: n * B }, (_, i) => i + 1) };
}

/**
 * Brute-force model of what every endpoint caches: per endpoint, engine key → {request-key chain as a string
 * of the block token lists, copies per tier}. Matching compares token chains directly (no hashing at all).
 */
class Model {
  readonly eps = new Map<string, Map<bigint, { chain: string; refs: number[] }>>();
  readonly spec = new Map<string, Set<string>>();
  ep(name: string) {
    let e = this.eps.get(name);
    if (e === undefined) this.eps.set(name, (e = new Map()));
    return e;
  }
  apply(name: string, events: readonly KvEvent[]): void {
    for (const ev of events) {
      const e = this.ep(name);
      if (ev.type === 'AllBlocksCleared') {
        this.eps.delete(name);
        this.spec.delete(name);
      } else if (ev.type === 'BlockRemoved') {
        const tier = ev.medium === 'CPU' ? 1 : 0;
        for (const h of ev.blockHashes) {
          const x = e.get(h);
          if (x === undefined || x.refs[tier] === 0) continue;
          x.refs[tier]!--;
          if (x.refs.every((r) => r === 0)) e.delete(h);
        }
      } else {
        const tier = ev.medium === 'CPU' ? 1 : 0;
        if (ev.tokenIds.length === 0) {
          for (const h of ev.blockHashes) {
            const x = e.get(h);
            if (x !== undefined) x.refs[tier]!++;
          }
          continue;
        }
        let chain: string;
        if (ev.parent === null) chain = `${ev.loraName ?? ''}`;
        else {
          const p = e.get(ev.parent);
          if (p === undefined) continue;
          chain = p.chain;
        }
        ev.blockHashes.forEach((h, i) => {
          const extra = stripLora(ev.extraKeys?.[i], ev.loraName);
          chain += `|${Array.from(ev.tokenIds.slice(i * B, (i + 1) * B)).join(',')}${extra === null ? '' : JSON.stringify(extra)}`;
          const x = e.get(h);
          if (x === undefined) e.set(h, { chain, refs: [tier === 0 ? 1 : 0, tier === 1 ? 1 : 0] });
          else x.refs[tier]!++;
        });
      }
    }
  }
  /** Chains held per tier by an endpoint. */
  held(name: string): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const x of this.ep(name).values()) {
      const t = out.get(x.chain) ?? [0, 0];
      x.refs.forEach((r, i) => (t[i]! += r > 0 ? 1 : 0));
      out.set(x.chain, t);
    }
    return out;
  }
  match(name: string, lora: string, tokens: number[], salt: string | null): { blocks: number; weighted: number } {
    const held = this.held(name);
    const spec = this.spec.get(name) ?? new Set();
    let chain = lora;
    let blocks = 0;
    let weighted = 0;
    for (let i = 0; (i + 1) * B <= tokens.length; i++) {
      chain += `|${tokens.slice(i * B, (i + 1) * B).join(',')}${i === 0 && salt !== null ? JSON.stringify([salt]) : ''}`;
      const t = held.get(chain);
      const gpu = (t?.[0] ?? 0) > 0 || spec.has(chain);
      const cpu = (t?.[1] ?? 0) > 0;
      if (!gpu && !cpu) break;
      blocks++;
      weighted += gpu ? 1 : 0.8;
    }
    return { blocks, weighted };
  }
}

/** A tiny deterministic PRNG for the workload generator (fast-check picks the seed). */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

describe('KvBlockIndex', () => {
  it('matches a brute-force model of every endpoint cache over random event streams', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
        const r = rng(seed);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
        // Half the runs take a cleared endpoint's bits off 2 slots per call: drains interleave with everything.
        const index = new KvBlockIndex(TIERS, seed % 2 === 0 ? 2 : undefined);
        const keyer = new RequestKeyer(B, 'seed');
        const applier = new KvEventApplier(index, keyer);
        const model = new Model();
        const endpoints = Array.from({ length: 3 + Math.floor(r() * 40) }, (_, i) => `10.0.0.${i}:8000`);
        // Documents share prefixes: tokens drawn from a tiny alphabet, blocks of B.
        const docs = Array.from({ length: 12 }, () => Array.from({ length: B * (1 + Math.floor(r() * 6)) }, () => Math.floor(r() * 3)));
        const loras = [null, null, 'lora-a'];
        const salts = [null, null, 'salt-1'];
        // Engine hashes: random per (endpoint, chain), like a per-process seed.
        const engineHash = new Map<string, bigint>();
        const eh = (ep: string, chain: string): bigint => {
          const k = `${ep}#${chain}`;
          let h = engineHash.get(k);
          if (h === undefined) {
            h = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
            engineHash.set(k, h);
          }
          return h;
        };
        const known = new Map<string, bigint[]>();
        for (let step = 0; step < 150; step++) {
          const ep = pick(endpoints);
          const op = r();
          let events: KvEvent[];
          if (op < 0.5) {
            const doc = pick(docs);
            const lora = pick(loras);
            const salt = pick(salts);
            const nb = doc.length / B;
            const from = Math.floor(r() * nb);
            const to = from + 1 + Math.floor(r() * (nb - from));
            const hashes: bigint[] = [];
            let chain = lora ?? '';
            let parent: bigint | null = null;
            const extra: (unknown[] | null)[] = [];
            for (let b = 0; b < to; b++) {
              const ex = [...(lora === null ? [] : [lora]), ...(b === 0 && salt !== null ? [salt] : [])];
              chain += `|${doc.slice(b * B, (b + 1) * B).join(',')}${JSON.stringify(ex)}`;
              const h = eh(ep, chain);
              if (b < from) parent = h;
              else {
                hashes.push(h);
                extra.push(ex.length === 0 ? null : ex);
              }
            }
            known.set(ep, [...(known.get(ep) ?? []), ...hashes]);
            const tokenIds = Uint32Array.from(doc.slice(from * B, to * B));
            const medium = r() < 0.8 ? 'GPU' : 'CPU';
            events = [{ type: 'BlockStored', blockHashes: hashes, parent, tokenIds, blockSize: B, loraId: null, medium, loraName: lora, extraKeys: extra, groupIdx: null, specKind: null }];
          } else if (op < 0.8) {
            const ks = known.get(ep) ?? [];
            const h = ks.length > 0 && r() < 0.9 ? pick(ks) : 12345n;
            events = [{ type: 'BlockRemoved', blockHashes: [h], medium: r() < 0.8 ? 'GPU' : 'CPU', groupIdx: null }];
          } else if (op < 0.9) {
            const ks = known.get(ep) ?? [];
            events = [{ type: 'BlockStored', blockHashes: ks.slice(0, 3), parent: null, tokenIds: new Uint32Array(0), blockSize: B, loraId: null, medium: 'CPU', loraName: null, extraKeys: null, groupIdx: null, specKind: null }];
          } else if (op < 0.93) {
            events = [{ type: 'AllBlocksCleared' }];
          } else {
            // Speculative insert of a document's keys for this endpoint.
            const doc = pick(docs);
            const k = keyer.keys('', doc, (b) => (b === 0 ? undefined : undefined));
            index.addSpeculative(ep, k.hi, k.lo, k.n);
            const set = model.spec.get(ep) ?? new Set<string>();
            let chain = '';
            for (let b = 0; b < k.n; b++) {
              chain += `|${doc.slice(b * B, (b + 1) * B).join(',')}`;
              set.add(chain);
            }
            model.spec.set(ep, set);
            continue;
          }
          applier.apply(ep, events);
          model.apply(ep, events);
        }
        // Probe: every doc × namespace × salt, over every endpoint at once.
        const slots = endpoints.map((e) => (index.hasEndpoint(e) ? index.slotOf(e) : -1));
        for (const doc of docs) {
          for (const lora of loras) {
            for (const salt of salts) {
              const k = keyer.keys(lora ?? '', doc, (b) => (b === 0 && salt !== null ? extraWords([salt]) : undefined));
              const got = index.match(k.hi, k.lo, k.n, slots);
              endpoints.forEach((ep, c) => {
                const want = model.match(ep, lora ?? '', doc, salt);
                assert.equal(got.blocks[c], want.blocks, `blocks ${ep} seed ${seed}`);
                assert.ok(Math.abs((got.weighted[c] as number) - want.weighted) < 1e-9, `weighted ${ep} seed ${seed}`);
              });
            }
          }
        }
        for (const ep of endpoints) {
          const refs = index.engineRefs(ep);
          const want = new Map([...model.ep(ep)].map(([h, x]) => [h.toString(), x.refs[0]! + x.refs[1]!]));
          assert.deepEqual(refs, want, `engine refs ${ep}`);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('keeps a block cached after one of two duplicate stores is removed, drops it after the second', () => {
    const index = new KvBlockIndex(TIERS);
    const keyer = new RequestKeyer(B);
    const applier = new KvEventApplier(index, keyer);
    const stored = gpuStored([7n], [1, 2, 3, 4]);
    applier.apply('a', [stored, stored]);
    const k = keyer.keys('', [1, 2, 3, 4]);
    const slot = [index.slotOf('a')];
    applier.apply('a', [{ type: 'BlockRemoved', blockHashes: [7n], medium: 'GPU', groupIdx: null }]);
    assert.equal(index.match(k.hi, k.lo, k.n, slot).blocks[0], 1);
    applier.apply('a', [{ type: 'BlockRemoved', blockHashes: [7n], medium: 'GPU', groupIdx: null }]);
    assert.equal(index.match(k.hi, k.lo, k.n, slot).blocks[0], 0);
    assert.equal(index.stats().requestKeys, 0);
  });

  it('matches the whole prefix while its request-key table is still moving entries into a grown array', () => {
    const index = new KvBlockIndex(TIERS);
    const keyer = new RequestKeyer(B);
    const applier = new KvEventApplier(index, keyer);
    // 1,025 blocks: the 1,025th request key grows the table (2,048 slots, grows at half full); nothing is inserted
    // after it, so every other key is still in the old array when match() runs.
    const n = 1025;
    const { blockHashes, tokens } = chain(n);
    applier.apply('a', [gpuStored(blockHashes, tokens)]);
    const k = keyer.keys('', tokens);
    assert.equal(matched(index, k, 'a'), n);
    assert.equal(matched(index, k, 'a'), n, 'a second match, after the first moved every key');
  });

  it('clears an endpoint with live speculations without leaving phantom hits for whoever takes its slot next', () => {
    const index = new KvBlockIndex(TIERS);
    const keyer = new RequestKeyer(B);
    const tokens = [1, 2, 3, 4, 5, 6, 7, 8];
    const k = keyer.keys('', tokens);
    const first = index.addSpeculative('a', k.hi, k.lo, k.n);
    assert.equal(matched(index, k, 'a'), 2);
    index.clear('a'); // AllBlocksCleared while the request routed there is still speculated
    assert.equal(matched(index, k, 'a'), 0, 'a cleared endpoint keeps no speculation');
    assert.equal(matched(index, k, 'b'), 0, 'another endpoint sees nothing of it');
    index.removeSpeculative(first, k.hi, k.lo, k.n); // its expiry, after the clear
    assert.equal(index.stats().requestKeys, 0, 'the speculated keys are dropped with their last bit');
    for (const e of ['c', 'd', 'e']) assert.equal(matched(index, k, e), 0, `${e} (in a freed slot) sees no phantom hit`);
    const again = index.addSpeculative('a', k.hi, k.lo, k.n);
    assert.equal(matched(index, k, 'a'), 2);
    index.removeSpeculative(again, k.hi, k.lo, k.n);
    assert.equal(matched(index, k, 'a'), 0);
  });

  it('clears an endpoint at once for matching and releases its keys over later calls, a bounded number per call', () => {
    const index = new KvBlockIndex(TIERS, 64);
    const keyer = new RequestKeyer(B);
    const applier = new KvEventApplier(index, keyer);
    const n = 1000;
    const { blockHashes, tokens } = chain(n);
    applier.apply('a', [gpuStored(blockHashes, tokens)]);
    const k = keyer.keys('', tokens);
    assert.equal(matched(index, k, 'a'), n);
    applier.apply('a', [{ type: 'AllBlocksCleared' }]);
    assert.equal(matched(index, k, 'a'), 0, 'matched no more at once');
    assert.equal(index.stats().replicas, 0);
    assert.deepEqual(index.stats().byTier, [0, 0]);
    const left = index.stats().requestKeys;
    assert.ok(left > 0 && left < n, `the clear call itself took off only part of the keys (${left} left)`);
    let calls = 0;
    while (index.stats().requestKeys > 0 && calls < 100) {
      index.drainClears();
      calls++;
    }
    assert.equal(index.stats().requestKeys, 0, 'every key released');
    assert.ok(calls <= 2048 / 64, `${calls} calls for a 2,048-slot table at 64 slots per call`);
    // The endpoint stores again: it is matched from its new state only.
    applier.apply('a', [gpuStored(blockHashes.slice(0, 3), tokens.slice(0, 3 * B))]);
    assert.equal(matched(index, k, 'a'), 3);
  });

  it('bounds the slots an engine clearing again and again leaves waiting on speculations, and voids their handles', () => {
    const index = new KvBlockIndex(TIERS);
    const keyer = new RequestKeyer(B);
    const k = keyer.keys('', [1, 2, 3, 4, 5, 6, 7, 8]);
    const stale: number[] = [];
    for (let i = 0; i < 40; i++) {
      stale.push(index.addSpeculative('a', k.hi, k.lo, k.n)); // a request routed to it…
      index.clear('a'); // …and the engine clears its cache again
    }
    assert.ok(index.slotOf('b') <= 33, `slot ${index.slotOf('b')}: retired slots are bounded`);
    const mine = index.addSpeculative('b', k.hi, k.lo, k.n);
    assert.equal(matched(index, k, 'b'), 2);
    for (const h of stale) index.removeSpeculative(h, k.hi, k.lo, k.n); // the old speculations expire
    assert.equal(matched(index, k, 'b'), 2, "an old handle never touches its slot's new occupant");
    index.removeSpeculative(mine, k.hi, k.lo, k.n);
    assert.equal(matched(index, k, 'b'), 0);
    assert.equal(index.stats().requestKeys, 0);
  });

  it('grows past 32 and 64 endpoints without losing bits', () => {
    const index = new KvBlockIndex(TIERS);
    const keyer = new RequestKeyer(B);
    const applier = new KvEventApplier(index, keyer);
    const tokens = [1, 2, 3, 4, 5, 6, 7, 8];
    for (let e = 0; e < 100; e++) {
      applier.apply(`e${e}`, [gpuStored([BigInt(e * 2 + 1), BigInt(e * 2 + 2)], e % 2 === 0 ? tokens : tokens.slice(0, 4).concat([9, 9, 9, 9]))]);
    }
    const k = keyer.keys('', tokens);
    const slots = Array.from({ length: 100 }, (_, e) => index.slotOf(`e${e}`));
    const got = index.match(k.hi, k.lo, k.n, slots);
    for (let e = 0; e < 100; e++) assert.equal(got.blocks[e], e % 2 === 0 ? 2 : 1, `e${e}`);
  });
});
