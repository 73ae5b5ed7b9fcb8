/**
 * The flow controller (epp-spec §6.4): holds requests in priority bands of per-tenant (fairness id) queues
 * and releases them to scheduling while the pool is below the band's saturation ceiling.
 *
 * Every request that enters ends exactly once, counted by outcome:
 *   Dispatched               released to scheduling
 *   RejectedCapacity         a global or band request/byte cap was full at enqueue        → 429
 *   EvictedTTL               waited longer than its TTL                                   → 503
 *   EvictedContextCancelled  the client went away while queued (its AbortSignal fired)    → 503
 *   RejectedOther/EvictedOther  the controller was closed                                 → 500
 *
 * Dispatch cycle: evaluate the saturation of the whole pool (subset hints are ignored, as upstream), then
 * walk the bands from the highest priority down; the first band with work either dispatches one item (its
 * fairness policy picks the flow, the flow's ordering policy the item) or, when saturation ≥ its ceiling,
 * stops the cycle (strict head-of-line blocking: lower bands wait too).
 *
 * When cycles run — no polling while blocked:
 *   - synchronously on every enqueue;
 *   - on a wake-up (`notify()`): a request completed, or fresh metrics arrived — coalesced into one cycle
 *     after at most `dispatchIntervalMs`;
 *   - after a cycle that dispatched while work remains, again after `dispatchIntervalMs` (upstream's 1 ms
 *     cadence), so a backlog drains at that pace even when nothing else happens.
 * A cycle that finds the pool saturated arms nothing: the controller sleeps until the next event. With 1,000
 * requests queued behind a saturated pool it costs nothing but the wake-ups themselves.
 *
 * TTL: one timer for the earliest deadline over all queued items (a deadline heap), not one timer per request.
 */
import type { Endpoint } from '../../framework/datalayer.ts';
import { EppError } from '../../framework/errors.ts';
import type {
  BandView,
  FairnessPolicy,
  FlowQueueView,
  OrderingPolicy,
  QueueItem,
  SaturationDetector,
  UsageLimitPolicy,
} from '../../framework/flowcontrol.ts';
import type { Clock, Logger } from '../../framework/plugin.ts';
import type { InferenceRequest } from '../../framework/request.ts';
import type { FlowControlMetrics, FlowControlOutcomeLabel } from '../../observability/flow-control-metrics.ts';
import { IndexedHeap } from './heap.ts';
import { realTimers, type Timers } from '../../util/timers.ts';

export type FlowOutcome = FlowControlOutcomeLabel;

/** Upstream's per-band byte cap when none is configured. */
export const DEFAULT_BAND_MAX_BYTES = 1_000_000_000;
/** Upstream's dispatch cadence while a backlog drains. */
const DEFAULT_DISPATCH_INTERVAL_MS = 1;

export interface BandConfig {
  readonly priority: number;
  /** 0 = unlimited. */
  readonly maxBytes: number;
  /** 0 = unlimited. */
  readonly maxRequests: number;
  readonly fairness: FairnessPolicy;
  readonly ordering: OrderingPolicy;
}

export interface FlowControlConfig {
  /** Global caps, 0 = unlimited. */
  readonly maxBytes: number;
  readonly maxRequests: number;
  /** 0 = no TTL (wait until dispatched or the client leaves). */
  readonly defaultRequestTtlMs: number;
  /** Template for bands of priorities not declared in `bands`. */
  readonly defaultBand: Omit<BandConfig, 'priority'>;
  readonly bands: readonly BandConfig[];
  readonly usageLimit: UsageLimitPolicy;
}

export interface FlowControllerOptions {
  readonly config: FlowControlConfig;
  readonly detector: SaturationDetector;
  /** The whole pool (dispatch ignores subset hints). */
  readonly endpoints: () => readonly Endpoint[];
  readonly clock: Clock;
  readonly timers?: Timers;
  readonly logger: Logger;
  readonly metrics?: FlowControlMetrics;
  /** `inference_pool` metric label. */
  readonly poolName?: string;
  readonly dispatchIntervalMs?: number;
  /** Called synchronously when a request is dispatched, before the next cycle can run (in-flight accounting). */
  readonly onDispatch?: (request: InferenceRequest) => void;
}

export interface FlowControlStats {
  readonly queued: number;
  readonly queuedBytes: number;
  readonly outcomes: Readonly<Record<FlowOutcome, number>>;
  readonly cycles: number;
}

