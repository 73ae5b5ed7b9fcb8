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

export const QUEUE_SCORER_TYPE = 'queue-scorer';

const parametersSchema = z.strictObject({});

export class QueueScorer implements Scorer {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;

  constructor(name: string = QUEUE_SCORER_TYPE) {
    this.typedName = { type: QUEUE_SCORER_TYPE, name };
  }

  score(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    if (n === 0) return scores;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const q = (candidates[i] as Candidate).endpoint.metrics.waitingQueueSize;
      if (q < min) min = q;
      if (q > max) max = q;
    }
    if (max === min) return scores.fill(1);
    const range = max - min;
    for (let i = 0; i < n; i++) scores[i] = (max - (candidates[i] as Candidate).endpoint.metrics.waitingQueueSize) / range;
    return scores;
  }
}

export const queueScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new QueueScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
