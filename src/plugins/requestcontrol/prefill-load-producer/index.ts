/**
 * `prefill-load-producer`: per endpoint, the prompt tokens this EPP has routed there that still await their
 * prefill (uncached part, until the first response chunk) and that still hold KV blocks (until completion).
 * Produces `PrefillLoad` for the sticky gate of `prefix-cache-affinity-filter` (estimated TTFT = queued
 * prefill tokens / prefill throughput) and for `kv-cost-scorer` (Dynamo-style prefill + active blocks).
 *
 * The uncached part of a request is its prompt tokens minus the blocks the chosen endpoint was believed to
 * hold (`PrefixCacheMatchInfo` on the target, from whichever prefix producer ran). Prompt tokens come from that
 * match info (`totalBlocks × blockSizeTokens`, the block-aligned prompt) or, without one, from the body size
 * (4 bytes per token). Accounting is exactly-once: each charge is released once, whatever the outcome.
 */
import { z } from 'zod';
import { PrefillLoadKey, prefixCacheMatchInfoOf, type PrefillLoad } from '../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../framework/request.ts';
import { promptText } from '../../../framework/request.ts';
import type {
  DataProducer,
  Outcome,
  PreRequestHook,
  ResponseChunk,
  ResponseChunkHook,
  ResponseCompleteHook,
  ResponseInfo,
} from '../../../framework/requestcontrol.ts';
import type { Candidate, SchedulingResult } from '../../../framework/scheduling.ts';

export const PREFILL_LOAD_PRODUCER_TYPE = 'prefill-load-producer';

const NO_LOAD: PrefillLoad = Object.freeze({ uncachedTokens: 0, activeTokens: 0, requests: 0 });
const BYTES_PER_TOKEN = 4;

const parametersSchema = z.strictObject({});

/** Prompt tokens of a request routed to `target`, and how many of them are believed cached there. */
export function promptAndCachedTokens(request: InferenceRequest, target: Candidate): { prompt: number; cached: number } {
  const info = prefixCacheMatchInfoOf(target.attributes);
  const fromBody =
    request.requestSizeBytes > 0
      ? Math.max(1, Math.floor(request.requestSizeBytes / BYTES_PER_TOKEN))
      : Math.max(1, Math.round(promptText(request.body).length / BYTES_PER_TOKEN));
  if (info === undefined || info.totalBlocks <= 0) return { prompt: fromBody, cached: 0 };
  const prompt = info.totalBlocks * info.blockSizeTokens;
  return { prompt, cached: Math.min(prompt, Math.max(0, info.matchBlocks) * info.blockSizeTokens) };
}

interface Charge {
  readonly endpoint: string;
  readonly uncached: number;
  readonly prompt: number;
  prefilled: boolean;
  released: boolean;
}

export class PrefillLoadProducer implements DataProducer, PreRequestHook, ResponseChunkHook, ResponseCompleteHook {
  readonly typedName: TypedName;
  readonly produces: readonly string[] = [PrefillLoadKey];
  readonly consumes: readonly string[] = [];
  readonly #loads = new Map<string, PrefillLoad>();
  readonly #charges = new WeakMap<InferenceRequest, Charge>();

  constructor(name: string = PREFILL_LOAD_PRODUCER_TYPE) {
    this.typedName = { type: PREFILL_LOAD_PRODUCER_TYPE, name };
  }

  loadOf(endpointName: string): PrefillLoad {
    return this.#loads.get(endpointName) ?? NO_LOAD;
  }

  trackedEndpoints(): string[] {
    return [...this.#loads.keys()];
  }

  prepareData(_request: InferenceRequest, candidates: readonly Candidate[]): void {
    for (const c of candidates) c.attributes.set(PrefillLoadKey, this.#loads.get(c.endpoint.metadata.name) ?? NO_LOAD);
  }

  /** Charges the primary profile's first target (where the request's prefill runs). */
  preRequest(request: InferenceRequest, result: SchedulingResult, signal: AbortSignal): void {
    if (signal.aborted || this.#charges.has(request)) return;
    const target = result.profileResults.get(result.primaryProfileName)?.targets[0];
    if (target === undefined) return;
    const { prompt, cached } = promptAndCachedTokens(request, target);
    const charge: Charge = { endpoint: target.endpoint.metadata.name, uncached: prompt - cached, prompt, prefilled: false, released: false };
    this.#apply(charge.endpoint, charge.uncached, charge.prompt, +1);
    this.#charges.set(request, charge);
  }

  onResponseChunk(response: ResponseInfo, chunk: ResponseChunk): void {
    if (!chunk.startOfStream) return;
    const c = this.#charges.get(response.request);
    if (c === undefined || c.prefilled || c.released) return;
    c.prefilled = true;
    this.#apply(c.endpoint, -c.uncached, 0, 0);
  }

  onResponseComplete(response: ResponseInfo, _outcome: Outcome): void {
    const c = this.#charges.get(response.request);
    if (c === undefined || c.released) return;
    this.#charges.delete(response.request);
    c.released = true;
    this.#apply(c.endpoint, c.prefilled ? 0 : -c.uncached, -c.prompt, -1);
  }

  #apply(endpoint: string, uncachedDelta: number, activeDelta: number, requestsDelta: number): void {
    const cur = this.#loads.get(endpoint) ?? NO_LOAD;
    const requests = cur.requests + requestsDelta;
    if (requests <= 0) {
      this.#loads.delete(endpoint);
      return;
    }
    this.#loads.set(
      endpoint,
      Object.freeze({ uncachedTokens: cur.uncachedTokens + uncachedDelta, activeTokens: cur.activeTokens + activeDelta, requests }),
    );
  }
}

export const prefillLoadProducerFactory: PluginFactory = (name, parameters) => {
  const producer = new PrefillLoadProducer(name);
  parsePluginParameters(producer.typedName, parametersSchema, parameters);
  return producer;
};
