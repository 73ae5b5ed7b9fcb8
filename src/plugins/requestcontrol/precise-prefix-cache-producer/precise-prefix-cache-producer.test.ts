import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { TokenizedPromptKey, prefixCacheMatchInfoOf } from '../../../framework/attributes.ts';
import { collectParameterWarnings } from '../../../framework/params.ts';
import type { Usage } from '../../../framework/request.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult } from '../../../../test/support/plugin-fixtures.ts';
import { PrecisePrefixCacheProducer, precisePrefixCacheProducerFactory } from './index.ts';
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
  await p.prepareData(request, [c], signal);
  await p.preRequest(request, makeSchedulingResult({ default: [c] }), signal);
  const usage: Usage = { promptTokens: tokens?.length ?? 10, completionTokens: 1, totalTokens: 11, cachedTokens };
  await p.onResponseComplete({ request, targetEndpoint: ep, status: 200, headers: {}, streaming: false, usage, proxyMetadata: {}, dynamicMetadata: {} }, { kind: 'success', usage }, signal);
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
      await p.prepareData(makeRequest(), [c], new AbortController().signal);
      return prefixCacheMatchInfoOf(c.attributes)?.matchBlocks;
    };
    assert.equal(await score(), 3, 'no event yet: the speculative entries match');
    p.clock.advance(999);
    assert.equal(await score(), 3);
    p.clock.advance(2);
    assert.equal(await score(), 0, 'expired');
    p.close();
  });
});
