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
import { lowerIsBetterScores } from '../lower-is-better.ts';

export const RUNNING_REQUESTS_SIZE_SCORER_TYPE = 'running-requests-size-scorer';

const parametersSchema = z.strictObject({});

export class RunningRequestsSizeScorer implements Scorer {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;

  constructor(name: string = RUNNING_REQUESTS_SIZE_SCORER_TYPE) {
    this.typedName = { type: RUNNING_REQUESTS_SIZE_SCORER_TYPE, name };
  }

  score(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    return lowerIsBetterScores(candidates, (c) => c.endpoint.metrics.runningRequestsSize);
  }
}

export const runningRequestsSizeScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new RunningRequestsSizeScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
