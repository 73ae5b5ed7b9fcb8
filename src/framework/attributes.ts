/**
 * Per-request endpoint attributes shared between data producers and the scorers/filters that read them.
 *
 * A producer writes one value per candidate into `Candidate.attributes` under a key below; a consumer
 * declares the key in `consumes` so the runtime orders producers first and auto-adds a default producer when
 * none is configured (epp-spec §2.3). Key strings are upstream's, so dependency declarations line up with
 * upstream plugin documentation. Values are immutable once written: a producer writes a fresh object per
 * candidate per request, consumers never mutate it.
 */

/** Key of the approximate prefix-cache match of the request's prompt against one endpoint. */
export const PrefixCacheMatchInfoKey = 'PrefixCacheMatchInfoKey';

/** Written by `approx-prefix-cache-producer` on every candidate. */
export interface PrefixCacheMatchInfo {
  /** Prompt blocks believed to be cached on this endpoint (0 ≤ matchBlocks ≤ totalBlocks). */
  readonly matchBlocks: number;
  /** Blocks the request's prompt was split into (0 when the prompt is shorter than one block). */
  readonly totalBlocks: number;
  /** Block size used for this request, in tokens (one block hashes `blockSizeTokens × 4` prompt bytes). */
  readonly blockSizeTokens: number;
}

/** Key of the EPP-local in-flight load of one endpoint (requests routed there and not yet completed). */
export const InFlightLoadKey = 'InFlightLoadKey';

/** Written by `inflight-load-producer` on every candidate. */
export interface InFlightLoad {
  /** Estimated tokens (input + expected output) of the requests in flight to this endpoint. */
  readonly tokens: number;
  /** Requests in flight to this endpoint. */
  readonly requests: number;
}

/** Key of the EPP-local prefill and KV load of one endpoint (`prefill-load-producer`). */
export const PrefillLoadKey = 'PrefillLoadKey';

/** Written by `prefill-load-producer` on every candidate. */
export interface PrefillLoad {
  /** Uncached prompt tokens of the requests routed here that have not produced their first chunk yet. */
  readonly uncachedTokens: number;
  /** Prompt tokens of the requests routed here and not completed (their KV blocks are held). */
  readonly activeTokens: number;
  /** Requests routed here and not completed. */
  readonly requests: number;
}

/** Reads a `PrefillLoad` attribute, or undefined when absent or not of that shape. */
export function prefillLoadOf(attributes: ReadonlyMap<string, unknown>): PrefillLoad | undefined {
  const v = attributes.get(PrefillLoadKey) as Partial<PrefillLoad> | undefined;
  return v !== undefined && typeof v.uncachedTokens === 'number' && typeof v.activeTokens === 'number' ? (v as PrefillLoad) : undefined;
}

/**
 * Key of the latency prediction for one endpoint. Produced upstream by `predicted-latency-producer` (not
 * built in here: it needs an external predictor service); read opportunistically by
 * `prefix-cache-affinity-filter`'s TTFT gate.
 */
export const LatencyPredictionInfoKey = 'LatencyPredictionInfoKey';

/** Latency prediction for one endpoint (upstream `LatencyPredictionInfo`). */
export interface LatencyPredictionInfo {
  readonly ttftValid: boolean;
  readonly tpotValid: boolean;
  /** SLO minus predicted TTFT, in ms (negative = SLO missed). */
  readonly ttftHeadroomMs: number;
  readonly tpotHeadroomMs: number;
  /** Predicted time to first token, in ms. */
  readonly ttftMs: number;
  /** Predicted time per output token, in ms. */
  readonly tpotMs: number;
  readonly dispatchedRequestCount: number;
}

/** Reads a `PrefixCacheMatchInfo` attribute, or undefined when absent or not of that shape. */
export function prefixCacheMatchInfoOf(attributes: ReadonlyMap<string, unknown>): PrefixCacheMatchInfo | undefined {
  const v = attributes.get(PrefixCacheMatchInfoKey) as Partial<PrefixCacheMatchInfo> | undefined;
  return v !== undefined && typeof v.matchBlocks === 'number' && typeof v.totalBlocks === 'number'
    ? (v as PrefixCacheMatchInfo)
    : undefined;
}

/** Reads an `InFlightLoad` attribute, or undefined when absent or not of that shape. */
export function inFlightLoadOf(attributes: ReadonlyMap<string, unknown>): InFlightLoad | undefined {
  const v = attributes.get(InFlightLoadKey) as Partial<InFlightLoad> | undefined;
  return v !== undefined && typeof v.tokens === 'number' && typeof v.requests === 'number' ? (v as InFlightLoad) : undefined;
}

/** Reads a `LatencyPredictionInfo` attribute, or undefined when absent or not of that shape. */
export function latencyPredictionInfoOf(attributes: ReadonlyMap<string, unknown>): LatencyPredictionInfo | undefined {
  const v = attributes.get(LatencyPredictionInfoKey) as Partial<LatencyPredictionInfo> | undefined;
  return v !== undefined && typeof v.ttftMs === 'number' ? (v as LatencyPredictionInfo) : undefined;
}

/**
 * Key of the request's prompt as the model server tokenizes it (chat template applied). Written by
 * `token-producer` with the same frozen value on every candidate; absent when tokenization failed, in which case
 * consumers fall back (the precise prefix producer uses approximate matching for that request).
 */
export const TokenizedPromptKey = 'TokenizedPromptKey';

/** Written by `token-producer`. */
export interface TokenizedPrompt {
  /** Token ids of the (first) prompt, exactly as the engine would see them. */
  readonly tokenIds: ArrayLike<number>;
  /** Which backend produced them (`render`, `sim`). */
  readonly source: string;
}

/** Reads a `TokenizedPrompt` attribute, or undefined when absent or not of that shape. */
export function tokenizedPromptOf(attributes: ReadonlyMap<string, unknown>): TokenizedPrompt | undefined {
  const v = attributes.get(TokenizedPromptKey) as Partial<TokenizedPrompt> | undefined;
  return v !== undefined && v.tokenIds !== undefined && typeof v.tokenIds.length === 'number' ? (v as TokenizedPrompt) : undefined;
}
