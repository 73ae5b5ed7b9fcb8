import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PrefixCacheMatchInfoKey, type PrefixCacheMatchInfo } from '../../../framework/attributes.ts';
import type { InferenceRequest } from '../../../framework/request.ts';
import type { ResponseInfo } from '../../../framework/requestcontrol.ts';
import type { Candidate } from '../../../framework/scheduling.ts';
import { toHalves, type IndexSnapshotEntry } from '../../../framework/replication.ts';
import {
  factoryError,
  lenientFields,
  makeCandidate,
  makeEndpoint,
  makeHandle,
  makeRequest,
  makeSchedulingResult,
  type TestHandle,
} from '../../../../test/support/plugin-fixtures.ts';
import {
  APPROX_PREFIX_CACHE_PRODUCER_TYPE,
  ApproxPrefixCacheProducer,
  approxPrefixCacheProducerFactory,
  DEFAULT_LRU_CAPACITY_PER_SERVER,
  INACTIVE_ENDPOINT_SWEEP_INTERVAL_MS,
  SNAPSHOT_CHUNK_BLOCKS,
} from './index.ts';

// 16 tokens × 4 bytes = 64-byte blocks: 4 full blocks.
const PROMPT = 'The quick brown fox jumps over the lazy dog; '.repeat(6).slice(0, 256);

/** An exported entry copied as it comes (export lends its arrays only until the next entry). */
const copyEntry = (e: IndexSnapshotEntry): IndexSnapshotEntry => ({ ...e, hashes: { n: e.hashes.n, hi: e.hashes.hi.slice(0, e.hashes.n), lo: e.hashes.lo.slice(0, e.hashes.n) } });

function build(params: unknown = {}, handle: TestHandle = makeHandle()): ApproxPrefixCacheProducer {
  return approxPrefixCacheProducerFactory('prefix', params, handle) as ApproxPrefixCacheProducer;
}
function fresh(names: string[], metrics: Parameters<typeof makeEndpoint>[1] = {}): Candidate[] {
  return names.map((n) => makeCandidate(makeEndpoint(n, metrics)));
}
function infoOf(c: Candidate): PrefixCacheMatchInfo {
  return c.attributes.get(PrefixCacheMatchInfoKey) as PrefixCacheMatchInfo;
}
function req(prompt = PROMPT, extra: Record<string, unknown> = {}): InferenceRequest {
  return makeRequest({ payload: { model: 'm', prompt, ...extra } });
}
function responseFor(request: InferenceRequest): ResponseInfo {
  return { request, targetEndpoint: undefined, status: 0, headers: {}, streaming: false, usage: undefined, proxyMetadata: {}, dynamicMetadata: {} };
}
/** prepareData + preRequest routing the request to `target` (as the director would). */
function route(p: ApproxPrefixCacheProducer, request: InferenceRequest, candidates: Candidate[], target: string): void {
  p.prepareData(request, candidates);
  const chosen = candidates.find((c) => c.endpoint.metadata.name === target);
  assert.ok(chosen);
  p.preRequest(request, makeSchedulingResult({ default: [chosen] }));
}

