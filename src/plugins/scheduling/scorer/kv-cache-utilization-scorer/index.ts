/**
 * `kv-cache-utilization-scorer`: prefers endpoints with free KV-cache space (epp-spec §3.3).
 * Score = 1 − kvCacheUsagePercent (usage is a fraction in [0, 1]; the framework clamps the score to [0, 1]).
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';

export const KV_CACHE_UTILIZATION_SCORER_TYPE = 'kv-cache-utilization-scorer';

const parametersSchema = z.strictObject({});

export class KvCacheUtilizationScorer implements Scorer {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;

  constructor(name: string = KV_CACHE_UTILIZATION_SCORER_TYPE) {
    this.typedName = { type: KV_CACHE_UTILIZATION_SCORER_TYPE, name };
  }

  score(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    for (let i = 0; i < n; i++) scores[i] = 1 - (candidates[i] as Candidate).endpoint.metrics.kvCacheUsagePercent;
    return scores;
  }
}

export const kvCacheUtilizationScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new KvCacheUtilizationScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
