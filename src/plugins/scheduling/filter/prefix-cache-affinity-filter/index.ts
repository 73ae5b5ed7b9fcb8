/**
 * `prefix-cache-affinity-filter`: narrows the candidates to "sticky" endpoints, those whose prefix-cache
 * score (matchBlocks / totalBlocks) is at least `affinityThreshold`, so a request goes where its prompt is
 * likely cached (epp-spec §3.3). It keeps everything when: ≤ 1 candidate, threshold 0, an exploration draw
 * (probability `explorationProbability`), no sticky endpoint, or the TTFT gate fires (the best predicted TTFT
 * among sticky endpoints is more than `maxTTFTPenaltyMs` worse than among the others; endpoints without a
 * prediction count as +∞, so the gate is inert without a latency predictor).
 */
import { z } from 'zod';
import {
  LatencyPredictionInfoKey,
  latencyPredictionInfoOf,
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
});

export type PrefixCacheAffinityFilterConfig = z.infer<typeof parametersSchema>;

function prefixScore(c: Candidate): number {
  const info = prefixCacheMatchInfoOf(c.attributes);
  return info !== undefined && info.totalBlocks > 0 ? info.matchBlocks / info.totalBlocks : 0;
}

function bestTtftMs(candidates: readonly Candidate[]): number {
  let best = Infinity;
  for (const c of candidates) {
    const ttft = latencyPredictionInfoOf(c.attributes)?.ttftMs;
    if (ttft !== undefined && ttft < best) best = ttft;
  }
  return best;
}

export class PrefixCacheAffinityFilter implements Filter, DataConsumer {
  readonly typedName: TypedName;
  readonly config: Readonly<PrefixCacheAffinityFilterConfig>;
  /** The TTFT gate reads latency predictions when a predictor is configured; none is auto-added. */
  readonly consumes: readonly string[] = [PrefixCacheMatchInfoKey, LatencyPredictionInfoKey];
  readonly #random: RandomSource;

  constructor(name: string, random: RandomSource, config: PrefixCacheAffinityFilterConfig) {
    this.typedName = { type: PREFIX_CACHE_AFFINITY_FILTER_TYPE, name };
    this.#random = random;
    this.config = Object.freeze({ ...config });
  }

  filter(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): readonly Candidate[] {
    const { affinityThreshold, explorationProbability, maxTTFTPenaltyMs } = this.config;
    if (candidates.length <= 1 || affinityThreshold <= 0) return candidates;
    if (explorationProbability > 0 && this.#random.next() < explorationProbability) return candidates;
    const sticky: Candidate[] = [];
    const nonSticky: Candidate[] = [];
    for (const c of candidates) (prefixScore(c) >= affinityThreshold ? sticky : nonSticky).push(c);
    if (sticky.length === 0) return candidates;
    // ∞ − ∞ is NaN and NaN > x is false: with no predictions on either side, stickiness holds.
    if (maxTTFTPenaltyMs > 0 && nonSticky.length > 0 && bestTtftMs(sticky) - bestTtftMs(nonSticky) > maxTTFTPenaltyMs) {
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
