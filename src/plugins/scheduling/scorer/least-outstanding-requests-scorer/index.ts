/**
 * `least-outstanding-requests-scorer`: prefers endpoints with fewer requests outstanding from this EPP
 * (routed, not yet completed), the classic least-outstanding-requests / least-connections balancer.
 * Reads `InFlightLoad.requests` (from `inflight-load-producer`, added automatically), which moves with every
 * routing decision instead of waiting for the next metrics scrape.
 *
 * Score = (max − r) / (max − min) over the candidates' outstanding counts; 1 for every candidate when all
 * are equal (a missing attribute counts as 0 outstanding).
 */
import { z } from 'zod';
import { InFlightLoadKey, inFlightLoadOf } from '../../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { DataConsumer } from '../../../../framework/requestcontrol.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import { lowerIsBetterScores } from '../lower-is-better.ts';

export const LEAST_OUTSTANDING_REQUESTS_SCORER_TYPE = 'least-outstanding-requests-scorer';

const parametersSchema = z.strictObject({});

export class LeastOutstandingRequestsScorer implements Scorer, DataConsumer {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;
  readonly consumes: readonly string[] = [InFlightLoadKey];

  constructor(name: string = LEAST_OUTSTANDING_REQUESTS_SCORER_TYPE) {
    this.typedName = { type: LEAST_OUTSTANDING_REQUESTS_SCORER_TYPE, name };
  }

  score(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    return lowerIsBetterScores(candidates, (c) => inFlightLoadOf(c.attributes)?.requests ?? 0);
  }
}

export const leastOutstandingRequestsScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new LeastOutstandingRequestsScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
