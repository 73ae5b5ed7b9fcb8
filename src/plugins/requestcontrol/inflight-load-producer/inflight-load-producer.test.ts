import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InFlightLoadKey, type InFlightLoad } from '../../../framework/attributes.ts';
import type { InferenceRequest } from '../../../framework/request.ts';
import type { Outcome } from '../../../framework/requestcontrol.ts';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult, lenientFields, makeResponseInfo, makeChunk, ALL_OUTCOMES } from '../../../../test/support/plugin-fixtures.ts';
import { estimateTokens, InFlightTracker } from '../../../runtime/inflight.ts';
import { ManualClock } from '../../../../test/support/doubles.ts';
import { INFLIGHT_LOAD_PRODUCER_TYPE, InFlightLoadProducer, inFlightLoadProducerFactory } from './index.ts';

/** A producer over its own runtime tracker (as startup wires it, through the plugin handle). */
const producer = (): InFlightLoadProducer => new InFlightLoadProducer(INFLIGHT_LOAD_PRODUCER_TYPE, new InFlightTracker(), new ManualClock());

const live = () => new AbortController().signal;
const a = makeCandidate(makeEndpoint('a'));
const b = makeCandidate(makeEndpoint('b'));

/** 400-byte request → 100 input tokens + 150 expected output tokens. */
const req = (): InferenceRequest => makeRequest({ requestSizeBytes: 400 });
const response = makeResponseInfo;
const chunk = makeChunk;
const OUTCOMES = ALL_OUTCOMES;

describe('inflight-load-producer', () => {
  it('prepareData writes each candidate’s current load (zero when idle)', () => {
    const p = producer();
    const r = req();
    p.preRequest(r, makeSchedulingResult({ default: [a] }), live());
    const candidates = [makeCandidate(makeEndpoint('a')), makeCandidate(makeEndpoint('b'))];
    p.prepareData(makeRequest(), candidates);
    assert.deepEqual(
      candidates.map((c) => c.attributes.get(InFlightLoadKey) as InFlightLoad),
      [
        { requests: 1, tokens: 250 },
        { requests: 0, tokens: 0 },
      ],
    );
  });

  for (const outcome of OUTCOMES) {
    it(`releases exactly once on ${outcome.kind}`, () => {
      const p = producer();
      const r = req();
      p.preRequest(r, makeSchedulingResult({ default: [a, b] }), live());
      assert.deepEqual(p.loadOf('a'), { requests: 1, tokens: 250 });
      assert.deepEqual(p.loadOf('b'), { requests: 0, tokens: 0 }, 'fallbacks are not charged');
      p.onResponseComplete(response(r), outcome);
      p.onResponseComplete(response(r), outcome); // a duplicate call must not double-release
      assert.deepEqual(p.loadOf('a'), { requests: 0, tokens: 0 });
      assert.deepEqual(p.trackedEndpoints(), [], 'no counters left behind');
    });
  }

  it('concurrent requests add up and release independently, even with the same x-request-id', () => {
    const p = producer();
    const r1 = makeRequest({ requestId: 'dup', requestSizeBytes: 400 });
    const r2 = makeRequest({ requestId: 'dup', requestSizeBytes: 40 });
    p.preRequest(r1, makeSchedulingResult({ default: [a] }), live());
    p.preRequest(r2, makeSchedulingResult({ default: [a] }), live());
    assert.deepEqual(p.loadOf('a'), { requests: 2, tokens: 250 + 25 });
    p.onResponseComplete(response(r2), OUTCOMES[0] as Outcome);
    assert.deepEqual(p.loadOf('a'), { requests: 1, tokens: 250 });
  });

  it('charges each profile’s first target; prefill is released at the first chunk, the rest at completion', () => {
    const p = producer();
    const r = req();
    p.preRequest(r, makeSchedulingResult({ decode: [a], prefill: [b], failed: null }, 'decode'), live());
    assert.deepEqual([p.loadOf('a').requests, p.loadOf('b').requests], [1, 1]);
    p.onResponseChunk(response(r), chunk(0));
    assert.deepEqual([p.loadOf('a').requests, p.loadOf('b').requests], [1, 0]);
    p.onResponseChunk(response(r), chunk(1, true));
    assert.deepEqual([p.loadOf('a').requests, p.loadOf('b').requests], [1, 0], 'the last chunk does not release: completion does');
    p.onResponseComplete(response(r), OUTCOMES[0] as Outcome);
    assert.deepEqual([p.loadOf('a').requests, p.loadOf('b').requests], [0, 0]);
  });

  it('an abort before the first chunk releases the prefill endpoint too', () => {
    const p = producer();
    const r = req();
    p.preRequest(r, makeSchedulingResult({ decode: [a], prefill: [b] }, 'decode'), live());
    p.onResponseComplete(response(r), OUTCOMES[2] as Outcome);
    assert.deepEqual(p.trackedEndpoints(), []);
  });

  it('a second preRequest for the same request does not charge twice', () => {
    const p = producer();
    const r = req();
    p.preRequest(r, makeSchedulingResult({ default: [a] }), live());
    p.preRequest(r, makeSchedulingResult({ default: [a] }), live());
    assert.equal(p.loadOf('a').requests, 1);
  });

  it('charges nothing when the preRequest signal already fired, and completion then releases nothing', () => {
    const p = producer();
    const r = req();
    p.preRequest(r, makeSchedulingResult({ default: [a] }), AbortSignal.abort());
    assert.equal(p.loadOf('a').requests, 0);
    p.onResponseComplete(response(r), OUTCOMES[2] as Outcome);
    assert.deepEqual(p.trackedEndpoints(), []);
  });

  it('completion of a request that was never charged is a no-op', () => {
    const p = producer();
    p.preRequest(req(), makeSchedulingResult({ default: [a] }), live());
    p.onResponseComplete(response(req()), OUTCOMES[0] as Outcome);
    assert.equal(p.loadOf('a').requests, 1);
  });

  describe('estimateTokens', () => {
    const cases: ReadonlyArray<[string, InferenceRequest, number]> = [
      ['from body size: 400 B → 100 in + 150 out', makeRequest({ requestSizeBytes: 400 }), 250],
      ['body size floors: 7 B → 1 in + round(1.5) out', makeRequest({ requestSizeBytes: 7 }), 1 + 2],
      ['tiny body → at least 1 input token', makeRequest({ requestSizeBytes: 2 }), 1 + 2],
      ['no size: prompt chars / 4, rounded: 10 chars → 3 in + 5 out (round 4.5 up)', makeRequest({ requestSizeBytes: 0, payload: { prompt: '0123456789' } }), 3 + 5],
      ['no size, empty prompt → 1 in', makeRequest({ requestSizeBytes: 0, payload: { prompt: '' } }), 1 + 2],
    ];
    for (const [name, request, want] of cases) it(name, () => assert.equal(estimateTokens(request), want));
  });

  it('factory: defaults, declarations and rejection', () => {
    const p = inFlightLoadProducerFactory('load', {}, makeHandle()) as InFlightLoadProducer;
    assert.deepEqual(p.typedName, { type: INFLIGHT_LOAD_PRODUCER_TYPE, name: 'load' });
    assert.deepEqual(p.produces, [InFlightLoadKey]);
    assert.deepEqual(p.consumes, []);
    assert.deepEqual(lenientFields(() => inFlightLoadProducerFactory('load', { estimator: 'x' }, makeHandle())), ['estimator']); // unknown keys are ignored, as upstream
  });
});


