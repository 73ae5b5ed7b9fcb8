/**
 * `queue-scorer`: prefers endpoints with shorter model-server waiting queues (epp-spec §3.3).
 * Score = (max − q) / (max − min) over the candidates' `waitingQueueSize`; 1 for every candidate when all
 * queues are equal.
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import { lowerIsBetterScores } from '../lower-is-better.ts';

export const QUEUE_SCORER_TYPE = 'queue-scorer';

const parametersSchema = z.strictObject({});

export class QueueScorer implements Scorer {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;

  constructor(name: string = QUEUE_SCORER_TYPE) {
    this.typedName = { type: QUEUE_SCORER_TYPE, name };
  }

  score(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    return lowerIsBetterScores(candidates, (c) => c.endpoint.metrics.waitingQueueSize);
  }
}

export const queueScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new QueueScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