describe('approx-prefix-cache-producer', () => {
  it('first request matches nothing; the next one with the same prompt matches fully where it was routed', () => {
    const p = build();
    const first = fresh(['a', 'b']);
    route(p, req(), first, 'a');
    assert.deepEqual(first.map(infoOf), [
      { matchBlocks: 0, totalBlocks: 4, blockSizeTokens: 16 },
      { matchBlocks: 0, totalBlocks: 4, blockSizeTokens: 16 },
    ]);
    const second = fresh(['a', 'b']);
    p.prepareData(req(), second);
    assert.deepEqual(second.map(infoOf), [
      { matchBlocks: 4, totalBlocks: 4, blockSizeTokens: 16 },
      { matchBlocks: 0, totalBlocks: 4, blockSizeTokens: 16 },
    ]);
  });

  it('a prompt sharing the first blocks matches those blocks', () => {
    const p = build();
    route(p, req(), fresh(['a', 'b']), 'b');
    const c = fresh(['a', 'b']);
    p.prepareData(req(PROMPT.slice(0, 128) + 'Z'.repeat(128)), c);
    assert.deepEqual(c.map((x) => infoOf(x).matchBlocks), [0, 2]);
  });

  it('different models and cache_salt values never match each other', () => {
    const p = build();
    route(p, req(), fresh(['a']), 'a');
    const salted = fresh(['a']);
    p.prepareData(req(PROMPT, { cache_salt: 'tenant-1' }), salted);
    assert.equal(infoOf(salted[0] as Candidate).matchBlocks, 0);
    const other = fresh(['a']);
    p.prepareData(makeRequest({ targetModel: 'other', payload: { model: 'other', prompt: PROMPT } }), other);
    assert.equal(infoOf(other[0] as Candidate).matchBlocks, 0);
  });

  it('autoTune: block size from the first candidate’s cache block size', () => {
    const p = build();
    const c = fresh(['a'], { cacheBlockSize: 32 }); // 128-byte blocks
    p.prepareData(req(), c);
    assert.deepEqual(infoOf(c[0] as Candidate), { matchBlocks: 0, totalBlocks: 2, blockSizeTokens: 32 });
  });

  it('autoTune off: configured blockSizeTokens even when the metric is known', () => {
    const p = build({ autoTune: false, blockSizeTokens: 8 });
    const c = fresh(['a'], { cacheBlockSize: 32 });
    p.prepareData(req(), c);
    assert.deepEqual(infoOf(c[0] as Candidate), { matchBlocks: 0, totalBlocks: 8, blockSizeTokens: 8 });
  });

  it('maxPrefixBlocksToMatch and maxPrefixTokensToMatch cap the blocks', () => {
    const c1 = fresh(['a']);
    build({ maxPrefixBlocksToMatch: 3 }).prepareData(req(), c1);
    assert.equal(infoOf(c1[0] as Candidate).totalBlocks, 3);
    const c2 = fresh(['a']);
    build({ maxPrefixTokensToMatch: 32, maxPrefixBlocksToMatch: 100 }).prepareData(req(), c2);
    assert.equal(infoOf(c2[0] as Candidate).totalBlocks, 2, '32 tokens / 16 tokens per block');
  });

  it('per-endpoint capacity: cache block count when auto-tuned, lruCapacityPerServer otherwise', () => {
    const tuned = build({ lruCapacityPerServer: 7 });
    route(tuned, req(), fresh(['a'], { cacheNumBlocks: 2 }), 'a');
    assert.equal(tuned.index.capacityOf('a'), 2);
    assert.equal(tuned.index.blocksOf('a'), 2, 'only the 2 head blocks fit');
    route(tuned, req(), fresh(['b']), 'b');
    assert.equal(tuned.index.capacityOf('b'), 7, 'unknown block count → lruCapacityPerServer (upstream ignored it)');
    const untuned = build({ autoTune: false });
    route(untuned, req(), fresh(['a'], { cacheNumBlocks: 2 }), 'a');
    assert.equal(untuned.index.capacityOf('a'), DEFAULT_LRU_CAPACITY_PER_SERVER);
  });

  it('under capacity pressure the head of a prompt survives, so it still matches', () => {
    const p = build();
    route(p, req(), fresh(['a'], { cacheNumBlocks: 2 }), 'a');
    const c = fresh(['a']);
    p.prepareData(req(), c);
    assert.equal(infoOf(c[0] as Candidate).matchBlocks, 2);
  });

  it('indexes the prefill profile’s first target as well', () => {
    const p = build();
    const candidates = fresh(['decode-1', 'prefill-1']);
    const request = req();
    p.prepareData(request, candidates);
    p.preRequest(
      request,
      makeSchedulingResult({ decode: [candidates[0] as Candidate], prefill: [candidates[1] as Candidate] }, 'decode'),
    );
    assert.deepEqual([...p.index.endpoints()].sort(), ['decode-1', 'prefill-1']);
  });

  it('indexes only the primary target, not fallbacks', () => {
    const p = build();
    const candidates = fresh(['a', 'b']);
    const request = req();
    p.prepareData(request, candidates);
    p.preRequest(request, makeSchedulingResult({ default: candidates }));
    assert.deepEqual([...p.index.endpoints()], ['a']);
  });

  it('does not index a request that ended abnormally before preRequest (request.aborted)', () => {
    const p = build();
    const candidates = fresh(['a']);
    const request: InferenceRequest = { ...req(), aborted: true };
    p.prepareData(request, candidates);
    p.preRequest(request, makeSchedulingResult({ default: candidates }));
    assert.equal(p.index.size, 0);
    assert.equal(p.hasStateFor(request), false);
  });

  describe('per-request state', () => {
    it('is keyed by the request object: two requests with the same x-request-id do not collide', () => {
      const p = build();
      const r1 = makeRequest({ requestId: 'same', payload: { model: 'm', prompt: PROMPT } });
      const r2 = makeRequest({ requestId: 'same', payload: { model: 'm', prompt: 'Q'.repeat(256) } });
      const c1 = fresh(['a']);
      const c2 = fresh(['b']);
      p.prepareData(r1, c1);
      p.prepareData(r2, c2);
      p.preRequest(r1, makeSchedulingResult({ default: c1 }));
      p.preRequest(r2, makeSchedulingResult({ default: c2 }));
      const check = fresh(['a', 'b']);
      p.prepareData(req(), check);
      assert.deepEqual(check.map((x) => infoOf(x).matchBlocks), [4, 0], 'r1’s prompt is indexed on a only');
    });

    it('is consumed by preRequest', () => {
      const p = build();
      const request = req();
      const c = fresh(['a']);
      p.prepareData(request, c);
      assert.equal(p.hasStateFor(request), true);
      p.preRequest(request, makeSchedulingResult({ default: c }));
      assert.equal(p.hasStateFor(request), false);
    });

    it('is released by onResponseComplete when preRequest never ran', () => {
      const p = build();
      const request = req();
      p.prepareData(request, fresh(['a']));
      p.onResponseComplete(responseFor(request), { kind: 'aborted', reason: 'client gone' });
      assert.equal(p.hasStateFor(request), false);
    });

    it('preRequest without prepared state logs an error and indexes nothing', () => {
      const handle = makeHandle();
      const p = build({}, handle);
      p.preRequest(req(), makeSchedulingResult({ default: fresh(['a']) }));
      assert.equal(p.index.size, 0);
      assert.match(handle.logger.messages('error')[0] ?? '', /prefix cache state missing/);
    });
  });

  it('drops endpoints that left the pool, at most every 2 minutes (injected clock)', () => {
    const handle = makeHandle();
    const p = build({}, handle);
    route(p, req(), fresh(['a', 'b']), 'a');
    route(p, req('W'.repeat(200)), fresh(['a', 'b']), 'b');
    handle.setEndpoints([makeEndpoint('b')]);
    handle.clock.advance(INACTIVE_ENDPOINT_SWEEP_INTERVAL_MS - 1);
    p.prepareData(req(), fresh(['b']));
    assert.deepEqual([...p.index.endpoints()].sort(), ['a', 'b'], 'not yet');
    handle.clock.advance(1);
    p.prepareData(req(), fresh(['b']));
    assert.deepEqual([...p.index.endpoints()], ['b']);
    handle.setEndpoints([]);
    handle.clock.advance(INACTIVE_ENDPOINT_SWEEP_INTERVAL_MS);
    p.prepareData(req(), fresh(['b']));
    assert.deepEqual([...p.index.endpoints()], ['b'], 'an empty pool (discovery gap) does not wipe the index');
  });

  describe('factory', () => {
    it('defaults from {}', () => {
      const p = build({});
      assert.deepEqual(p.typedName, { type: APPROX_PREFIX_CACHE_PRODUCER_TYPE, name: 'prefix' });
      assert.deepEqual(p.config, {
        autoTune: true,
        blockSizeTokens: 16,
        blockSize: 0,
        maxPrefixBlocksToMatch: 256,
        maxPrefixTokensToMatch: 0,
        lruCapacityPerServer: 31250,
      });
      assert.deepEqual(p.produces, [PrefixCacheMatchInfoKey]);
      assert.deepEqual(p.consumes, []);
    });

    it('accepts every parameter', () => {
      const params = { autoTune: false, blockSizeTokens: 32, maxPrefixBlocksToMatch: 64, maxPrefixTokensToMatch: 1024, lruCapacityPerServer: 1000 };
      assert.deepEqual(build(params).config, { ...params, blockSize: 0 });
    });

    it('accepts deprecated blockSize with a warning (it is ignored, as upstream)', () => {
      const handle = makeHandle();
      const p = build({ blockSize: 64 }, handle);
      assert.equal(p.config.blockSizeTokens, 16);
      assert.match(handle.logger.messages('warn')[0] ?? '', /blockSize is deprecated and ignored; set blockSizeTokens/);
    });

    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['blockSize with blockSizeTokens 0 (upstream: use blockSizeTokens)', { blockSize: 64, blockSizeTokens: 0 }, /parameters\.blockSizeTokens/],
      ['fractional blockSizeTokens', { blockSizeTokens: 1.5 }, /parameters\.blockSizeTokens: expected a positive integer/],
      ['negative maxPrefixTokensToMatch', { maxPrefixTokensToMatch: -1 }, /parameters\.maxPrefixTokensToMatch: expected an integer >= 0 \(tokens\)/],
      ['non-boolean autoTune', { autoTune: 'false' }, /parameters\.autoTune: expected a boolean/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => build(params)), re));
    }
    // Accepted as upstream accepts them (unknown keys ignored, values ≤ 0 or null → the default), with a warning.
    const lenient: ReadonlyArray<[string, unknown, string]> = [
      ['blockSizeTokens 0', { blockSizeTokens: 0 }, 'blockSizeTokens'],
      ['maxPrefixBlocksToMatch 0', { maxPrefixBlocksToMatch: 0 }, 'maxPrefixBlocksToMatch'],
      ['lruCapacityPerServer 0', { lruCapacityPerServer: 0 }, 'lruCapacityPerServer'],
      ['unknown key', { hashBlockSize: 5 }, 'hashBlockSize'],
    ];
    for (const [name, params, field] of lenient) {
      it(`accepts ${name} leniently, warning on the field`, () => assert.deepEqual(lenientFields(() => build(params)), [field]));
    }
  });
});

