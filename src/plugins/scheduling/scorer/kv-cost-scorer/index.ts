/**
 * `kv-cost-scorer`: Dynamo's KV-router cost in the scorer form (precise-prefix-design §5.8). For each endpoint
 * e, with P the request's prompt tokens, B the block size and m(e) the blocks believed cached there:
 *
 *   prefillBlocks(e) = max(0, (queuedUncachedTokens(e) + P) / B − m(e))     new prefill work, blocks
 *   activeBlocks(e)  = (activePromptTokens(e) + P) / B                      KV blocks held once admitted
 *   cost(e)          = overlapScoreWeight × prefillBlocks(e) + activeBlocks(e)
 *   score(e)         = 1 − cost(e) / max cost                               (lower cost is better; all 1 if 0)
 *
 * The loads are this EPP's own (`prefill-load-producer`), the match from whichever prefix producer runs
 * (precise with KV events, or approximate). Dynamo's router then picks with a softmax temperature; with
 * `max-score-picker` this is its temperature-0 argmin.
 */
import { z } from 'zod';
import { PrefillLoadKey, prefillLoadOf, PrefixCacheMatchInfoKey, prefixCacheMatchInfoOf } from '../../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { DataConsumer } from '../../../../framework/requestcontrol.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';

export const KV_COST_SCORER_TYPE = 'kv-cost-scorer';

const parametersSchema = z.strictObject({
  // Dynamo's `overlap_score_weight`: how much one block of new prefill costs relative to one held block.
  overlapScoreWeight: z.number({ error: 'expected a number >= 0' }).min(0, 'expected a number >= 0').default(1),
  // Used when no prefix producer gave a block size (prompt shorter than a block, or no match info).
  blockSize: z.number({ error: 'expected a positive integer' }).int('expected a positive integer').positive('expected a positive integer').default(16),
});

export type KvCostScorerConfig = z.infer<typeof parametersSchema>;

/** Cost of routing the request to one candidate; `promptTokens` when no match info says otherwise. */
export function kvCost(c: Candidate, promptTokens: number, config: KvCostScorerConfig): number {
  const info = prefixCacheMatchInfoOf(c.attributes);
  const load = prefillLoadOf(c.attributes);
  const block = info !== undefined && info.blockSizeTokens > 0 ? info.blockSizeTokens : config.blockSize;
  const prompt = info !== undefined && info.totalBlocks > 0 ? info.totalBlocks * info.blockSizeTokens : promptTokens;
  const matched = info !== undefined ? Math.max(0, info.matchBlocks) : 0;
  const prefillBlocks = Math.max(0, (Math.max(0, load?.uncachedTokens ?? 0) + prompt) / block - matched);
  const activeBlocks = (Math.max(0, load?.activeTokens ?? 0) + prompt) / block;
  return config.overlapScoreWeight * prefillBlocks + activeBlocks;
}

export class KvCostScorer implements Scorer, DataConsumer {
  readonly typedName: TypedName;
  readonly category = 'affinity' as const;
  readonly consumes: readonly string[] = [PrefixCacheMatchInfoKey, PrefillLoadKey];
  readonly config: Readonly<KvCostScorerConfig>;

  constructor(name: string, config: KvCostScorerConfig) {
    this.typedName = { type: KV_COST_SCORER_TYPE, name };
    this.config = Object.freeze({ ...config });
  }

  score(_cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    const fallbackPrompt = Math.max(1, Math.floor(request.requestSizeBytes / 4));
    let max = 0;
    for (let i = 0; i < n; i++) {
      scores[i] = kvCost(candidates[i] as Candidate, fallbackPrompt, this.config);
      if ((scores[i] as number) > max) max = scores[i] as number;
    }
    for (let i = 0; i < n; i++) scores[i] = max > 0 ? 1 - (scores[i] as number) / max : 1;
    return scores;
  }
}

export const kvCostScorerFactory: PluginFactory = (name, parameters) => {
  const typedName = { type: KV_COST_SCORER_TYPE, name };
  return new KvCostScorer(name, parsePluginParameters(typedName, parametersSchema, parameters));
};
