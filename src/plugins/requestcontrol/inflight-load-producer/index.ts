/**
 * `inflight-load-producer`: counts, per endpoint, the requests this EPP has routed there that have not
 * completed yet, and their estimated tokens (epp-spec §3.6). Produces `InFlightLoad` for `token-load-scorer`.
 *
 * The counts live in the runtime's one in-flight tracker (`handle.inflight`, src/framework/inflight.ts); this
 * plugin decides when to charge and release through it. preRequest charges the first target of every profile
 * that produced one; each charge is released once, either early (the `prefill` profile's endpoint, on the first
 * response chunk, when the prefill work is done) or in onResponseComplete, which the runtime calls exactly once
 * per scheduled request whatever the outcome: success, upstream error, abort or internal error. (Upstream
 * released only on a normal end of stream, so aborted requests leaked their counts.) An endpoint's counters
 * disappear when they return to zero, so endpoints that left the pool leave nothing behind once their requests end.
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
import type { InFlightRequests } from '../../../framework/inflight.ts';
import type { Clock, PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { EndpointGauge, ReplicatedGauges } from '../../../framework/replication.ts';
import type { InferenceRequest } from '../../../framework/request.ts';
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

const parametersSchema = z.strictObject({});

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
  /** The runtime's tracker: this replica's own counts (its routing view). */
  readonly #inflight: InFlightRequests;
  /** Peers' latest gauges (origin → per-endpoint load), counted until they expire. */
  readonly #remote = new Map<string, RemoteLoads>();
  readonly #clock: Clock;

  constructor(name: string, inflight: InFlightRequests, clock: Clock) {
    this.typedName = { type: INFLIGHT_LOAD_PRODUCER_TYPE, name };
    this.#inflight = inflight;
    this.#clock = clock;
  }

  /** This replica's own load of an endpoint (zero when none). */
  loadOf(endpointName: string): InFlightLoad {
    return this.#inflight.routedLoadOf(endpointName);
  }

  /** Own load plus every fresh peer's (what prepareData produces). */
  totalLoadOf(endpointName: string): InFlightLoad {
    const own = this.#inflight.routedLoadOf(endpointName);
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
    for (const [endpoint, l] of this.#inflight.routedLoads()) out.push({ endpoint, requests: l.requests, tokens: l.tokens });
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
    return [...this.#inflight.routedLoads()].map(([endpoint]) => endpoint);
  }

  prepareData(_request: InferenceRequest, candidates: readonly Candidate[]): void {
    if (this.#remote.size === 0) {
      for (const c of candidates) c.attributes.set(InFlightLoadKey, this.#inflight.routedLoadOf(c.endpoint.metadata.name));
      return;
    }
    for (const c of candidates) c.attributes.set(InFlightLoadKey, this.totalLoadOf(c.endpoint.metadata.name));
  }

  preRequest(request: InferenceRequest, result: SchedulingResult, signal: AbortSignal): void {
    // Charge once per request (the tracker ignores a second charge), never after the request path gave up on this hook.
    if (!signal.aborted) this.#inflight.route(request, result);
  }

  onResponseChunk(response: ResponseInfo, chunk: ResponseChunk): void {
    if (chunk.startOfStream) this.#inflight.releaseProfile(response.request, PREFILL_PROFILE_NAME);
  }

  onResponseComplete(response: ResponseInfo, _outcome: Outcome): void {
    this.#inflight.complete(response.request);
  }

  /**
   * An endpoint left the pool (wired as an extractor of `endpoint-notification-source`): its counters go at once,
   * and the requests still charged to it release nothing when they end (as upstream drops the counters).
   */
  notify(event: EndpointEvent): void {
    if (event.type === 'deleted') this.#inflight.endpointDeleted(event.endpoint.name);
  }
}

export const inFlightLoadProducerFactory: PluginFactory = (name, parameters, handle) => {
  const producer = new InFlightLoadProducer(name, handle.inflight, handle.clock);
  parsePluginParameters(producer.typedName, parametersSchema, parameters);
  return producer;
};
