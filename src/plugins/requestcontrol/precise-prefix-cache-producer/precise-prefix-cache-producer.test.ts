import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { TokenizedPromptKey, prefixCacheMatchInfoOf } from '../../../framework/attributes.ts';
import { collectParameterWarnings } from '../../../framework/params.ts';
import type { Usage } from '../../../framework/request.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult } from '../../../../test/support/plugin-fixtures.ts';
import { PrecisePrefixCacheProducer, precisePrefixCacheProducerFactory } from './index.ts';
import { KeyArrayPool } from './request-keys.ts';
import type { EventTransport } from './zmq-transport.ts';

const ep = makeEndpoint('a', {}, { address: '10.0.0.1' });
const synced = (): EventTransport => ({ start: () => undefined, replay: () => Promise.resolve([]), close: () => undefined });

async function producer(params: Record<string, unknown> = {}) {
  const handle = makeHandle({ endpoints: [ep] });
  const config = (precisePrefixCacheProducerFactory('cfg', params, makeHandle()) as PrecisePrefixCacheProducer).config;
  const p = new PrecisePrefixCacheProducer('precise', config, handle, { transportFor: synced, reconcileTimer: false });
  p.reconcile();
  await p.syncOf('a')?.idle;
  return Object.assign(p, { clock: handle.clock });
}

async function routeOnce(p: PrecisePrefixCacheProducer, tokens: number[] | undefined, cachedTokens: number) {
  const request = makeRequest();
  const c = makeCandidate(ep, tokens === undefined ? {} : { [TokenizedPromptKey]: { tokenIds: tokens, source: 'test' } });
  const signal = new AbortController().signal;
  await p.prepareData(request, [c]);
  await p.preRequest(request, makeSchedulingResult({ default: [c] }), signal);
  const usage: Usage = { promptTokens: tokens?.length ?? 10, completionTokens: 1, totalTokens: 11, cachedTokens };
  await p.onResponseComplete({ request, targetEndpoint: ep, status: 200, headers: {}, streaming: false, usage, proxyMetadata: {}, dynamicMetadata: {} }, { kind: 'success', usage });
  return c;
}

