/** Flow-control metrics (epp-spec §7.3), registered on an `EppMetrics` registry on first use. */
import type { Registry } from 'prom-client';
import type { EppMetrics } from './metrics.ts';
import { registerMetrics, type MetricTable, type RegisteredMetrics } from './metric-table.ts';

const FLOW_CONTROL_DURATION_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];
const QUEUE_LABELS = ['fairness_id', 'priority', 'inference_pool', 'model_name', 'target_model_name'] as const;

export type FlowControlOutcomeLabel =
  | 'Dispatched'
  | 'RejectedCapacity'
  | 'RejectedOther'
  | 'EvictedTTL'
  | 'EvictedContextCancelled'
  | 'EvictedOther';

/** Upstream's `inference_extension_flow_control_*` plus our outcome and shed counters. */
const FLOW_CONTROL_METRICS = {
  queueDuration: { kind: 'histogram', name: 'inference_extension_flow_control_request_queue_duration_seconds', help: 'Distribution of the total time requests spend in the flow control layer, by final outcome.', labels: ['fairness_id', 'priority', 'outcome', 'inference_pool', 'model_name', 'target_model_name'], buckets: FLOW_CONTROL_DURATION_BUCKETS },
  enqueueDuration: { kind: 'histogram', name: 'inference_extension_flow_control_request_enqueue_duration_seconds', help: 'Distribution of the time to enqueue a request in the flow control layer.', labels: ['fairness_id', 'priority', 'outcome'], buckets: FLOW_CONTROL_DURATION_BUCKETS },
  dispatchCycleDuration: { kind: 'histogram', name: 'inference_extension_flow_control_dispatch_cycle_duration_seconds', help: 'Distribution of the time of one flow control dispatch cycle.', buckets: FLOW_CONTROL_DURATION_BUCKETS },
  queueSize: { kind: 'gauge', name: 'inference_extension_flow_control_queue_size', help: 'Requests currently queued in the flow control layer.', labels: QUEUE_LABELS },
  queueBytes: { kind: 'gauge', name: 'inference_extension_flow_control_queue_bytes', help: 'Bytes of the requests currently queued in the flow control layer.', labels: QUEUE_LABELS },
  poolSaturation: { kind: 'gauge', name: 'inference_extension_flow_control_pool_saturation', help: 'Pool saturation as seen by the last flow control dispatch cycle (1.0 = saturated).', labels: ['inference_pool'] },
  outcomes: { kind: 'counter', name: 'epp_flow_control_requests_total', help: 'Requests that entered flow control, by final outcome (dispatched, rejected or evicted; each exactly once).', labels: ['outcome', 'priority'] },
  shed: { kind: 'counter', name: 'epp_admission_shed_total', help: 'Sheddable requests (priority < 0) refused with 429 by default admission because the pool was saturated.', labels: ['priority'] },
} as const satisfies MetricTable;

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- the metric fields are the table's, registered in the constructor
export interface FlowControlMetrics extends RegisteredMetrics<typeof FLOW_CONTROL_METRICS> {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface above
export class FlowControlMetrics {
  /** Bounds client-controlled label values (model names, fairness ids); identity when not bound to EppMetrics. */
  modelLabel: (model: string) => string = (m) => m;
  fairnessLabel: (id: string) => string = (f) => f;

  constructor(registry: Registry) {
    Object.assign(this, registerMetrics(registry, FLOW_CONTROL_METRICS));
  }
}

const flowControlMetrics = new WeakMap<Registry, FlowControlMetrics>();

/** The flow-control metrics of an `EppMetrics` registry (created on first use, once per registry). */
export function flowControlMetricsOf(metrics: EppMetrics): FlowControlMetrics {
  let m = flowControlMetrics.get(metrics.registry);
  if (m === undefined) {
    m = new FlowControlMetrics(metrics.registry);
    m.modelLabel = (model) => metrics.modelLabels.label(model);
    m.fairnessLabel = (id) => metrics.fairnessLabels.label(id);
    flowControlMetrics.set(metrics.registry, m);
  }
  return m;
}
