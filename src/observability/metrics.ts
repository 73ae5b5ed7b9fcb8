/**
 * Every Prometheus metric the EPP exports, defined in one place. Names, types, labels and buckets of the
 * upstream metrics follow epp-spec §7.3 (dashboards and autoscalers read them); `epp_*` metrics are ours.
 *
 * One `EppMetrics` per process (or per test): it owns its own registry, so tests never share state.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Endpoint } from '../framework/datalayer.ts';
import { AggregateHistogram } from './aggregate-histogram.ts';
import { DEFAULT_MAX_EXTRA_MODEL_LABELS, DEFAULT_MAX_FAIRNESS_LABELS, LabelBound } from './label-bound.ts';


/** Exponential buckets: `count` values starting at `start`, each `factor` times the previous. */
function exponential(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0, v = start; i < count; i++, v *= factor) out.push(Number(v.toPrecision(12)));
  return out;
}

const GENERAL_LATENCY_BUCKETS = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 120, 180,
  240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
];
const PLUGIN_BUCKETS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];
const HOOK_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
const HIT_RATIO_BUCKETS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
const HIT_BYTES_BUCKETS = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

export type ResponseHookPhase = 'ResponseReceived' | 'ResponseStreaming' | 'ResponseComplete';
export type CompletionOutcomeLabel = 'success' | 'upstream-error' | 'aborted' | 'internal-error';

export class EppMetrics {
  readonly registry: Registry;

  // --- upstream request metrics (epp-spec §7.3)
  readonly requestTotal: Counter<'model_name' | 'target_model_name' | 'priority'>;
  readonly requestErrorTotal: Counter<'model_name' | 'target_model_name' | 'error_code'>;
  readonly requestDuration: AggregateHistogram<'model_name' | 'target_model_name'>;
  readonly requestSizes: AggregateHistogram<'model_name' | 'target_model_name'>;
  readonly responseSizes: AggregateHistogram<'model_name' | 'target_model_name'>;
  readonly inputTokens: AggregateHistogram<'model_name' | 'target_model_name'>;
  readonly outputTokens: AggregateHistogram<'model_name' | 'target_model_name'>;
  readonly promptCachedTokens: AggregateHistogram<'model_name' | 'target_model_name'>;
  readonly runningRequests: Gauge<'model_name'>;
  readonly normalizedTimePerOutputToken: AggregateHistogram<'model_name' | 'target_model_name'>;
  readonly schedulerE2eDuration: AggregateHistogram;
  readonly schedulerAttemptsTotal: Counter<'status' | 'target_model_name' | 'pod_name' | 'namespace' | 'port'>;
  /** Observed per hook call (and per chunk): aggregated, folded in at scrape (aggregate-histogram.ts). */
  readonly pluginDuration: AggregateHistogram<'extension_point' | 'plugin_type' | 'plugin_name'>;
  readonly info: Gauge<'commit' | 'build_ref'>;
  readonly modelRewriteDecisions: Counter<'model_rewrite_name' | 'model_name' | 'target_model'>;

  // --- upstream pool and prefix-indexer metrics (values come from bindPool / bindPrefixIndexers)
  readonly poolAverageKvCacheUtilization: Gauge<'name'>;
  readonly poolAverageQueueSize: Gauge<'name'>;
  readonly poolAverageRunningRequests: Gauge<'name'>;
  readonly poolReadyPods: Gauge<'name'>;
  readonly poolPerPodQueueSize: Gauge<'name' | 'model_server_pod'>;
  readonly prefixIndexerSize: Gauge;
  readonly prefixIndexerHitRatio: Histogram;
  readonly prefixIndexerHitBytes: Histogram;

  // --- ours: the response path
  readonly responseHookErrors: Counter<'extension_point' | 'plugin_type' | 'plugin_name'>;
  readonly responseHookTimeouts: Counter<'extension_point' | 'plugin_type' | 'plugin_name'>;
  /** Per chunk, like the queue depth: aggregated, folded in at scrape. */
  readonly responseHookDuration: AggregateHistogram<'extension_point'>;
  readonly responseQueueDepth: AggregateHistogram;
  readonly responseQueueOverflow: Counter<'policy'>;
  readonly completionOutcomes: Counter<'outcome'>;
  readonly requestBodyWait: AggregateHistogram;
  readonly activeStreams: Gauge<'data_plane'>;
  readonly certificateReloads: Counter<'result'>;
  readonly certificateExpiry: Gauge<'source'>;
  readonly pluginErrors: Counter<'extension_point' | 'plugin_type' | 'plugin_name'>;
  readonly invariantViolations: Counter<'invariant'>;
  readonly responseBufferOverflows: Counter<'data_plane'>;
  readonly bodyBudgetRejections: Counter<'data_plane'>;
  readonly upstreamTimeouts: Counter<'phase'>;
  readonly clientTimeouts: Counter<'data_plane' | 'phase'>;
  readonly metricsAuthFailures: Counter<'reason'>;