describe('inflight-load-producer as ReplicatedGauges', () => {
  it('scores on its own load plus fresh peers\' gauges; stale or dropped peers stop counting', () => {
    const handle = makeHandle();
    const p = inFlightLoadProducerFactory('load', undefined, handle) as InFlightLoadProducer;
    const r = req();
    p.preRequest(r, makeSchedulingResult({ default: [a] }), live());
    assert.deepEqual(p.localGauges(), [{ endpoint: 'a', requests: 1, tokens: 250 }]);
    const now = handle.clock.now();
    p.setRemoteGauges('peer1', [{ endpoint: 'a', requests: 3, tokens: 30 }, { endpoint: 'b', requests: 2, tokens: 20 }], now + 500);
    p.setRemoteGauges('peer2', [{ endpoint: 'b', requests: 1, tokens: 10 }], now + 100);
    const cs = [makeCandidate(makeEndpoint('a')), makeCandidate(makeEndpoint('b'))];
    p.prepareData(req(), cs);
    assert.deepEqual(cs.map((c) => c.attributes.get(InFlightLoadKey) as InFlightLoad), [{ requests: 4, tokens: 280 }, { requests: 3, tokens: 30 }]);
    (handle.clock as unknown as { advance(ms: number): void }).advance(100);
    assert.deepEqual(p.totalLoadOf('b'), { requests: 2, tokens: 20 }, 'peer2 expired at its deadline');
    p.dropRemoteGauges('peer1');
    assert.deepEqual(p.totalLoadOf('a'), { requests: 1, tokens: 250 });
    assert.deepEqual(p.loadOf('a'), { requests: 1, tokens: 250 }, 'own load unaffected by peers');
  });
});
