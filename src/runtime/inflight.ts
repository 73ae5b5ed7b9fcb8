/**
 * The one in-flight tracker of this replica (contract: src/framework/inflight.ts). The runtime creates it before
 * any plugin, offers it to plugins on `PluginHandle.inflight` (the routing view the `inflight-load-producer`
 * reads and charges through its hooks) and keeps the admission view (`PoolLoad`) itself: `Admission` calls
 * `admitted`, `scheduled` and `released`, and the `concurrency-detector` reads the counts.
 *
 * One lease per request (WeakMap keyed by the request object, so two requests with the same x-request-id stay
 * apart), created by whichever view sees the request first; its token estimate is computed once. Per-endpoint
 * values are immutable and replaced on change, so readers can share them; an endpoint's entry disappears when
 * its request count returns to zero, so endpoints that left the pool leave nothing behind.
 */
import type { InFlightLoad } from '../framework/attributes.ts';
import type { Endpoint } from '../framework/datalayer.ts';
import type { PoolLoad } from '../framework/flowcontrol.ts';
import type { InFlightRequests } from '../framework/inflight.ts';
import { promptText, type InferenceRequest } from '../framework/request.ts';
import type { SchedulingResult } from '../framework/scheduling.ts';

/** Average bytes (or characters) per token of the simple estimator. */
export const BYTES_PER_TOKEN = 4;
/** Expected output tokens per input token of the simple estimator. */
const OUTPUT_TOKENS_PER_INPUT_TOKEN = 1.5;

const ZERO: InFlightLoad = Object.freeze({ requests: 0, tokens: 0 });

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
  readonly profile: string;
  /** The endpoint's generation when charged: a charge from before the endpoint was deleted releases nothing. */
  readonly generation: number;
  released: boolean;
}

interface Lease {
  readonly tokens: number;
  /** Admission view: admitted and not yet released. */
  admitted: boolean;
  /** Admission view: the primary endpoint once scheduled. */
  endpoint: string | undefined;
  /** Routing view: the charges `route` made (undefined until routed; emptied by `complete`). */
  charges: Charge[] | undefined;
}

/** Per-endpoint counts; an endpoint's entry disappears when its request count returns to zero. */
class Ledger {
  readonly loads = new Map<string, InFlightLoad>();

  loadOf(name: string): InFlightLoad {
    return this.loads.get(name) ?? ZERO;
  }

  apply(name: string, requests: number, tokens: number): void {
    const next = add(this.loads.get(name) ?? ZERO, requests, tokens);
    if (next.requests <= 0) this.loads.delete(name);
    else this.loads.set(name, next);
  }
}

export class InFlightTracker implements PoolLoad, InFlightRequests {
  readonly #leases = new WeakMap<InferenceRequest, Lease>();
  // --- admission view
  readonly #bound = new Ledger();
  #unbound: InFlightLoad = ZERO;
  #total = 0;
  // --- routing view
  readonly #routed = new Ledger();
  /** Bumped when an endpoint is deleted (only endpoints ever deleted have an entry). */
  readonly #generations = new Map<string, number>();

  estimateTokens(request: InferenceRequest): number {
    return this.#lease(request).tokens;
  }

  #lease(request: InferenceRequest): Lease {
    let lease = this.#leases.get(request);
    if (lease === undefined) {
      lease = { tokens: estimateTokens(request), admitted: false, endpoint: undefined, charges: undefined };
      this.#leases.set(request, lease);
    }
    return lease;
  }

  // --- admission view (PoolLoad), kept by the runtime

  loadOf(endpointName: string): InFlightLoad {
    return this.#bound.loadOf(endpointName);
  }

  unbound(): InFlightLoad {
    return this.#unbound;
  }

  /** Requests admitted and not yet released (bound or not). */
  get total(): number {
    return this.#total;
  }

  admitted(request: InferenceRequest): void {
    const lease = this.#lease(request);
    if (lease.admitted) return;
    lease.admitted = true;
    lease.endpoint = undefined;
    this.#unbound = add(this.#unbound, 1, lease.tokens);
    this.#total++;
  }

  scheduled(request: InferenceRequest, endpoint: Endpoint): void {
    const lease = this.#leases.get(request);
    if (lease === undefined || !lease.admitted || lease.endpoint !== undefined) return;
    lease.endpoint = endpoint.metadata.name;
    this.#unbound = add(this.#unbound, -1, -lease.tokens);
    this.#bound.apply(lease.endpoint, 1, lease.tokens);
  }

  /** Returns true when the request held an admission lease (released now), false when it had none or was released. */
  released(request: InferenceRequest): boolean {
    const lease = this.#leases.get(request);
    if (lease === undefined || !lease.admitted) return false;
    lease.admitted = false;
    this.#total--;
    if (lease.endpoint === undefined) this.#unbound = add(this.#unbound, -1, -lease.tokens);
    else this.#bound.apply(lease.endpoint, -1, -lease.tokens);
    lease.endpoint = undefined;
    if (lease.charges === undefined) this.#leases.delete(request);
    return true;
  }

  // --- routing view (InFlightRequests), offered to plugins

  routedLoadOf(endpointName: string): InFlightLoad {
    return this.#routed.loadOf(endpointName);
  }

  routedLoads(): IterableIterator<[string, InFlightLoad]> {
    return this.#routed.loads.entries();
  }

  route(request: InferenceRequest, result: SchedulingResult): void {
    const existing = this.#leases.get(request);
    if (existing?.charges !== undefined) return;
    const charges: Charge[] = [];
    let lease = existing;
    for (const [profile, run] of result.profileResults) {
      const target = run?.targets[0];
      if (target === undefined) continue;
      lease ??= this.#lease(request);
      const endpoint = target.endpoint.metadata.name;
      charges.push({ endpoint, profile, generation: this.#generations.get(endpoint) ?? 0, released: false });
      this.#routed.apply(endpoint, 1, lease.tokens);
    }
    (lease ?? this.#lease(request)).charges = charges;
  }

  releaseProfile(request: InferenceRequest, profile: string): void {
    const lease = this.#leases.get(request);
    if (lease?.charges === undefined) return;
    for (const c of lease.charges) if (c.profile === profile) this.#release(c, lease.tokens);
  }

  complete(request: InferenceRequest): void {
    const lease = this.#leases.get(request);
    if (lease?.charges === undefined) return;
    for (const c of lease.charges) this.#release(c, lease.tokens);
    lease.charges = undefined;
    if (!lease.admitted) this.#leases.delete(request);
  }

  endpointDeleted(endpointName: string): void {
    this.#routed.loads.delete(endpointName);
    this.#generations.set(endpointName, (this.#generations.get(endpointName) ?? 0) + 1);
  }

  #release(charge: Charge, tokens: number): void {
    if (charge.released) return;
    charge.released = true;
    if ((this.#generations.get(charge.endpoint) ?? 0) !== charge.generation) return; // dropped with its endpoint
    this.#routed.apply(charge.endpoint, -1, -tokens);
  }
}

function add(l: InFlightLoad, requests: number, tokens: number): InFlightLoad {
  return Object.freeze({ requests: l.requests + requests, tokens: l.tokens + tokens });
}
