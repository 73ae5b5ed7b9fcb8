/**
 * Admission and flow-control contracts (epp-spec §6): saturation detectors, and the fairness, ordering and
 * usage-limit policies the flow controller is assembled from.
 *
 * Everything here is synchronous and must not do I/O: the flow controller calls these on every dispatch
 * cycle (after each enqueue, completion and metrics refresh), so a slow policy delays every queued request.
 */
import type { InFlightLoad } from './attributes.ts';
import type { Endpoint } from './datalayer.ts';
import type { Plugin } from './plugin.ts';
import type { InferenceRequest } from './request.ts';

/**
 * What this EPP has in flight, maintained by the runtime from the request lifecycle: a request counts from the
 * moment admission lets it through until its completion hooks ran (success, error or abort), exactly once.
 */
export interface PoolLoad {
  /** Requests (and their estimated tokens) scheduled on the endpoint and not yet completed. */
  loadOf(endpointName: string): InFlightLoad;
  /**
   * Requests admitted (dispatched from the queue) but not yet scheduled on an endpoint. They count against
   * pool capacity at once, so a dispatch cycle sees the request it just released.
   */
  unbound(): InFlightLoad;
}

/**
 * Reports how close the pool (or a subset of it) is to saturation. Called by admission for every sheddable
 * request (legacy mode) and once per dispatch cycle (flow control). Synchronous, O(endpoints).
 */
export interface SaturationDetector extends Plugin {
  /** 0 = idle, ≥ 1.0 = saturated. An empty list is saturated (1.0). */
  saturation(endpoints: readonly Endpoint[]): number;
}

/** A detector that needs the EPP's in-flight counts. The runtime calls `bindPoolLoad` once, at startup. */
export interface PoolLoadConsumer extends Plugin {
  bindPoolLoad(load: PoolLoad): void;
}

/** A queued request as policies see it. Immutable. */
export interface QueueItem {
  readonly request: InferenceRequest;
  /** When the item entered the queue (ms, injected clock). */
  readonly enqueuedAt: number;
  /** Effective TTL in ms (0 = none). */
  readonly ttlMs: number;
  /** Bytes counted against capacity (the original request body length). */
  readonly byteSize: number;
  /** Enqueue sequence number: a total order among items enqueued at the same millisecond. */
  readonly seq: number;
}

/**
 * Orders the items of one flow queue: `compare(a, b) < 0` means `a` is dispatched first. Must be a strict
 * weak order that never changes for a given pair (the queue is a heap built on it).
 */
export interface OrderingPolicy extends Plugin {
  compare(a: QueueItem, b: QueueItem): number;
}

/** One flow (fairness id × priority) with queued work, as a fairness policy sees it. */
export interface FlowQueueView {
  readonly fairnessId: string;
  readonly priority: number;
  /** Queued items (> 0 for every flow handed to a fairness policy). */
  readonly length: number;
  readonly bytes: number;
  /** The item this flow would dispatch next. */
  peek(): QueueItem | undefined;
}

/** One priority band with queued work. */
export interface BandView {
  readonly priority: number;
  /** Non-empty flows, sorted by fairness id. */
  readonly flows: readonly FlowQueueView[];
  /** The band's ordering policy (to compare heads across flows). */
  readonly ordering: OrderingPolicy;
  /** Scratch state the band's fairness policy keeps between cycles (e.g. the last flow served). */
  readonly state: Map<string, unknown>;
}

/** Chooses which flow of a band dispatches next. Called with at least one non-empty flow. */
export interface FairnessPolicy extends Plugin {
  selectFlow(band: BandView): FlowQueueView | undefined;
}

/**
 * Per-band saturation ceiling: a band dispatches only while the pool's saturation is below its ceiling
 * (strict head-of-line blocking: a blocked band blocks every lower band in that cycle).
 */
export interface UsageLimitPolicy extends Plugin {
  ceiling(priority: number): number;
}

export function isSaturationDetector(p: Plugin): p is SaturationDetector {
  return typeof (p as Partial<SaturationDetector>).saturation === 'function';
}
export function isPoolLoadConsumer(p: Plugin): p is PoolLoadConsumer {
  return typeof (p as Partial<PoolLoadConsumer>).bindPoolLoad === 'function';
}
export function isOrderingPolicy(p: Plugin): p is OrderingPolicy {
  return typeof (p as Partial<OrderingPolicy>).compare === 'function';
}
export function isFairnessPolicy(p: Plugin): p is FairnessPolicy {
  return typeof (p as Partial<FairnessPolicy>).selectFlow === 'function';
}
export function isUsageLimitPolicy(p: Plugin): p is UsageLimitPolicy {
  return typeof (p as Partial<UsageLimitPolicy>).ceiling === 'function';
}
