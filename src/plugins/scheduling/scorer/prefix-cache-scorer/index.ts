/**
 * `prefix-cache-scorer`: prefers endpoints that likely hold the request's prompt prefix in their KV cache
 * (epp-spec §3.3–§3.4). Score = matchBlocks / totalBlocks from the `PrefixCacheMatchInfo` attribute that
 * `approx-prefix-cache-producer` writes; 0 when the attribute is missing or the prompt has no blocks.
 */
import { z } from 'zod';
import { PrefixCacheMatchInfoKey, prefixCacheMatchInfoOf } from '../../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { Logger, PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { DataConsumer } from '../../../../framework/requestcontrol.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';

export const PREFIX_CACHE_SCORER_TYPE = 'prefix-cache-scorer';

const nonNegativeInt = z.number().int('expected an integer').nonnegative('expected an integer >= 0');

/**
 * The scorer has no parameters of its own. Before the producer/scorer split, upstream's prefix plugin took the
 * indexing parameters below, and published configs still carry them; upstream's scorer now ignores them. We
 * accept them (type-checked) so those configs load unchanged, and warn that they have no effect here.
 */
const parametersSchema = z.strictObject({
  autoTune: z.boolean().optional(),
  blockSize: nonNegativeInt.optional(),
  blockSizeTokens: nonNegativeInt.optional(),
  hashBlockSize: nonNegativeInt.optional(),
  maxPrefixBlocksToMatch: nonNegativeInt.optional(),
  maxPrefixTokensToMatch: nonNegativeInt.optional(),
  lruCapacityPerServer: nonNegativeInt.optional(),
});

export class PrefixCacheScorer implements Scorer, DataConsumer {
  readonly typedName: TypedName;
  readonly category = 'affinity' as const;
  readonly consumes: readonly string[] = [PrefixCacheMatchInfoKey];
  readonly #logger: Logger | undefined;

  constructor(name: string = PREFIX_CACHE_SCORER_TYPE, logger?: Logger) {
    this.typedName = { type: PREFIX_CACHE_SCORER_TYPE, name };
    this.#logger = logger;
  }

  score(_cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    const n = candidates.length;
    const scores = new Float64Array(n);
    let missing = 0;
    for (let i = 0; i < n; i++) {
      const info = prefixCacheMatchInfoOf((candidates[i] as Candidate).attributes);
      if (info === undefined) missing++;
      else if (info.totalBlocks > 0) scores[i] = info.matchBlocks / info.totalBlocks;
    }
    if (missing > 0) {
      // A producer is auto-added for this key, so a missing attribute means it failed or timed out.
      this.#logger?.error(
        { requestId: request.requestId, missing, candidates: n, key: PrefixCacheMatchInfoKey },
        'prefix cache match info missing; those endpoints score 0',
      );
    }
    return scores;
  }
}

export const prefixCacheScorerFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: PREFIX_CACHE_SCORER_TYPE, name };
  const params = parsePluginParameters(typedName, parametersSchema, parameters);
  const legacy = Object.keys(params).filter((k) => params[k as keyof typeof params] !== undefined);
  if (legacy.length > 0) {
    handle.logger.warn(
      { plugin: name, type: PREFIX_CACHE_SCORER_TYPE, parameters: legacy },
      `plugin '${name}' (type: ${PREFIX_CACHE_SCORER_TYPE}): parameters ${legacy.join(', ')} are deprecated here and ` +
        `have no effect; configure them on an 'approx-prefix-cache-producer' plugin instead`,
    );
  }
  return new PrefixCacheScorer(name, handle.logger);
};
