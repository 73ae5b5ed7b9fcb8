import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PrefillLoadKey, PrefixCacheMatchInfoKey, type PrefillLoad } from '../../../framework/attributes.ts';
import type { Outcome } from '../../../framework/requestcontrol.ts';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult, makeResponseInfo, makeChunk, ALL_OUTCOMES } from '../../../../test/support/plugin-fixtures.ts';
import { PREFILL_LOAD_PRODUCER_TYPE, PrefillLoadProducer, prefillLoadProducerFactory, promptAndCachedTokens } from './index.ts';

const live = () => new AbortController().signal;
const withMatch = (name: string, matchBlocks: number, totalBlocks: number) =>
  makeCandidate(makeEndpoint(name), { [PrefixCacheMatchInfoKey]: { matchBlocks, totalBlocks, blockSizeTokens: 16 } });
const response = makeResponseInfo;
const chunk = makeChunk;
const OUTCOMES = ALL_OUTCOMES;

describe('prefill-load-producer', () => {
  const cases: ReadonlyArray<{ name: string; target: ReturnType<typeof makeCandidate>; bytes: number; want: { prompt: number; cached: number } }> = [
    { name: 'match info: block-aligned prompt, matched blocks cached', target: withMatch('a', 100, 144), bytes: 9999, want: { prompt: 2304, cached: 1600 } },
    { name: 'full hit', target: withMatch('a', 144, 144), bytes: 0, want: { prompt: 2304, cached: 2304 } },
    { name: 'no match info: body size / 4, nothing cached', target: makeCandidate(makeEndpoint('a')), bytes: 400, want: { prompt: 100, cached: 0 } },
    { name: 'prompt shorter than a block: body size', target: withMatch('a', 0, 0), bytes: 40, want: { prompt: 10, cached: 0 } },
  ];
  for (const c of cases) {
    it(`promptAndCachedTokens: ${c.name}`, () => {
      assert.deepEqual(promptAndCachedTokens(makeRequest({ requestSizeBytes: c.bytes }), c.target), c.want);
    });
  }

  it('charges the primary target: uncached until the first chunk, prompt until completion', () => {
    const p = new PrefillLoadProducer();
    const r = makeRequest({ requestSizeBytes: 10_000 });
    p.preRequest(r, makeSchedulingResult({ default: [withMatch('a', 100, 144), withMatch('b', 0, 144)] }), live());
    assert.deepEqual(p.loadOf('a'), { uncachedTokens: 704, activeTokens: 2304, requests: 1 });
    assert.deepEqual(p.loadOf('b'), { uncachedTokens: 0, activeTokens: 0, requests: 0 }, 'fallbacks are not charged');
    const cands = [makeCandidate(makeEndpoint('a')), makeCandidate(makeEndpoint('b'))];
    p.prepareData(makeRequest(), cands);
    assert.deepEqual(cands.map((c) => (c.attributes.get(PrefillLoadKey) as PrefillLoad).uncachedTokens), [704, 0]);
    p.onResponseChunk(response(r), chunk(0));
    p.onResponseChunk(response(r), chunk(0)); // a repeated start must not release twice
    assert.deepEqual(p.loadOf('a'), { uncachedTokens: 0, activeTokens: 2304, requests: 1 });
    p.onResponseComplete(response(r), OUTCOMES[0] as Outcome);
    assert.deepEqual(p.trackedEndpoints(), []);
  });

  for (const outcome of OUTCOMES) {
    it(`releases exactly once on ${outcome.kind} before any chunk`, () => {
      const p = new PrefillLoadProducer();
      const r1 = makeRequest({ requestSizeBytes: 400 });
      const r2 = makeRequest({ requestSizeBytes: 800 });
      p.preRequest(r1, makeSchedulingResult({ default: [makeCandidate(makeEndpoint('a'))] }), live());
      p.preRequest(r2, makeSchedulingResult({ default: [makeCandidate(makeEndpoint('a'))] }), live());
      assert.deepEqual(p.loadOf('a'), { uncachedTokens: 300, activeTokens: 300, requests: 2 });
      p.onResponseComplete(response(r1), outcome);
      p.onResponseComplete(response(r1), outcome);
      assert.deepEqual(p.loadOf('a'), { uncachedTokens: 200, activeTokens: 200, requests: 1 });
    });
  }

  it('charges nothing on an aborted signal or twice for one request', () => {
    const p = new PrefillLoadProducer();
    const ac = new AbortController();
    ac.abort();
    const r = makeRequest({ requestSizeBytes: 400 });
    p.preRequest(r, makeSchedulingResult({ default: [makeCandidate(makeEndpoint('a'))] }), ac.signal);
    assert.deepEqual(p.trackedEndpoints(), []);
    p.preRequest(r, makeSchedulingResult({ default: [makeCandidate(makeEndpoint('a'))] }), live());
    p.preRequest(r, makeSchedulingResult({ default: [makeCandidate(makeEndpoint('a'))] }), live());
    assert.equal(p.loadOf('a').requests, 1);
  });

  it('factory: no parameters', () => {
    const p = prefillLoadProducerFactory('p', {}, makeHandle()) as PrefillLoadProducer;
    assert.deepEqual(p.typedName, { type: PREFILL_LOAD_PRODUCER_TYPE, name: 'p' });
    assert.deepEqual(p.produces, [PrefillLoadKey]);
  });
});