  /** Model names as labels: known ones (served, rewrite rules) plus a bounded number of others, then `other`. */
  readonly modelLabels = new LabelBound(DEFAULT_MAX_EXTRA_MODEL_LABELS);
  /** Fairness ids (a client header) as labels, bounded the same way. */
  readonly fairnessLabels = new LabelBound(DEFAULT_MAX_FAIRNESS_LABELS);

  #pool: PoolSource | undefined;
  #prefixIndexers: ReadonlyArray<{ readonly size: number }> = [];

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const r = [registry];
    this.requestTotal = new Counter({
      name: 'inference_objective_request_total',
      help: 'Counter of inference objective requests broken out for each model and target model.',
      labelNames: ['model_name', 'target_model_name', 'priority'],
      registers: r,
    });
    this.requestErrorTotal = new Counter({
      name: 'inference_objective_request_error_total',
      help: 'Counter of inference objective requests errors broken out for each model and target model.',
      labelNames: ['model_name', 'target_model_name', 'error_code'],
      registers: r,
    });
    this.requestDuration = new AggregateHistogram({
      name: 'inference_objective_request_duration_seconds',
      help: 'Inference objective response latency distribution in seconds for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: GENERAL_LATENCY_BUCKETS,
      registers: r,
    });
    this.requestSizes = new AggregateHistogram({
      name: 'inference_objective_request_sizes',
      help: 'Inference objective requests size distribution in bytes for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: exponential(64, 2, 25),
      registers: r,
    });
    this.responseSizes = new AggregateHistogram({
      name: 'inference_objective_response_sizes',
      help: 'Inference objective responses size distribution in bytes for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32778, 65536],
      registers: r,
    });
    this.inputTokens = new AggregateHistogram({
      name: 'inference_objective_input_tokens',
      help: 'Inference objective input token count distribution for requests in each model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: exponential(1, 2, 21),
      registers: r,
    });
    this.outputTokens = new AggregateHistogram({
      name: 'inference_objective_output_tokens',
      help: 'Inference objective output token count distribution for requests in each model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: exponential(1, 2, 14),
      registers: r,
    });
    this.promptCachedTokens = new AggregateHistogram({
      name: 'inference_objective_prompt_cached_tokens',
      help: 'Inference objective prompt cached token count distribution for requests in each model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: exponential(1, 2, 21),
      registers: r,
    });
    this.runningRequests = new Gauge({
      name: 'inference_objective_running_requests',
      help: 'Inference objective number of running requests in each model.',
      labelNames: ['model_name'],
      registers: r,
    });
    this.normalizedTimePerOutputToken = new AggregateHistogram({
      name: 'inference_objective_normalized_time_per_output_token_seconds',
      help: 'Inference objective latency divided by number of output tokens in seconds for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0],
      registers: r,
    });
    this.schedulerE2eDuration = new AggregateHistogram({
      name: 'inference_extension_scheduler_e2e_duration_seconds',
      help: 'End-to-end scheduling latency distribution in seconds.',
      buckets: PLUGIN_BUCKETS,
      registers: r,
    });
    this.schedulerAttemptsTotal = new Counter({
      name: 'inference_extension_scheduler_attempts_total',
      help: 'Total number of scheduling attempts.',
      labelNames: ['status', 'target_model_name', 'pod_name', 'namespace', 'port'],
      registers: r,
    });
    this.pluginDuration = new AggregateHistogram({
      name: 'inference_extension_plugin_duration_seconds',
      help: 'Plugin processing latency distribution in seconds for each extension point, plugin type and plugin name.',
      labelNames: ['extension_point', 'plugin_type', 'plugin_name'],
      buckets: PLUGIN_BUCKETS,
      registers: r,
    });
    this.info = new Gauge({
      name: 'inference_extension_info',
      help: 'General information of the current build of Inference Extension.',
      labelNames: ['commit', 'build_ref'],
      registers: r,
    });
    this.modelRewriteDecisions = new Counter({
      name: 'inference_extension_model_rewrite_decisions_total',
      help: 'Total number of model rewrite decisions.',
      labelNames: ['model_rewrite_name', 'model_name', 'target_model'],
      registers: r,
    });

