/**
 * `inflight-load-producer`: counts, per endpoint, the requests this EPP has routed there that have not
 * completed yet, and their estimated tokens (epp-spec §3.6). Produces `InFlightLoad` for `token-load-scorer`.
 *
 * Accounting is exactly-once by construction: preRequest charges the first target of every profile that
 * produced one and remembers the charges for that request (WeakMap keyed by the request object); each charge
 * is released once, either early (the `prefill` profile's endpoint, on the first response chunk, when the
 * prefill work is done) or in onResponseComplete, which the runtime calls exactly once per scheduled request
 * whatever the outcome: success, upstream error, abort or internal error. (Upstream released only on a
 * normal end of stream, so aborted requests leaked their counts.) An endpoint's counters disappear when they
 * return to zero, so endpoints that left the pool leave nothing behind once their requests end.
 *
 * Replication (src/framework/replication.ts): the producer is a `ReplicatedGauges`. With a cross-replica
 * syncer, it publishes its own absolute counts periodically, and the load it produces for scoring is its own
 * plus every peer's latest counts while they are fresh (they expire on the syncer's `loadStaleMs`; a peer that
 * shuts down is dropped at once). Absolute values heal after any loss: no remote load can leak.
 */
import { z } from 'zod';
import { InFlightLoadKey, type InFlightLoad } from '../../../framework/attributes.ts';
import { ENDPOINT_EVENTS, type EndpointEvent, type NotificationExtractor } from '../../../framework/datasource.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { Clock, PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { EndpointGauge, ReplicatedGauges } from '../../../framework/replication.ts';
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

export const INFLIGHT_LOAD_PRODUCER_TYPE = 'inflight-load-producer';
/** The profile whose endpoint is released at the first response chunk (prefill/decode disaggregation). */
export const PREFILL_PROFILE_NAME = 'prefill';

/** Average bytes (or characters) per token of the simple estimator. */
export const BYTES_PER_TOKEN = 4;
/** Expected output tokens per input token of the simple estimator. */
export const OUTPUT_TOKENS_PER_INPUT_TOKEN = 1.5;

const NO_LOAD: InFlightLoad = Object.freeze({ tokens: 0, requests: 0 });

const parametersSchema = z.strictObject({});

/**
 * Estimated total tokens (input + output) of a request: input from the body size (4 bytes per token, at least
 * 1) or, when the size is unknown, from the prompt text; output = round(input × 1.5).
 */
export function estimateTokens(request: InferenceRequest): number {
  const inputTokens =
    request.requestSizeBytes > 0
      ? Math.max(Math.floor(request.requestSizeBytes / BYTES_PER_TOKEN), 1)
      : Math.max(1, Math.round(promptText(request.body).length / BYTES_PER_TOKEN));
  return inputTokens + Math.round(inputTokens * OUTPUT_TOKENS_PER_INPUT_TOKEN);
}

interface Charge {
  readonly endpoint: string;
  readonly tokens: number;
  readonly profile: string;
  /** The endpoint's generation when charged: a charge from before the endpoint was deleted releases nothing. */
  readonly generation: number;
  released: boolean;
}

interface RemoteLoads {
  readonly loads: ReadonlyMap<string, InFlightLoad>;
  readonly expiresAtMs: number;
}

export class InFlightLoadProducer implements DataProducer, PreRequestHook, ResponseChunkHook, ResponseCompleteHook, NotificationExtractor<EndpointEvent>, ReplicatedGauges {
  readonly typedName: TypedName;
  readonly produces: readonly string[] = [InFlightLoadKey];
  readonly consumes: readonly string[] = [];
  /** Extractor of `endpoint-notification-source`: endpoint events. */
  readonly inputType = ENDPOINT_EVENTS;
  /** Bumped when an endpoint is deleted (only endpoints ever deleted have an entry). */
  readonly #generations = new Map<string, number>();
  /** Endpoint name → current load. Values are immutable and replaced on change, so readers share them. */
  readonly #loads = new Map<string, InFlightLoad>();
  readonly #charges = new WeakMap<InferenceRequest, Charge[]>();
  /** Peers' latest gauges (origin → per-endpoint load), counted until they expire. */
  readonly #remote = new Map<string, RemoteLoads>();
  readonly #clock: Clock;

  constructor(name: string = INFLIGHT_LOAD_PRODUCER_TYPE, clock: Clock = { now: () => Date.now() }) {
    this.typedName = { type: INFLIGHT_LOAD_PRODUCER_TYPE, name };
    this.#clock = clock;
  }

  /** This replica's own load of an endpoint (zero when none). */
  loadOf(endpointName: string): InFlightLoad {
    return this.#loads.get(endpointName) ?? NO_LOAD;
  }