describe('approx-prefix-cache-producer as a ReplicatedIndex', () => {
  it('hands each routed placement to the sink; a peer applying it matches the prompt as if it had routed it', () => {
    const hA = makeHandle();
    const hB = makeHandle();
    const a = build({}, hA);
    const b = build({}, hB);
    const sent: Array<{ endpoint: string; bs: number; hashes: readonly bigint[] }> = [];
    a.attachPlacementSink({ enqueuePlacement: (endpoint, bs, hashes) => sent.push({ endpoint, bs, hashes }) });
    route(a, req(), fresh(['x', 'y']), 'y');
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.endpoint, 'y');
    assert.equal(sent[0]?.bs, 16);
    for (const s of sent) assert.equal(b.applyRemotePlacement(s.endpoint, s.bs, toHalves(s.hashes)), true);
    const cs = fresh(['x', 'y']);
    b.prepareData(req(), cs);
    assert.deepEqual(cs.map(infoOf).map((i) => i.matchBlocks), [0, 4]);
    assert.equal(a.replicationFingerprint(), b.replicationFingerprint());
  });

  it('refuses a placement hashed with another block size than its current one', () => {
    const p = build({ blockSizeTokens: 32, autoTune: false });
    assert.equal(p.applyRemotePlacement('x', 16, toHalves([1n, 2n])), false);
    assert.equal(p.index.size, 0);
    assert.equal(p.applyRemotePlacement('x', 32, toHalves([1n, 2n])), true);
    assert.equal(p.index.size, 2);
  });

  it('a snapshot round trip preserves every entry and the LRU order', () => {
    const a = build({ lruCapacityPerServer: 6 });
    for (const [i, prompt] of ['alpha '.repeat(40), 'beta '.repeat(50), 'gamma '.repeat(30)].entries()) route(a, req(prompt), fresh(['x', 'y']), i === 1 ? 'y' : 'x');
    const b = build({ lruCapacityPerServer: 6 });
    b.importSnapshot(Array.from(a.exportSnapshot(), copyEntry));
    for (const ep of ['x', 'y']) assert.deepEqual(b.index.hashesOf(ep), a.index.hashesOf(ep));
    assert.ok(a.index.size > 0);
  });

  it('exports a large endpoint in pieces of at most SNAPSHOT_CHUNK_BLOCKS, oldest first, that import back in order', () => {
    const blocks = 2 * SNAPSHOT_CHUNK_BLOCKS + 100;
    const a = build({ lruCapacityPerServer: blocks });
    a.index.add('x', blocks, Array.from({ length: blocks }, (_, i) => BigInt(i) * 0x9e3779b97f4a7c15n % 2n ** 64n));
    const lent: Uint32Array[] = [];
    const pieces = Array.from(a.exportSnapshot(), (e) => (lent.push(e.hashes.hi), copyEntry(e)));
    assert.deepEqual(pieces.map((p) => [p.endpoint, p.hashes.n]), [['x', SNAPSHOT_CHUNK_BLOCKS], ['x', SNAPSHOT_CHUNK_BLOCKS], ['x', 100]]);
    assert.ok(lent.every((hi) => hi === lent[0]), 'every piece lent in the same arrays (nothing allocated per piece)');
    const b = build({ lruCapacityPerServer: blocks });
    for (const p of pieces) b.importSnapshot([p]); // one piece per call, as the syncer hands them over
    assert.deepEqual(b.index.hashesOf('x'), a.index.hashesOf('x'));
  });
});
