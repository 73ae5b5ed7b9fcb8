/**
 * `running-requests-size-scorer`: prefers endpoints running fewer requests (epp-spec §3.3).
 * Score = (max − r) / (max − min) over the candidates' `runningRequestsSize`; 1 for every candidate when all
 * counts are equal.
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';

export const RUNNING_REQUESTS_SIZE_SCORER_TYPE = 'running-requests-size-scorer';

const parametersSchema = z.strictObject({});

export class RunningRequestsSizeScorer implements Scorer {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;

  constructor(name: string = RUNNING_REQUESTS_SIZE_SCORER_TYPE) {
    this.typedName = { type: RUNNING_REQUESTS_SIZE_SCORER_TYPE, name };
  }

  score(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    if (n === 0) return scores;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const r = (candidates[i] as Candidate).endpoint.metrics.runningRequestsSize;
      if (r < min) min = r;
      if (r > max) max = r;
    }
    if (max === min) return scores.fill(1);
    const range = max - min;
    for (let i = 0; i < n; i++) scores[i] = (max - (candidates[i] as Candidate).endpoint.metrics.runningRequestsSize) / range;
    return scores;
  }
}

export const runningRequestsSizeScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new RunningRequestsSizeScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