  /** Own load plus every fresh peer's (what prepareData produces). */
  totalLoadOf(endpointName: string): InFlightLoad {
    const own = this.#loads.get(endpointName) ?? NO_LOAD;
    if (this.#remote.size === 0) return own;
    const now = this.#clock.now();
    let requests = own.requests;
    let tokens = own.tokens;
    for (const [origin, r] of this.#remote) {
      if (r.expiresAtMs <= now) {
        this.#remote.delete(origin);
        continue;
      }
      const l = r.loads.get(endpointName);
      if (l !== undefined) {
        requests += l.requests;
        tokens += l.tokens;
      }
    }
    return requests === own.requests && tokens === own.tokens ? own : Object.freeze({ requests, tokens });
  }

  // --- ReplicatedGauges

  localGauges(): EndpointGauge[] {
    const out: EndpointGauge[] = [];
    for (const [endpoint, l] of this.#loads) out.push({ endpoint, requests: l.requests, tokens: l.tokens });
    return out;
  }

  setRemoteGauges(origin: string, gauges: readonly EndpointGauge[], expiresAtMs: number): void {
    const loads = new Map<string, InFlightLoad>();
    for (const g of gauges) if (g.requests > 0 || g.tokens > 0) loads.set(g.endpoint, Object.freeze({ requests: g.requests, tokens: g.tokens }));
    this.#remote.set(origin, { loads, expiresAtMs });
  }

  dropRemoteGauges(origin: string): void {
    this.#remote.delete(origin);
  }

  /** Endpoints with a non-zero load (for tests and debugging). */
  trackedEndpoints(): string[] {
    return [...this.#loads.keys()];
  }

  prepareData(_request: InferenceRequest, candidates: readonly Candidate[], _signal: AbortSignal): void {
    if (this.#remote.size === 0) {
      for (const c of candidates) c.attributes.set(InFlightLoadKey, this.#loads.get(c.endpoint.metadata.name) ?? NO_LOAD);
      return;
    }
    for (const c of candidates) c.attributes.set(InFlightLoadKey, this.totalLoadOf(c.endpoint.metadata.name));
  }

  preRequest(request: InferenceRequest, result: SchedulingResult, signal: AbortSignal): void {
    // Charge once per request, and never after the request path gave up on this hook.
    if (signal.aborted || this.#charges.has(request)) return;
    const charges: Charge[] = [];
    let tokens = -1;
    for (const [profile, run] of result.profileResults) {
      const target = run?.targets[0];
      if (target === undefined) continue;
      if (tokens < 0) tokens = estimateTokens(request);
      const endpoint = target.endpoint.metadata.name;
      const charge: Charge = { endpoint, tokens, profile, generation: this.#generations.get(endpoint) ?? 0, released: false };
      this.#apply(charge.endpoint, +1, tokens);
      charges.push(charge);
    }
    this.#charges.set(request, charges);
  }

  onResponseChunk(response: ResponseInfo, chunk: ResponseChunk, _signal: AbortSignal): void {
    if (!chunk.startOfStream) return;
    const charges = this.#charges.get(response.request);
    if (charges === undefined) return;
    for (const c of charges) if (c.profile === PREFILL_PROFILE_NAME) this.#release(c);
  }

  onResponseComplete(response: ResponseInfo, _outcome: Outcome, _signal: AbortSignal): void {
    const charges = this.#charges.get(response.request);
    if (charges === undefined) return;
    this.#charges.delete(response.request);
    for (const c of charges) this.#release(c);
  }

  #release(charge: Charge): void {
    if (charge.released) return;
    charge.released = true;
    if ((this.#generations.get(charge.endpoint) ?? 0) !== charge.generation) return; // dropped with its endpoint
    this.#apply(charge.endpoint, -1, -charge.tokens);
  }

  /**
   * An endpoint left the pool (wired as an extractor of `endpoint-notification-source`): its counters go at once,
   * and the requests still charged to it release nothing when they end (as upstream drops the counters).
   */
  notify(event: EndpointEvent): void {
    if (event.type !== 'deleted') return;
    const name = event.endpoint.name;
    this.#loads.delete(name);
    this.#generations.set(name, (this.#generations.get(name) ?? 0) + 1);
  }

  #apply(endpoint: string, requestsDelta: number, tokensDelta: number): void {
    const current = this.#loads.get(endpoint) ?? NO_LOAD;
    const requests = current.requests + requestsDelta;
    const tokens = current.tokens + tokensDelta;
    if (requests <= 0) this.#loads.delete(endpoint);
    else this.#loads.set(endpoint, Object.freeze({ requests, tokens }));
  }
}

export const inFlightLoadProducerFactory: PluginFactory = (name, parameters, handle) => {
  const producer = new InFlightLoadProducer(name, handle.clock);
  parsePluginParameters(producer.typedName, parametersSchema, parameters);
  return producer;
};
