/**
 * `lora-affinity-scorer`: prefers endpoints that already run the request's LoRA adapter, then endpoints with
 * a free adapter slot, then endpoints where the adapter is queued to load (epp-spec §3.3).
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';

export const LORA_AFFINITY_SCORER_TYPE = 'lora-affinity-scorer';

/** Adapter already loaded and running. */
const SCORE_ACTIVE = 1.0;
/** Adapter not loaded, but the endpoint has a free adapter slot. */
const SCORE_FREE_SLOT = 0.8;
/** No free slot, but the adapter is waiting to be loaded there. */
const SCORE_WAITING = 0.6;

const parametersSchema = z.strictObject({});

export class LoraAffinityScorer implements Scorer {
  readonly typedName: TypedName;
  readonly category = 'affinity' as const;

  constructor(name: string = LORA_AFFINITY_SCORER_TYPE) {
    this.typedName = { type: LORA_AFFINITY_SCORER_TYPE, name };
  }

  score(_cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    const model = request.targetModel;
    for (let i = 0; i < n; i++) {
      const m = (candidates[i] as Candidate).endpoint.metrics;
      if (m.activeModels.has(model)) scores[i] = SCORE_ACTIVE;
      else if (m.activeModels.size + m.waitingModels.size < m.maxActiveModels) scores[i] = SCORE_FREE_SLOT;
      else if (m.waitingModels.has(model)) scores[i] = SCORE_WAITING;
      // else 0: loading the adapter would have to wait for a slot to free up.
    }
    return scores;
  }
}

export const loraAffinityScorerFactory: PluginFactory = (name, parameters) => {
  const scorer = new LoraAffinityScorer(name);
  parsePluginParameters(scorer.typedName, parametersSchema, parameters);
  return scorer;
};