class Item implements QueueItem {
  readonly request: InferenceRequest;
  readonly enqueuedAt: number;
  readonly ttlMs: number;
  readonly byteSize: number;
  readonly seq: number;
  readonly deadline: number;
  queueIndex = -1;
  ttlIndex = -1;
  flow: Flow | undefined;
  done = false;
  readonly resolve: () => void;
  readonly reject: (e: EppError) => void;
  readonly signal: AbortSignal;
  onAbort: (() => void) | undefined;
  labels: Record<string, string> | undefined;

  constructor(request: InferenceRequest, now: number, ttlMs: number, seq: number, signal: AbortSignal, resolve: () => void, reject: (e: EppError) => void) {
    this.request = request;
    this.enqueuedAt = now;
    this.ttlMs = ttlMs;
    this.byteSize = request.requestSizeBytes;
    this.seq = seq;
    this.deadline = ttlMs > 0 ? now + ttlMs : Number.POSITIVE_INFINITY;
    this.signal = signal;
    this.resolve = resolve;
    this.reject = reject;
  }
}

class Flow implements FlowQueueView {
  readonly fairnessId: string;
  readonly priority: number;
  readonly heap: IndexedHeap<Item>;
  bytes = 0;
  constructor(fairnessId: string, priority: number, ordering: OrderingPolicy) {
    this.fairnessId = fairnessId;
    this.priority = priority;
    this.heap = new IndexedHeap<Item>((a, b) => ordering.compare(a, b), 'queueIndex');
  }
  get length(): number {
    return this.heap.size;
  }
  peek(): QueueItem | undefined {
    return this.heap.peek();
  }
}

class Band implements BandView {
  readonly priority: number;
  readonly config: BandConfig;
  readonly ordering: OrderingPolicy;
  readonly state = new Map<string, unknown>();
  /** Non-empty flows by fairness id. A flow exists only while it has queued items (provisioned just in time). */
  readonly byId = new Map<string, Flow>();
  #sorted: Flow[] | undefined = [];
  count = 0;
  bytes = 0;
  constructor(config: BandConfig) {
    this.priority = config.priority;
    this.config = config;
    this.ordering = config.ordering;
  }
  get flows(): readonly Flow[] {
    this.#sorted ??= [...this.byId.values()].sort((a, b) => (a.fairnessId < b.fairnessId ? -1 : a.fairnessId > b.fairnessId ? 1 : 0));
    return this.#sorted;
  }
  flowFor(id: string): Flow {
    let f = this.byId.get(id);
    if (f === undefined) {
      f = new Flow(id, this.priority, this.ordering);
      this.byId.set(id, f);
      this.#sorted = undefined;
    }
    return f;
  }
  dropIfEmpty(f: Flow): void {
    if (f.length === 0 && this.byId.get(f.fairnessId) === f) {
      this.byId.delete(f.fairnessId);
      this.#sorted = undefined;
    }
  }
}

