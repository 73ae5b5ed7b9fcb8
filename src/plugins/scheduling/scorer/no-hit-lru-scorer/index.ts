/**
 * `no-hit-lru-scorer` (llm-d's type): spreads *cold* requests — those whose prompt prefix no candidate holds —
 * over the endpoints least recently chosen for a cold request, so the new KV blocks that cold prefixes create
 * grow evenly across the fleet instead of piling onto whichever endpoint the other scorers happen to prefer.
 *
 * - Cold: every candidate's `PrefixCacheMatchInfo.matchBlocks` is 0 (or the attribute is missing: no producer
 *   answered, so nothing is known to be cached). Warm requests score 0.5 everywhere (neutral).
 * - Cold scores: rank r over n candidates → 1 − r / (n − 1). Endpoints never chosen for a cold request rank
 *   first, in candidate order; then the ones chosen before, the longest ago first. One candidate scores 1.
 * - preRequest: when the request was cold, its primary target and the `prefillProfile` target (P/D) become the
 *   most recently used. The LRU holds at most `lruSize` endpoints (the oldest is forgotten, i.e. ranks as never
 *   used again).
 */
import { z } from 'zod';
import { PrefixCacheMatchInfoKey, prefixCacheMatchInfoOf } from '../../../../framework/attributes.ts';
import { orDefaultWhenNotPositive, parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { DataConsumer, PreRequestHook } from '../../../../framework/requestcontrol.ts';
import type { Candidate, CycleState, SchedulingResult, Scorer } from '../../../../framework/scheduling.ts';

export const NO_HIT_LRU_SCORER_TYPE = 'no-hit-lru-scorer';
export const DEFAULT_LRU_SIZE = 1024;
export const DEFAULT_PREFILL_PROFILE = 'prefill';

const parametersSchema = z.strictObject({
  /**
   * llm-d reads the named prefix plugin's scheduling state. Here the match comes from the `PrefixCacheMatchInfo`
   * attribute, whichever producer writes it, so the name is accepted (llm-d configs carry it) and not needed.
   */
  prefixPluginName: z.string({ error: 'expected a plugin name' }).optional(),
  /** Profile whose target is also recorded (P/D disaggregation: the prefill endpoint computes the new blocks); "" → default. */
  prefillProfile: z.string({ error: 'expected a profile name' }).default(DEFAULT_PREFILL_PROFILE).transform((s) => (s === '' ? DEFAULT_PREFILL_PROFILE : s)),
  /** Endpoints remembered; more than the pool's size changes nothing. ≤ 0 → the default, as llm-d (with a warning). */
  lruSize: orDefaultWhenNotPositive('lruSize', DEFAULT_LRU_SIZE, z.number({ error: 'expected a positive integer' }).int('expected a positive integer').default(DEFAULT_LRU_SIZE)),
});

export type NoHitLruConfig = z.infer<typeof parametersSchema>;

export class NoHitLruScorer implements Scorer, DataConsumer, PreRequestHook {
  readonly typedName: TypedName;
  readonly category = 'distribution' as const;
  readonly consumes: readonly string[] = [PrefixCacheMatchInfoKey];
  readonly config: Readonly<NoHitLruConfig>;
  /** Endpoint name → (nothing); Map iteration order is the LRU order, oldest first. */
  readonly #lru = new Map<string, true>();
  /** Requests this scorer saw cold (scoring may run once per profile; preRequest reads and forgets it). */
  readonly #cold = new WeakSet<InferenceRequest>();

  constructor(name: string = NO_HIT_LRU_SCORER_TYPE, config: Partial<NoHitLruConfig> = {}) {
    this.typedName = { type: NO_HIT_LRU_SCORER_TYPE, name };
    this.config = Object.freeze({ prefillProfile: DEFAULT_PREFILL_PROFILE, lruSize: DEFAULT_LRU_SIZE, ...config });
  }

  /** Endpoints chosen for cold requests, least recently first (tests, debugging). */
  lruOrder(): string[] {
    return [...this.#lru.keys()];
  }

  score(_cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    let cold = true;
    for (let i = 0; i < n && cold; i++) {
      const info = prefixCacheMatchInfoOf((candidates[i] as Candidate).attributes);
      if (info !== undefined && info.matchBlocks > 0) cold = false;
    }
    if (!cold) {
      scores.fill(0.5);
      return scores;
    }
    this.#cold.add(request);
    if (n === 1) {
      scores[0] = 1;
      return scores;
    }
    // Rank: never used (candidate order) before used (LRU order, oldest first).
    const position = new Map<string, number>();
    let p = 0;
    for (const name of this.#lru.keys()) position.set(name, p++);
    const used: number[] = [];
    let rank = 0;
    for (let i = 0; i < n; i++) {
      if (position.has((candidates[i] as Candidate).endpoint.metadata.name)) used.push(i);
      else scores[i] = 1 - rank++ / (n - 1);
    }
    used.sort((a, b) => (position.get((candidates[a] as Candidate).endpoint.metadata.name) as number) - (position.get((candidates[b] as Candidate).endpoint.metadata.name) as number));
    for (const i of used) scores[i] = 1 - rank++ / (n - 1);
    return scores;
  }

  preRequest(request: InferenceRequest, result: SchedulingResult): void {
    if (!this.#cold.has(request)) return;
    this.#cold.delete(request);
    this.#touch(result.profileResults.get(result.primaryProfileName)?.targets[0]);
    if (this.config.prefillProfile !== result.primaryProfileName) this.#touch(result.profileResults.get(this.config.prefillProfile)?.targets[0]);
  }

  #touch(target: Candidate | undefined): void {
    if (target === undefined) return;
    const name = target.endpoint.metadata.name;
    this.#lru.delete(name);
    this.#lru.set(name, true);
    if (this.#lru.size > this.config.lruSize) this.#lru.delete(this.#lru.keys().next().value as string);
  }
}

export const noHitLruScorerFactory: PluginFactory = (name, parameters) => {
  const typedName = { type: NO_HIT_LRU_SCORER_TYPE, name };
  return new NoHitLruScorer(name, parsePluginParameters(typedName, parametersSchema, parameters));
};
