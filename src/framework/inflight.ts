/**
 * In-flight requests of this replica, counted once by the runtime and offered to plugins on
 * `PluginHandle.inflight` (the runtime owns the one tracker: src/runtime/inflight.ts).
 *
 * The tracker keeps one lease per request (its token estimate is computed once) and serves two views:
 *  - the admission view (`PoolLoad`, src/framework/flowcontrol.ts), kept by the runtime itself: a request counts
 *    from admission until the director releases it, attributed to its primary endpoint once scheduled;
 *  - the routing view below, kept through the hooks of the plugin that produces `InFlightLoad` for scoring: a
 *    request is charged to the first target of every profile that produced one (`route`), a profile's charge can
 *    be released early (`releaseProfile`, e.g. prefill done at the first chunk), and `complete` releases the rest.
 * Every release is exactly-once: releasing twice, or releasing what was never charged, changes nothing.
 * All methods are synchronous and O(profiles) per call; keyed by the request object, never by its id.
 */
import type { InFlightLoad } from './attributes.ts';
import type { InferenceRequest } from './request.ts';
import type { SchedulingResult } from './scheduling.ts';

export interface InFlightRequests {
  /** Estimated total tokens (input + output) of a request: the figure every charge of it carries. */
  estimateTokens(request: InferenceRequest): number;
  /** The routing view's load of an endpoint (zero when none). The value is immutable; it is replaced on change. */
  routedLoadOf(endpointName: string): InFlightLoad;
  /** Every endpoint with a non-zero routed load. */
  routedLoads(): IterableIterator<[string, InFlightLoad]>;
  /** Charges `request` to the first target of each profile of `result`. A request is charged at most once. */
  route(request: InferenceRequest, result: SchedulingResult): void;
  /** Releases the request's charge for `profile` now (exactly once). */
  releaseProfile(request: InferenceRequest, profile: string): void;
  /** Releases every routed charge of the request still held (exactly once). */
  complete(request: InferenceRequest): void;
  /**
   * An endpoint left the pool: its routed counters go at once, and the requests still charged to it release
   * nothing when they end.
   */
  endpointDeleted(endpointName: string): void;
}