describe('precise-prefix-cache-producer', () => {
  it('rejects bad parameters naming the field; an unknown one is a warning (lenient as upstream)', () => {
    const warnings: string[] = [];
    collectParameterWarnings((field, msg) => warnings.push(`${field}: ${msg}`), () => precisePrefixCacheProducerFactory('p', { events: { sockePort: 1 } }, makeHandle()));
    assert.deepEqual(warnings, ['events.sockePort: unknown field ignored (as upstream); check its spelling']);
    assert.match(factoryError(() => precisePrefixCacheProducerFactory('p', { events: { socketPort: 0 } }, makeHandle())), /parameters\.events\.socketPort: expected a TCP port/);
    assert.match(factoryError(() => precisePrefixCacheProducerFactory('p', { desync: { fallback: 'maybe' } }, makeHandle())), /parameters\.desync\.fallback: expected approx or none/);
  });

  it('a request without token ids gets the approximate match, and does not leave the endpoint looking busy', async () => {
    const p = await producer();
    const c = await routeOnce(p, undefined, 0);
    assert.ok(prefixCacheMatchInfoOf(c.attributes) !== undefined);
    assert.equal(p.stats.requestsNoTokens, 1);
    // The next request is "quiet" (nothing of ours in flight): it feeds the drift check.
    await routeOnce(p, Array.from({ length: 40 }, (_, i) => i), 0);
    assert.equal(p.stats.predictionErrors.length, 1);
    assert.equal(p.stats.predictionErrors[0], 0);
    p.close();
  });

  it('speculative entries make a just-routed prompt match, and expire after the TTL', async () => {
    const p = await producer({ speculative: { ttlMs: 1000 } });
    const tokens = Array.from({ length: 48 }, (_, i) => i * 7);
    await routeOnce(p, tokens, 0);
    const score = async () => {
      const c = makeCandidate(ep, { [TokenizedPromptKey]: { tokenIds: tokens, source: 'test' } });
      await p.prepareData(makeRequest(), [c]);
      return prefixCacheMatchInfoOf(c.attributes)?.matchBlocks;
    };
    assert.equal(await score(), 3, 'no event yet: the speculative entries match');
    p.clock.advance(999);
    assert.equal(await score(), 3);
    p.clock.advance(2);
    assert.equal(await score(), 0, 'expired');
    p.close();
  });
  it('requests scored before either is routed keep their own speculative keys, also when key arrays are reused', async () => {
    const eps = [makeEndpoint('a', {}, { address: '10.0.0.1' }), makeEndpoint('b', {}, { address: '10.0.0.2' })];
    const handle = makeHandle({ endpoints: eps });
    const config = (precisePrefixCacheProducerFactory('cfg', { speculative: { ttlMs: 1000 } }, makeHandle()) as PrecisePrefixCacheProducer).config;
    const p = new PrecisePrefixCacheProducer('precise', config, handle, { transportFor: synced, reconcileTimer: false });
    p.reconcile();
    await Promise.all(eps.map((e) => p.syncOf(e.metadata.name)?.idle));
    const signal = new AbortController().signal;
    const prompt = (seed: number, blocks: number) => Array.from({ length: blocks * 16 + 5 }, (_, i) => seed * 1000 + i);
    const cands = (tokens: number[]) => eps.map((e) => makeCandidate(e, { [TokenizedPromptKey]: { tokenIds: tokens, source: 'test' } }));
    const scores = async (tokens: number[]) => {
      const cs = cands(tokens);
      await p.prepareData(makeRequest(), cs);
      return cs.map((c) => prefixCacheMatchInfoOf(c.attributes)?.matchBlocks);
    };
    // Both scored first (as concurrent requests are), then routed: a ← x, b ← y.
    const route = async (pairs: [number[], number][]) => {
      const prepared = [];
      for (const [tokens, target] of pairs) {
        const request = makeRequest();
        const cs = cands(tokens);
        await p.prepareData(request, cs);
        prepared.push({ request, target: cs[target]! });
      }
      for (const { request, target } of prepared) await p.preRequest(request, makeSchedulingResult({ default: [target] }), signal);
    };
    const x = prompt(1, 8);
    const y = prompt(2, 5);
    await route([[x, 0], [y, 1]]);
    assert.deepEqual(await scores(x), [8, 0]);
    assert.deepEqual(await scores(y), [0, 5]);
    // After the TTL the entries go and their arrays are free: shorter and longer prompts reuse them.
    handle.clock.advance(1001);
    assert.deepEqual(await scores(x), [0, 0]);
    const z = prompt(3, 3);
    const w = prompt(4, 12);
    await route([[z, 1], [w, 0]]);
    assert.deepEqual(await scores(z), [0, 3]);
    assert.deepEqual(await scores(w), [12, 0]);
    assert.deepEqual(await scores(x), [0, 0], 'nothing left of the expired entries');
    p.close();
  });

  it('the key-array pool reuses the smallest free pair that fits and keeps at most maxFree, dropping the smallest', () => {
    const pool = new KeyArrayPool(2);
    const big = pool.take(1000);
    const small = pool.take(10);
    assert.ok(big.hi.length >= 1000 && big.lo.length >= 1000 && small.hi.length >= 10);
    assert.equal(pool.allocated, 2);
    pool.give(big);
    pool.give(small);
    assert.equal(pool.take(5), small, 'smallest fit');
    assert.equal(pool.take(5), big);
    assert.equal(pool.allocated, 2);
    pool.give(pool.take(300));
    pool.give(pool.take(2000));
    pool.give(pool.take(5000));
    assert.equal(pool.free, 2);
    assert.ok(pool.take(4000).hi.length >= 5000, 'the largest pairs are kept');
    assert.equal(pool.allocated, 5);
  });
});