    this.poolAverageKvCacheUtilization = new Gauge({
      name: 'inference_pool_average_kv_cache_utilization',
      help: 'The average kv cache utilization for an inference server pool.',
      labelNames: ['name'],
      registers: r,
    });
    this.poolAverageQueueSize = new Gauge({
      name: 'inference_pool_average_queue_size',
      help: 'The average number of requests pending in the model server queue.',
      labelNames: ['name'],
      registers: r,
    });
    this.poolAverageRunningRequests = new Gauge({
      name: 'inference_pool_average_running_requests',
      help: 'The average number of requests currently being processed by the model servers.',
      labelNames: ['name'],
      registers: r,
    });
    this.poolReadyPods = new Gauge({
      name: 'inference_pool_ready_pods',
      help: 'The number of ready pods in the inference server pool.',
      labelNames: ['name'],
      registers: r,
    });
    const boundPool = (): PoolSource | undefined => this.#pool;
    const boundIndexers = (): ReadonlyArray<{ readonly size: number }> => this.#prefixIndexers;
    this.poolPerPodQueueSize = new Gauge({
      name: 'inference_pool_per_pod_queue_size',
      help: 'The total number of requests pending in the model server queue for each underlying pod.',
      labelNames: ['name', 'model_server_pod'],
      registers: r,
      // Collected at scrape time over every endpoint, fresh or not (upstream's collector does the same).
      collect() {
        this.reset();
        const pool = boundPool();
        if (pool === undefined) return;
        for (const e of pool.endpoints()) this.set({ name: pool.name, model_server_pod: e.metadata.name }, e.metrics.waitingQueueSize);
      },
    });
    this.prefixIndexerSize = new Gauge({
      name: 'inference_extension_prefix_indexer_size',
      help: 'Size of the prefix indexer.',
      registers: r,
      // Upstream samples every second; reading the index at scrape time is cheaper and never stale.
      collect() {
        let total = 0;
        for (const ix of boundIndexers()) total += ix.size;
        this.set(total);
      },
    });
    this.prefixIndexerHitRatio = new Histogram({
      name: 'inference_extension_prefix_indexer_hit_ratio',
      help: 'Ratio of prefix length matched to total prefix length in the cache lookup.',
      buckets: HIT_RATIO_BUCKETS,
      registers: r,
    });
    this.prefixIndexerHitBytes = new Histogram({
      name: 'inference_extension_prefix_indexer_hit_bytes',
      help: 'Length of the prefix match in number of bytes in the cache lookup.',
      buckets: HIT_BYTES_BUCKETS,
      registers: r,
    });

