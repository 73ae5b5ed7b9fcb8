/**
 * Admission (epp-spec §6.2): the director's `AdmissionController`, in one of two modes.
 *
 * - Default (legacy): a sheddable request (priority < 0) is refused with 429 when the saturation of its
 *   candidate endpoints (subset-aware) is ≥ 1.0; everything else passes at once. No queueing.
 * - Flow control (feature gate `flowControl`): every request waits in the flow controller until it is
 *   dispatched, rejected (429, 500) or evicted (503).
 *
 * Both modes keep the in-flight accounting the `concurrency-detector` reads (`PoolLoad`, the admission view of
 * the one tracker in ./inflight.ts): a request counts
 * from admission until the director releases it (exactly once: after its completion hooks ran, or when the
 * request path failed after admission), attributed to its primary endpoint once scheduled. In flow-control
 * mode every release also wakes the dispatcher.
 */
import type { Endpoint, EndpointStore } from '../framework/datalayer.ts';
import { EppError } from '../framework/errors.ts';
import { isPoolLoadConsumer, type SaturationDetector } from '../framework/flowcontrol.ts';
import type { Clock, Logger, Plugin } from '../framework/plugin.ts';
import type { InferenceRequest } from '../framework/request.ts';
import type { EppMetrics } from '../observability/metrics.ts';
import { flowControlMetricsOf, type FlowControlMetrics } from '../observability/flow-control-metrics.ts';
import { SUBSET_CACHE_TTL_MS, SubsetLocator } from './candidates.ts';
import type { AdmissionController, CandidateLocator, RequestInput } from './request-path.ts';
import { FlowController, type FlowControlConfig } from './flowcontrol/controller.ts';
import type { InFlightTracker } from './inflight.ts';
import type { Timers } from '../util/timers.ts';

export interface AdmissionOptions {
  readonly detector: SaturationDetector;
  readonly locator: CandidateLocator;
  readonly tracker: InFlightTracker;
  /** Present when the `flowControl` gate is on. */
  readonly flowController?: FlowController;
  readonly metrics?: FlowControlMetrics;
}

export class Admission implements AdmissionController {
  readonly #o: AdmissionOptions;
  constructor(options: AdmissionOptions) {
    this.#o = options;
  }

  get flowController(): FlowController | undefined {
    return this.#o.flowController;
  }

  admit(request: InferenceRequest, proxyMetadata: RequestInput['proxyMetadata'] = {}): void | Promise<void> {
    const fc = this.#o.flowController;
    // In-flight accounting for dispatched requests happens in the controller's onDispatch, synchronously.
    if (fc !== undefined) return fc.enqueueAndWait(request, request.signal);
    if (request.priority < 0) {
      const saturation = this.#o.detector.saturation(this.#o.locator.locate(proxyMetadata));
      if (saturation >= 1) {
        this.#o.metrics?.shed.inc({ priority: String(request.priority) });
        throw new EppError('ResourceExhausted', 'system saturated, sheddable request dropped');
      }
    }
    this.#o.tracker.admitted(request);
  }

  scheduled(request: InferenceRequest, targets: readonly Endpoint[]): void {
    const primary = targets[0];
    if (primary !== undefined) this.#o.tracker.scheduled(request, primary);
  }

  released(request: InferenceRequest): void {
    if (this.#o.tracker.released(request)) this.#o.flowController?.notify();
  }
}

export interface AdmissionSetupOptions {
  readonly store: EndpointStore;
  readonly plugins: readonly Plugin[];
  /** The replica's one in-flight tracker (created before the plugins, which see it on their handle). */
  readonly tracker: InFlightTracker;
  readonly detector: SaturationDetector;
  /** Flow-control settings (gate `flowControl` on), else default admission. */
  readonly flowControl: FlowControlConfig | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: EppMetrics;
  /** `--disable-endpoint-subset-filter`. */
  readonly disableEndpointSubsetFilter?: boolean;
  /** `inference_pool` metric label (`--pool-name`). */
  readonly poolName?: string;
  readonly timers?: Timers;
  readonly dispatchIntervalMs?: number;
}

export interface AdmissionSetup {
  readonly admission: Admission;
  readonly locator: SubsetLocator;
  readonly tracker: InFlightTracker;
  readonly flowController: FlowController | undefined;
  /** Wake the dispatcher: fresh metrics arrived (wire to the data layer's metrics-commit event). */
  metricsRefreshed(): void;
  close(): void;
}

/** Builds admission and the candidate locator over the runtime's in-flight tracker, and binds its counts into the plugins that read them. */
export function setupAdmission(o: AdmissionSetupOptions): AdmissionSetup {
  const tracker = o.tracker;
  for (const p of o.plugins) if (isPoolLoadConsumer(p)) p.bindPoolLoad(tracker);
  const fcMetrics = o.metrics ? flowControlMetricsOf(o.metrics) : undefined;
  const locator = new SubsetLocator(o.store, {
    disabled: o.disableEndpointSubsetFilter ?? false,
    cacheTtlMs: o.flowControl ? SUBSET_CACHE_TTL_MS : 0,
    clock: o.clock,
  });
  const flowController = o.flowControl
    ? new FlowController({
        config: o.flowControl,
        detector: o.detector,
        endpoints: () => o.store.endpoints(),
        clock: o.clock,
        logger: o.logger.child({ component: 'flow-control' }),
        ...(o.timers ? { timers: o.timers } : {}),
        ...(fcMetrics ? { metrics: fcMetrics } : {}),
        ...(o.poolName !== undefined ? { poolName: o.poolName } : {}),
        ...(o.dispatchIntervalMs !== undefined ? { dispatchIntervalMs: o.dispatchIntervalMs } : {}),
        onDispatch: (r) => tracker.admitted(r),
      })
    : undefined;
  const admission = new Admission({
    detector: o.detector,
    locator,
    tracker,
    ...(flowController ? { flowController } : {}),
    ...(fcMetrics ? { metrics: fcMetrics } : {}),
  });
  return {
    admission,
    locator,
    tracker,
    flowController,
    metricsRefreshed: () => flowController?.notify(),
    close: () => flowController?.close(),
  };
}
