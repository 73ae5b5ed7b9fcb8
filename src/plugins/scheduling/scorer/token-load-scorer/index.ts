/**
 * `token-load-scorer`: prefers endpoints with fewer estimated tokens in flight from this EPP (epp-spec §3.3).
 * Reads `InFlightLoad.tokens` (from `inflight-load-producer`); score = 1 − min(tokens, T) / T with
 * T = `queueThresholdTokens`; no load (or no attribute) scores 1.
 */
import { z } from 'zod';
import { InFlightLoadKey, inFlightLoadOf } from '../../../../framework/attributes.ts';
import { orDefaultWhenNotPositive, parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { DataConsumer } from '../../../../framework/requestcontrol.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';

export const TOKEN_LOAD_SCORER_TYPE = 'token-load-scorer';

/** 128 requests of 32 Ki tokens each (upstream default). */
export const DEFAULT_QUEUE_THRESHOLD_TOKENS = 4_194_304;

const parametersSchema = z.strictObject({
  // ≤ 0 → the default, as upstream (with a warning).
  queueThresholdTokens: orDefaultWhenNotPositive(
    'queueThresholdTokens',
    DEFAULT_QUEUE_THRESHOLD_TOKENS,
    z.number({ error: 'expected a positive integer (tokens)' }).int('expected a positive integer (tokens)').default(DEFAULT_QUEUE_THRESHOLD_TOKENS),
  ),
});

export class TokenLoadScorer implements Scorer, DataConsumer {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;
  readonly consumes: readonly string[] = [InFlightLoadKey];
  readonly queueThresholdTokens: number;

  constructor(name: string = TOKEN_LOAD_SCORER_TYPE, queueThresholdTokens = DEFAULT_QUEUE_THRESHOLD_TOKENS) {
    this.typedName = { type: TOKEN_LOAD_SCORER_TYPE, name };
    this.queueThresholdTokens = queueThresholdTokens;
  }

  score(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    const threshold = this.queueThresholdTokens;
    for (let i = 0; i < n; i++) {
      const tokens = inFlightLoadOf((candidates[i] as Candidate).attributes)?.tokens ?? 0;
      scores[i] = tokens <= 0 ? 1 : 1 - Math.min(tokens, threshold) / threshold;
    }
    return scores;
  }
}

export const tokenLoadScorerFactory: PluginFactory = (name, parameters) => {
  const typedName = { type: TOKEN_LOAD_SCORER_TYPE, name };
  const params = parsePluginParameters(typedName, parametersSchema, parameters);
  return new TokenLoadScorer(name, params.queueThresholdTokens);
};