    this.responseHookErrors = new Counter({
      name: 'epp_response_hook_errors_total',
      help: 'Response-path hook calls that threw or rejected (the stream carried on).',
      labelNames: ['extension_point', 'plugin_type', 'plugin_name'],
      registers: r,
    });
    this.responseHookTimeouts = new Counter({
      name: 'epp_response_hook_timeouts_total',
      help: 'Response-path hook calls abandoned after their timeout (the stream carried on).',
      labelNames: ['extension_point', 'plugin_type', 'plugin_name'],
      registers: r,
    });
    this.responseHookDuration = new AggregateHistogram({
      name: 'epp_response_hook_duration_seconds',
      help: 'Time spent running the response hooks of one event (headers, one chunk, completion).',
      labelNames: ['extension_point'],
      buckets: HOOK_BUCKETS,
      registers: r,
    });
    this.responseQueueDepth = new AggregateHistogram({
      name: 'epp_response_queue_depth',
      help: 'Pending chunk-hook work items in a stream queue, observed at each enqueue.',
      buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers: r,
    });
    this.responseQueueOverflow = new Counter({
      name: 'epp_response_queue_overflow_total',
      help: 'Chunks whose hooks met a full stream queue, by overflow policy (drop: hooks skipped; block: reply waited).',
      labelNames: ['policy'],
      registers: r,
    });
    this.completionOutcomes = new Counter({
      name: 'epp_request_completions_total',
      help: 'Scheduled requests completed, by outcome (each exactly once).',
      labelNames: ['outcome'],
      registers: r,
    });
    this.requestBodyWait = new AggregateHistogram({
      name: 'epp_request_body_wait_seconds',
      help: 'Time from the first to the last request-body message of a request.',
      buckets: HOOK_BUCKETS,
      registers: r,
    });
    this.activeStreams = new Gauge({
      name: 'epp_active_streams',
      help: 'Requests in flight in the EPP, by data plane.',
      labelNames: ['data_plane'],
      registers: r,
    });
    this.certificateReloads = new Counter({
      name: 'epp_tls_certificate_reloads_total',
      help: 'Changes of --cert-path seen with --enable-cert-reload, by result (success: now served; error: invalid, ignored).',
      labelNames: ['result'],
      registers: r,
    });
    this.certificateExpiry = new Gauge({
      name: 'epp_tls_certificate_expiry_timestamp_seconds',
      help: 'Expiry (notAfter, Unix seconds) of the ext_proc certificate in use (source cert-path: loaded with --enable-cert-reload).',
      labelNames: ['source'],
      registers: r,
    });
    this.pluginErrors = new Counter({
      name: 'epp_plugin_errors_total',
      help: 'Scheduling plugin calls (filter, scorer, picker) that threw; the request got a 500 naming the plugin.',
      labelNames: ['extension_point', 'plugin_type', 'plugin_name'],
      registers: r,
    });
    this.invariantViolations = new Counter({
      name: 'epp_lifecycle_invariant_violations_total',
      help: 'Data-plane events that broke a lifecycle invariant (a chunk after the final one, a second completion), ignored.',
      labelNames: ['invariant'],
      registers: r,
    });
    this.responseBufferOverflows = new Counter({
      name: 'epp_response_buffer_overflows_total',
      help: 'Non-streaming responses larger than the response buffer cap: passed through unbuffered, usage unknown.',
      labelNames: ['data_plane'],
      registers: r,
    });
    this.bodyBudgetRejections = new Counter({
      name: 'epp_request_body_budget_rejections_total',
      help: 'Requests answered 429 because the in-flight request-body byte budget was exhausted.',
      labelNames: ['data_plane'],
      registers: r,
    });
    this.upstreamTimeouts = new Counter({
      name: 'epp_gateway_upstream_timeouts_total',
      help: 'Embedded gateway: upstream requests ended by a timeout, by phase (connect, headers: 504; idle, deadline: stream ended).',
      labelNames: ['phase'],
      registers: r,
    });
    this.clientTimeouts = new Counter({
      name: 'epp_client_timeouts_total',
      help: 'Clients (or proxy streams) closed for being idle too long, by data plane and phase.',
      labelNames: ['data_plane', 'phase'],
      registers: r,
    });
    this.metricsAuthFailures = new Counter({
      name: 'epp_metrics_auth_failures_total',
      help: 'Refused /metrics scrapes with --metrics-endpoint-auth, by reason (missing, invalid, forbidden, error).',
      labelNames: ['reason'],
      registers: r,
    });
  }

  /** The label for a (client-controlled) model name: see `modelLabels`. */
  modelLabel(model: string): string {
    return this.modelLabels.label(model);
  }

  /** Pool whose endpoints feed `inference_pool_per_pod_queue_size` at scrape time and `refreshPoolGauges`. */
  bindPool(pool: PoolSource): void {
    this.#pool = pool;
  }

  /** Prefix indexes whose sizes add up to `inference_extension_prefix_indexer_size` at scrape time. */
  bindPrefixIndexers(indexers: ReadonlyArray<{ readonly size: number }>): void {
    this.#prefixIndexers = indexers;
  }

  /**
   * Recomputes the pool averages over endpoints whose metrics are fresher than `stalenessMs` (upstream runs this
   * every `--refresh-prometheus-metrics-interval`). With no fresh endpoint, `ready_pods` drops to 0 and the
   * averages keep their last values (upstream leaves all four untouched; a stale ready count misleads more).
   */
  refreshPoolGauges(now: number, stalenessMs: number): void {
    const pool = this.#pool;
    if (pool === undefined) return;
    let n = 0;
    let kv = 0;
    let queue = 0;
    let running = 0;
    for (const e of pool.endpoints()) {
      const m = e.metrics;
      if (m.updateTime === 0 || now - m.updateTime > stalenessMs) continue;
      n++;
      kv += m.kvCacheUsagePercent;
      queue += m.waitingQueueSize;
      running += m.runningRequestsSize;
    }
    const labels = { name: pool.name };
    this.poolReadyPods.set(labels, n);
    if (n === 0) return;
    this.poolAverageKvCacheUtilization.set(labels, kv / n);
    this.poolAverageQueueSize.set(labels, queue / n);
    this.poolAverageRunningRequests.set(labels, running / n);
  }
}

