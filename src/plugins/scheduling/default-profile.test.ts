/**
 * Upstream's default profile (epp-spec §4.3: queue ×2, kv-cache ×2, prefix ×3, max-score picker, auto-added
 * prefix producer) composed from the built-in plugins, with the framework's weighted sum (clamp to [0, 1],
 * × weight, sum) written out here: same metrics in, same totals and pick as upstream.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { InferenceRequest } from '../../framework/request.ts';
import type { Candidate, Scorer } from '../../framework/scheduling.ts';
import { ApproxPrefixCacheProducer, approxPrefixCacheProducerFactory } from '../requestcontrol/approx-prefix-cache-producer/index.ts';
import { MaxScorePicker } from './picker/max-score-picker/index.ts';
import { KvCacheUtilizationScorer } from './scorer/kv-cache-utilization-scorer/index.ts';
import { PrefixCacheScorer } from './scorer/prefix-cache-scorer/index.ts';
import { QueueScorer } from './scorer/queue-scorer/index.ts';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult, names } from '../../../test/support/plugin-fixtures.ts';
import { Xoshiro128StarStar } from '../../util/random.ts';

const PROFILE: ReadonlyArray<readonly [Scorer, number]> = [
  [new QueueScorer(), 2],
  [new KvCacheUtilizationScorer(), 2],
  [new PrefixCacheScorer(), 3],
];

function totals(request: InferenceRequest, candidates: readonly Candidate[]): number[] {
  const out = candidates.map(() => 0);
  for (const [scorer, weight] of PROFILE) {
    const s = scorer.score(new Map(), request, candidates);
    for (let i = 0; i < candidates.length; i++) out[i]! += Math.min(1, Math.max(0, s[i] ?? 0)) * weight;
  }
  return out;
}

const metrics = [
  { waitingQueueSize: 0, kvCacheUsagePercent: 0.5 },
  { waitingQueueSize: 4, kvCacheUsagePercent: 0.2 },
  { waitingQueueSize: 8, kvCacheUsagePercent: 0.9 },
];
const fleet = () => metrics.map((m, i) => makeCandidate(makeEndpoint(`e${i}`, m)));
const prompt = 'You are a helpful assistant. '.repeat(20);

describe('default profile (queue ×2, kv-cache ×2, prefix ×3, max-score)', () => {
  it('cold cache: load decides', () => {
    const producer = approxPrefixCacheProducerFactory('approx-prefix-cache-producer', undefined, makeHandle()) as ApproxPrefixCacheProducer;
    const request = makeRequest({ payload: { model: 'm', prompt } });
    const candidates = fleet();
    producer.prepareData(request, candidates);
    const t = totals(request, candidates);
    // queue [1, 0.5, 0] × 2 + kv [0.5, 0.8, 0.1] × 2 + prefix 0
    assert.deepEqual(t.map((x) => +x.toFixed(9)), [3, 2.6, 0.2]);
    const picker = new MaxScorePicker('p', new Xoshiro128StarStar(1));
    const pick = picker.pick(new Map(), candidates.map((candidate, i) => ({ candidate, score: t[i] ?? 0 })));
    assert.deepEqual(names(pick.targets), ['e0']);
  });

  it('warm cache on the busiest endpoint outweighs its load (3 × 1.0 prefix)', () => {
    const producer = approxPrefixCacheProducerFactory('approx-prefix-cache-producer', undefined, makeHandle()) as ApproxPrefixCacheProducer;
    const first = makeRequest({ payload: { model: 'm', prompt } });
    const warm = fleet();
    producer.prepareData(first, warm);
    producer.preRequest(first, makeSchedulingResult({ default: [warm[2] as Candidate] }));

    const request = makeRequest({ payload: { model: 'm', prompt } });
    const candidates = fleet();
    producer.prepareData(request, candidates);
    const t = totals(request, candidates);
    assert.deepEqual(t.map((x) => +x.toFixed(9)), [3, 2.6, 3.2]);
    const pick = new MaxScorePicker('p', new Xoshiro128StarStar(1)).pick(
      new Map(),
      candidates.map((candidate, i) => ({ candidate, score: t[i] ?? 0 })),
    );
    assert.deepEqual(names(pick.targets), ['e2']);
  });
});
