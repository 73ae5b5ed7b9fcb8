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
    const n = candidates.length;
    const scores = new Float64Array(n);
    if (n === 0) return scores;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const r = inFlightLoadOf((candidates[i] as Candidate).attributes)?.requests ?? 0;
      scores[i] = r;
      if (r < min) min = r;
      if (r > max) max = r;
    }
    if (max === min) return scores.fill(1);
    const range = max - min;
    for (let i = 0; i < n; i++) scores[i] = (max - (scores[i] as number)) / range;
    return scores;
  }
}

export const leastOutstandingRequestsScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new LeastOutstandingRequestsScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