/** What the pool gauges read: the pool's name (the `name` label) and its current endpoints. */
export interface PoolSource {
  readonly name: string;
  endpoints(): readonly Endpoint[];
}

// ------------------------------------------------------------------ admission & flow control (epp-spec §7.3)

const FLOW_CONTROL_DURATION_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60];

export type FlowControlOutcomeLabel =
  | 'Dispatched'
  | 'RejectedCapacity'
  | 'RejectedOther'
  | 'EvictedTTL'
  | 'EvictedContextCancelled'
  | 'EvictedOther';

/** Flow-control metrics: upstream's `inference_extension_flow_control_*` plus our outcome counter. */
export class FlowControlMetrics {
  /** Bounds client-controlled label values (model names, fairness ids); identity when not bound to EppMetrics. */
  modelLabel: (model: string) => string = (m) => m;
  fairnessLabel: (id: string) => string = (f) => f;
  readonly queueDuration: Histogram<'fairness_id' | 'priority' | 'outcome' | 'inference_pool' | 'model_name' | 'target_model_name'>;
  readonly enqueueDuration: Histogram<'fairness_id' | 'priority' | 'outcome'>;
  readonly dispatchCycleDuration: Histogram;
  readonly queueSize: Gauge<'fairness_id' | 'priority' | 'inference_pool' | 'model_name' | 'target_model_name'>;
  readonly queueBytes: Gauge<'fairness_id' | 'priority' | 'inference_pool' | 'model_name' | 'target_model_name'>;
  readonly poolSaturation: Gauge<'inference_pool'>;
  /** Ours: every request that entered flow control, by final outcome (each exactly once). */
  readonly outcomes: Counter<'outcome' | 'priority'>;
  /** Ours: sheddable requests refused by default (legacy) admission because the pool was saturated. */
  readonly shed: Counter<'priority'>;

