/**
 * `prefix-cache-affinity-filter`: narrows the candidates to "sticky" endpoints, those whose prefix-cache
 * score (matchBlocks / totalBlocks) is at least `affinityThreshold`, so a request goes where its prompt is
 * likely cached (epp-spec §3.3). It keeps everything when: ≤ 1 candidate, threshold 0, an exploration draw
 * (probability `explorationProbability`), no sticky endpoint, or the TTFT gate fires (the best predicted TTFT
 * among sticky endpoints is more than `maxTTFTPenaltyMs` worse than among the others; endpoints without a
 * prediction count as +∞, so the gate is inert without a latency predictor).
 *
 * "Sticky until saturated": with `peakPrefillThroughput` (tokens/s) > 0, an endpoint without a latency
 * prediction gets an estimated TTFT = (uncached prompt tokens queued there by this EPP + this request's
 * uncached tokens there) / peakPrefillThroughput, from `prefill-load-producer`. The request then stays on the
 * endpoints holding its prefix unless the best of them is estimated more than `maxTTFTPenaltyMs` slower than
 * the best other endpoint.
 */
import { z } from 'zod';
import {
  LatencyPredictionInfoKey,
  latencyPredictionInfoOf,
  PrefillLoadKey,
  prefillLoadOf,
  PrefixCacheMatchInfoKey,
  prefixCacheMatchInfoOf,
} from '../../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, RandomSource, TypedName } from '../../../../framework/plugin.ts';
import type { DataConsumer } from '../../../../framework/requestcontrol.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { Candidate, CycleState, Filter } from '../../../../framework/scheduling.ts';

export const PREFIX_CACHE_AFFINITY_FILTER_TYPE = 'prefix-cache-affinity-filter';

const parametersSchema = z.strictObject({
  affinityThreshold: z
    .number({ error: 'expected a number in [0, 1]' })
    .min(0, 'expected a number in [0, 1]')
    .max(1, 'expected a number in [0, 1]')
    .default(0.8),
  explorationProbability: z
    .number({ error: 'expected a probability in [0, 1]' })
    .min(0, 'expected a probability in [0, 1]')
    .max(1, 'expected a probability in [0, 1]')
    .default(0.01),
  maxTTFTPenaltyMs: z
    .number({ error: 'expected a number of milliseconds >= 0' })
    .min(0, 'expected a number of milliseconds >= 0')
    .default(5000),
  // Prefill tokens per second of one endpoint (calibrate: docs/benchmarks.md); 0 = no estimate, predictions only.
  peakPrefillThroughput: z
    .number({ error: 'expected a number of tokens per second >= 0' })
    .min(0, 'expected a number of tokens per second >= 0')
    .default(0),
});

export type PrefixCacheAffinityFilterConfig = z.infer<typeof parametersSchema>;

function prefixScore(c: Candidate): number {
  const info = prefixCacheMatchInfoOf(c.attributes);
  return info !== undefined && info.totalBlocks > 0 ? info.matchBlocks / info.totalBlocks : 0;
}

/**
 * TTFT of a candidate: the latency prediction when there is one, else (with a prefill throughput) the queued
 * uncached prefill tokens plus this request's uncached tokens there, over the throughput; else +∞.
 */
function estimatedTtftMs(c: Candidate, peakPrefillThroughput: number): number {
  const predicted = latencyPredictionInfoOf(c.attributes)?.ttftMs;
  if (predicted !== undefined) return predicted;
  if (peakPrefillThroughput <= 0) return Infinity;
  const queued = prefillLoadOf(c.attributes)?.uncachedTokens ?? 0;
  const info = prefixCacheMatchInfoOf(c.attributes);
  const own = info !== undefined && info.totalBlocks > 0 ? Math.max(0, info.totalBlocks - info.matchBlocks) * info.blockSizeTokens : 0;
  return ((Math.max(0, queued) + own) / peakPrefillThroughput) * 1000;
}

function bestTtftMs(candidates: readonly Candidate[], peakPrefillThroughput: number): number {
  let best = Infinity;
  for (const c of candidates) {
    const ttft = estimatedTtftMs(c, peakPrefillThroughput);
    if (ttft < best) best = ttft;
  }
  return best;
}

export class PrefixCacheAffinityFilter implements Filter, DataConsumer {
  readonly typedName: TypedName;
  readonly config: Readonly<PrefixCacheAffinityFilterConfig>;
  /**
   * The TTFT gate reads latency predictions when a predictor is configured (none is auto-added), and with a
   * prefill throughput the in-flight prefill load (`prefill-load-producer`, auto-added).
   */
  readonly consumes: readonly string[];
  readonly #random: RandomSource;

  constructor(name: string, random: RandomSource, config: PrefixCacheAffinityFilterConfig) {
    this.typedName = { type: PREFIX_CACHE_AFFINITY_FILTER_TYPE, name };
    this.#random = random;
    this.config = Object.freeze({ ...config });
    this.consumes =
      config.peakPrefillThroughput > 0
        ? [PrefixCacheMatchInfoKey, LatencyPredictionInfoKey, PrefillLoadKey]
        : [PrefixCacheMatchInfoKey, LatencyPredictionInfoKey];
  }

  filter(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): readonly Candidate[] {
    const { affinityThreshold, explorationProbability, maxTTFTPenaltyMs, peakPrefillThroughput } = this.config;
    if (candidates.length <= 1 || affinityThreshold <= 0) return candidates;
    if (explorationProbability > 0 && this.#random.next() < explorationProbability) return candidates;
    const sticky: Candidate[] = [];
    const nonSticky: Candidate[] = [];
    for (const c of candidates) (prefixScore(c) >= affinityThreshold ? sticky : nonSticky).push(c);
    if (sticky.length === 0) return candidates;
    // ∞ − ∞ is NaN and NaN > x is false: with no predictions on either side, stickiness holds.
    if (maxTTFTPenaltyMs > 0 && nonSticky.length > 0 && bestTtftMs(sticky, peakPrefillThroughput) - bestTtftMs(nonSticky, peakPrefillThroughput) > maxTTFTPenaltyMs) {
      return candidates;
    }
    return sticky;
  }
}

export const prefixCacheAffinityFilterFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: PREFIX_CACHE_AFFINITY_FILTER_TYPE, name };
  const config = parsePluginParameters(typedName, parametersSchema, parameters);
  return new PrefixCacheAffinityFilter(name, handle.random, config);
};