export class FlowController {
  readonly #o: FlowControllerOptions;
  readonly #timers: Timers;
  readonly #interval: number;
  readonly #bands = new Map<number, Band>();
  /** Bands by descending priority. */
  #order: Band[] = [];
  readonly #ttl = new IndexedHeap<Item>((a, b) => a.deadline - b.deadline || a.seq - b.seq, 'ttlIndex');
  #ttlTimer: unknown;
  #ttlTimerAt = Number.POSITIVE_INFINITY;
  #wakeTimer: unknown;
  #queued = 0;
  #bytes = 0;
  #seq = 0;
  #cycles = 0;
  #closed = false;
  readonly #outcomes: Record<FlowOutcome, number> = {
    Dispatched: 0,
    RejectedCapacity: 0,
    RejectedOther: 0,
    EvictedTTL: 0,
    EvictedContextCancelled: 0,
    EvictedOther: 0,
  };

  constructor(options: FlowControllerOptions) {
    this.#o = options;
    this.#timers = options.timers ?? realTimers;
    this.#interval = Math.max(0, options.dispatchIntervalMs ?? DEFAULT_DISPATCH_INTERVAL_MS);
    for (const b of options.config.bands) this.#band(b.priority, b);
  }

  stats(): FlowControlStats {
    return { queued: this.#queued, queuedBytes: this.#bytes, outcomes: { ...this.#outcomes }, cycles: this.#cycles };
  }

  /**
   * Queues the request until it is dispatched (resolves) or ends otherwise (rejects with the EppError the
   * client sees). `signal` aborting while queued evicts the request at once.
   */
  enqueueAndWait(request: InferenceRequest, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const started = this.#o.clock.now();
      const ttl = this.#o.config.defaultRequestTtlMs;
      const item = new Item(request, started, ttl, this.#seq++, signal, resolve, reject);
      const outcome = this.#enqueue(item);
      this.#o.metrics?.enqueueDuration.observe(
        { fairness_id: this.#o.metrics.fairnessLabel(request.fairnessId), priority: String(request.priority), outcome: outcome ?? 'NotYetFinalized' },
        (this.#o.clock.now() - started) / 1000,
      );
      if (outcome === undefined) this.#runCycle();
    });
  }

  /** Something changed that may lower saturation (a completion, fresh metrics): run a cycle soon. */
  notify(): void {
    if (this.#queued === 0 || this.#closed) return;
    this.#armWake();
  }

  /** Stops the controller: queued requests are evicted (500), later enqueues rejected. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#wakeTimer !== undefined) this.#timers.clearTimeout(this.#wakeTimer);
    if (this.#ttlTimer !== undefined) this.#timers.clearTimeout(this.#ttlTimer);
    this.#wakeTimer = this.#ttlTimer = undefined;
    for (const band of this.#order) {
      for (const flow of [...band.byId.values()]) {
        for (let item = flow.heap.peek(); item !== undefined; item = flow.heap.peek()) {
          this.#finish(item, 'EvictedOther', new EppError('Internal', 'internal flow control error: flow controller is not running'));
        }
      }
    }
  }

  // ------------------------------------------------------------------ enqueue

  /** Returns the outcome when the item was finalized at once, undefined when it is queued. */
  #enqueue(item: Item): FlowOutcome | undefined {
    const r = item.request;
    if (this.#closed) {
      this.#finish(item, 'RejectedOther', new EppError('Internal', 'internal flow control error: flow controller is not running'));
      return 'RejectedOther';
    }
    if (item.signal.aborted) {
      this.#finish(item, 'RejectedOther', new EppError('Internal', `internal flow control error: request cancelled before it was queued: ${reasonText(item.signal)}`));
      return 'RejectedOther';
    }
    const band = this.#band(r.priority);
    const cfg = this.#o.config;
    const size = item.byteSize;
    let full: string | undefined;
    if (cfg.maxRequests > 0 && this.#queued + 1 > cfg.maxRequests) full = `global request limit ${cfg.maxRequests} reached`;
    else if (cfg.maxBytes > 0 && this.#bytes + size > cfg.maxBytes) full = `global byte limit ${cfg.maxBytes} reached`;
    else if (band.config.maxRequests > 0 && band.count + 1 > band.config.maxRequests) full = `priority band ${band.priority} request limit ${band.config.maxRequests} reached`;
    else if (band.config.maxBytes > 0 && band.bytes + size > band.config.maxBytes) full = `priority band ${band.priority} byte limit ${band.config.maxBytes} reached`;
    if (full !== undefined) {
      this.#finish(item, 'RejectedCapacity', new EppError('ResourceExhausted', `flow control: queue at capacity: ${full}`));
      return 'RejectedCapacity';
    }
    const flow = band.flowFor(r.fairnessId);
    item.flow = flow;
    flow.heap.push(item);
    flow.bytes += size;
    band.count++;
    band.bytes += size;
    this.#queued++;
    this.#bytes += size;
    if (this.#o.metrics) {
      const m = this.#o.metrics;
      item.labels = {
        fairness_id: m.fairnessLabel(r.fairnessId),
        priority: String(r.priority),
        inference_pool: this.#o.poolName ?? '',
        model_name: m.modelLabel(r.incomingModel),
        target_model_name: m.modelLabel(r.targetModel),
      };
      this.#o.metrics.queueSize.inc(item.labels);
      this.#o.metrics.queueBytes.inc(item.labels, size);
    }
    if (item.deadline !== Number.POSITIVE_INFINITY) {
      this.#ttl.push(item);
      if (item.deadline < this.#ttlTimerAt) this.#armTtl();
    }
    const onAbort = (): void => this.#finish(item, 'EvictedContextCancelled', new EppError('ServiceUnavailable', `client disconnected: ${reasonText(item.signal)}`));
    item.onAbort = onAbort;
    item.signal.addEventListener('abort', onAbort, { once: true });
    return undefined;
  }

  #band(priority: number, declared?: BandConfig): Band {
    let band = this.#bands.get(priority);
    if (band === undefined) {
      band = new Band(declared ?? { ...this.#o.config.defaultBand, priority });
      this.#bands.set(priority, band);
      this.#order = [...this.#bands.values()].sort((a, b) => b.priority - a.priority);
    }
    return band;
  }

  // ------------------------------------------------------------------ dispatch

  /** One cycle now, then (if it dispatched and work remains) another after the dispatch interval. */
  #runCycle(): void {
    if (this.#cycle() && this.#queued > 0) this.#armWake();
  }

  #armWake(): void {
    if (this.#wakeTimer !== undefined || this.#closed) return;
    this.#wakeTimer = this.#timers.setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#runCycle();
    }, this.#interval);
  }

  /** Dispatches at most one item. Returns true when it did. */
  #cycle(): boolean {
    if (this.#queued === 0 || this.#closed) return false;
    this.#cycles++;
    const t0 = this.#o.clock.now();
    const saturation = this.#o.detector.saturation(this.#o.endpoints());
    const m = this.#o.metrics;
    m?.poolSaturation.set({ inference_pool: this.#o.poolName ?? '' }, saturation);
    let dispatched = false;
    for (const band of this.#order) {
      if (band.count === 0) continue;
      if (saturation >= this.#o.config.usageLimit.ceiling(band.priority)) break;
      const flow = band.config.fairness.selectFlow(band) as Flow | undefined;
      const item = flow?.heap.peek();
      if (item === undefined) break; // a policy that declines to pick holds the band (and those below) this cycle
      this.#finish(item, 'Dispatched', undefined);
      dispatched = true;
      break;
    }
    m?.dispatchCycleDuration.observe((this.#o.clock.now() - t0) / 1000);
    return dispatched;
  }

  // ------------------------------------------------------------------ TTL

  #armTtl(): void {
    const head = this.#ttl.peek();
    if (this.#ttlTimer !== undefined) this.#timers.clearTimeout(this.#ttlTimer);
    this.#ttlTimer = undefined;
    this.#ttlTimerAt = Number.POSITIVE_INFINITY;
    if (head === undefined || this.#closed) return;
    this.#ttlTimerAt = head.deadline;
    this.#ttlTimer = this.#timers.setTimeout(() => {
      this.#ttlTimer = undefined;
      this.#ttlTimerAt = Number.POSITIVE_INFINITY;
      this.#expire();
    }, Math.max(0, head.deadline - this.#o.clock.now()));
  }

  #expire(): void {
    const now = this.#o.clock.now();
    for (let item = this.#ttl.peek(); item !== undefined && item.deadline <= now; item = this.#ttl.peek()) {
      this.#finish(item, 'EvictedTTL', new EppError('ServiceUnavailable', `request timed out in queue: waited longer than its TTL of ${item.ttlMs}ms`));
    }
    this.#armTtl();
  }

  // ------------------------------------------------------------------ finalization (exactly once)

  #finish(item: Item, outcome: FlowOutcome, error: EppError | undefined): void {
    if (item.done) return;
    item.done = true;
    const flow = item.flow;
    if (flow !== undefined) {
      const band = this.#bands.get(flow.priority) as Band;
      flow.heap.remove(item);
      flow.bytes -= item.byteSize;
      band.count--;
      band.bytes -= item.byteSize;
      band.dropIfEmpty(flow);
      this.#queued--;
      this.#bytes -= item.byteSize;
      const wasTtlHead = this.#ttl.peek() === item;
      this.#ttl.remove(item);
      if (wasTtlHead && !this.#closed) this.#armTtl();
      if (item.onAbort !== undefined) item.signal.removeEventListener('abort', item.onAbort);
      if (item.labels !== undefined && this.#o.metrics) {
        this.#o.metrics.queueSize.dec(item.labels);
        this.#o.metrics.queueBytes.dec(item.labels, item.byteSize);
      }
    }
    this.#outcomes[outcome]++;
    const r = item.request;
    const m = this.#o.metrics;
    if (m) {
      m.outcomes.inc({ outcome, priority: String(r.priority) });
      m.queueDuration.observe(
        {
          fairness_id: m.fairnessLabel(r.fairnessId),
          priority: String(r.priority),
          outcome,
          inference_pool: this.#o.poolName ?? '',
          model_name: m.modelLabel(r.incomingModel),
          target_model_name: m.modelLabel(r.targetModel),
        },
        (this.#o.clock.now() - item.enqueuedAt) / 1000,
      );
    }
    if (outcome === 'Dispatched') {
      this.#o.onDispatch?.(r);
      item.resolve();
    } else {
      if (outcome !== 'RejectedCapacity') this.#o.logger.debug({ requestId: r.requestId, outcome }, 'request left flow control without dispatch');
      item.reject(error as EppError);
    }
  }
}

function reasonText(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r ?? 'aborted');
}