  constructor(registry: Registry) {
    const r = [registry];
    const queueLabels = ['fairness_id', 'priority', 'inference_pool', 'model_name', 'target_model_name'] as const;
    this.queueDuration = new Histogram({
      name: 'inference_extension_flow_control_request_queue_duration_seconds',
      help: 'Distribution of the total time requests spend in the flow control layer, by final outcome.',
      labelNames: ['fairness_id', 'priority', 'outcome', 'inference_pool', 'model_name', 'target_model_name'],
      buckets: FLOW_CONTROL_DURATION_BUCKETS,
      registers: r,
    });
    this.enqueueDuration = new Histogram({
      name: 'inference_extension_flow_control_request_enqueue_duration_seconds',
      help: 'Distribution of the time to enqueue a request in the flow control layer.',
      labelNames: ['fairness_id', 'priority', 'outcome'],
      buckets: FLOW_CONTROL_DURATION_BUCKETS,
      registers: r,
    });
    this.dispatchCycleDuration = new Histogram({
      name: 'inference_extension_flow_control_dispatch_cycle_duration_seconds',
      help: 'Distribution of the time of one flow control dispatch cycle.',
      buckets: FLOW_CONTROL_DURATION_BUCKETS,
      registers: r,
    });
    this.queueSize = new Gauge({
      name: 'inference_extension_flow_control_queue_size',
      help: 'Requests currently queued in the flow control layer.',
      labelNames: queueLabels,
      registers: r,
    });
    this.queueBytes = new Gauge({
      name: 'inference_extension_flow_control_queue_bytes',
      help: 'Bytes of the requests currently queued in the flow control layer.',
      labelNames: queueLabels,
      registers: r,
    });
    this.poolSaturation = new Gauge({
      name: 'inference_extension_flow_control_pool_saturation',
      help: 'Pool saturation as seen by the last flow control dispatch cycle (1.0 = saturated).',
      labelNames: ['inference_pool'],
      registers: r,
    });
    this.outcomes = new Counter({
      name: 'epp_flow_control_requests_total',
      help: 'Requests that entered flow control, by final outcome (dispatched, rejected or evicted; each exactly once).',
      labelNames: ['outcome', 'priority'],
      registers: r,
    });
    this.shed = new Counter({
      name: 'epp_admission_shed_total',
      help: 'Sheddable requests (priority < 0) refused with 429 by default admission because the pool was saturated.',
      labelNames: ['priority'],
      registers: r,
    });
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

// ------------------------------------------------------------------ cross-replica sync (ours; docs/replicas.md)

const HA_LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `epp_ha_*`: registered only when a cross-replica syncer is configured. */
export class HaSyncMetrics {
  readonly up: Gauge;
  readonly peers: Gauge;
  readonly warm: Gauge;
  readonly publishedBatches: Counter;
  readonly publishedBytes: Counter;
  readonly droppedBatches: Counter<'reason'>;
  readonly appliedPlacements: Counter;
  readonly lag: Histogram;
  readonly gaps: Counter<'reason'>;
  readonly incompatible: Counter;
  readonly snapshotAge: Gauge;
  readonly snapshotLoadSeconds: Gauge;
  readonly snapshotBytes: Gauge;
  /** When the newest snapshot this replica loaded or wrote was taken (ms since epoch; 0 = none). */
  lastSnapshotAtMs = 0;

  constructor(registry: Registry, now: () => number = Date.now) {
    const r = [registry];
    this.up = new Gauge({ name: 'epp_ha_sync_up', help: '1 while this replica can both publish to and read from the sync transport (Redis), else 0 (routing continues on local state).', registers: r });
    this.peers = new Gauge({ name: 'epp_ha_sync_peers', help: 'Other replicas heard from within loadStaleMs.', registers: r });
    this.warm = new Gauge({ name: 'epp_ha_sync_warm', help: '1 when this replica started warm (snapshot + log caught up), 0 when it started cold.', registers: r });
    this.publishedBatches = new Counter({ name: 'epp_ha_sync_published_batches_total', help: 'Sync batches appended to the transport.', registers: r });
    this.publishedBytes = new Counter({ name: 'epp_ha_sync_published_bytes_total', help: 'Bytes of sync batches appended to the transport.', registers: r });
    this.droppedBatches = new Counter({
      name: 'epp_ha_sync_dropped_batches_total',
      help: 'Sync batches dropped, by reason: queue_full (oldest dropped at the publish queue cap), transport_error, timeout, malformed (received and unreadable).',
      labelNames: ['reason'],
      registers: r,
    });
    this.appliedPlacements = new Counter({ name: 'epp_ha_sync_applied_placements_total', help: "Peers' placements applied to this replica's index.", registers: r });
    this.lag = new Histogram({ name: 'epp_ha_sync_lag_seconds', help: 'From a peer sending a batch of placements to this replica applying it (wall clocks of both).', buckets: HA_LAG_BUCKETS, registers: r });
    this.gaps = new Counter({ name: 'epp_ha_sync_gaps_total', help: 'Batches missed, by reason: seq (a peer\'s sequence skipped: lost batches), trimmed (the log was trimmed past this reader; snapshot reloaded).', labelNames: ['reason'], registers: r });
    this.incompatible = new Counter({ name: 'epp_ha_sync_incompatible_total', help: 'Placements ignored because the peer hashes differently (fingerprint, block size or wire version).', registers: r });
    this.snapshotAge = new Gauge({
      name: 'epp_ha_sync_snapshot_age_seconds',
      help: 'Age of the newest snapshot this replica loaded or wrote (-1 = none yet).',
      registers: r,
      collect: () => {
        this.snapshotAge.set(this.lastSnapshotAtMs === 0 ? -1 : Math.max(0, (now() - this.lastSnapshotAtMs) / 1000));
      },
    });
    this.snapshotLoadSeconds = new Gauge({ name: 'epp_ha_sync_snapshot_load_seconds', help: 'Time the last snapshot load took (fetch + import).', registers: r });
    this.snapshotBytes = new Gauge({ name: 'epp_ha_sync_snapshot_bytes', help: 'Size of the last snapshot this replica wrote.', registers: r });
  }
}

const haSyncMetrics = new WeakMap<Registry, HaSyncMetrics>();

/** The `epp_ha_*` metrics of an `EppMetrics` registry (registered on first use, once per registry). */
export function haSyncMetricsOf(metrics: EppMetrics, now?: () => number): HaSyncMetrics {
  let m = haSyncMetrics.get(metrics.registry);
  if (m === undefined) {
    m = new HaSyncMetrics(metrics.registry, now);
    haSyncMetrics.set(metrics.registry, m);
  }
  return m;
}
