/**
 * The EPP's core Prometheus metrics, declared as a table (./metric-table.ts gives every declaration one shape).
 * Names, types, labels and buckets of the upstream metrics follow epp-spec §7.3 (dashboards and autoscalers read
 * them); `epp_*` metrics are ours. Flow control's and cross-replica sync's live beside it
 * (./flow-control-metrics.ts, ./ha-sync-metrics.ts), registered on the same registry when used.
 *
 * One `EppMetrics` per process (or per test): it owns its own registry, so tests never share state.
 */
import { Registry } from 'prom-client';
import type { Endpoint } from '../framework/datalayer.ts';
import { DEFAULT_MAX_EXTRA_MODEL_LABELS, DEFAULT_MAX_FAIRNESS_LABELS, LabelBound } from './label-bound.ts';
import { exponential, registerMetrics, type MetricTable, type RegisteredMetrics } from './metric-table.ts';

const GENERAL_LATENCY_BUCKETS = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 120, 180,
  240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
];
const PLUGIN_BUCKETS = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1];
const HOOK_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
const HIT_RATIO_BUCKETS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
const HIT_BYTES_BUCKETS = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

export type ResponseHookPhase = 'ResponseReceived' | 'ResponseStreaming' | 'ResponseComplete';

/** Declaration order is the order `/metrics` lists them: upstream request metrics (epp-spec §7.3), upstream pool and prefix-indexer metrics, then ours. */
const EPP_METRICS = {
  requestTotal: { kind: 'counter', name: 'inference_objective_request_total', help: 'Counter of inference objective requests broken out for each model and target model.', labels: ['model_name', 'target_model_name', 'priority'] },
  requestErrorTotal: { kind: 'counter', name: 'inference_objective_request_error_total', help: 'Counter of inference objective requests errors broken out for each model and target model.', labels: ['model_name', 'target_model_name', 'error_code'] },
  requestDuration: { kind: 'histogram', name: 'inference_objective_request_duration_seconds', help: 'Inference objective response latency distribution in seconds for each model and target model.', labels: ['model_name', 'target_model_name'], buckets: GENERAL_LATENCY_BUCKETS },
  requestSizes: { kind: 'histogram', name: 'inference_objective_request_sizes', help: 'Inference objective requests size distribution in bytes for each model and target model.', labels: ['model_name', 'target_model_name'], buckets: exponential(64, 2, 25) },
  responseSizes: { kind: 'histogram', name: 'inference_objective_response_sizes', help: 'Inference objective responses size distribution in bytes for each model and target model.', labels: ['model_name', 'target_model_name'], buckets: [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32778, 65536] },
  inputTokens: { kind: 'histogram', name: 'inference_objective_input_tokens', help: 'Inference objective input token count distribution for requests in each model.', labels: ['model_name', 'target_model_name'], buckets: exponential(1, 2, 21) },
  outputTokens: { kind: 'histogram', name: 'inference_objective_output_tokens', help: 'Inference objective output token count distribution for requests in each model.', labels: ['model_name', 'target_model_name'], buckets: exponential(1, 2, 14) },
  promptCachedTokens: { kind: 'histogram', name: 'inference_objective_prompt_cached_tokens', help: 'Inference objective prompt cached token count distribution for requests in each model.', labels: ['model_name', 'target_model_name'], buckets: exponential(1, 2, 21) },
  runningRequests: { kind: 'gauge', name: 'inference_objective_running_requests', help: 'Inference objective number of running requests in each model.', labels: ['model_name'] },
  normalizedTimePerOutputToken: { kind: 'histogram', name: 'inference_objective_normalized_time_per_output_token_seconds', help: 'Inference objective latency divided by number of output tokens in seconds for each model and target model.', labels: ['model_name', 'target_model_name'], buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0] },
  schedulerE2eDuration: { kind: 'histogram', name: 'inference_extension_scheduler_e2e_duration_seconds', help: 'End-to-end scheduling latency distribution in seconds.', buckets: PLUGIN_BUCKETS },
  schedulerAttemptsTotal: { kind: 'counter', name: 'inference_extension_scheduler_attempts_total', help: 'Total number of scheduling attempts.', labels: ['status', 'target_model_name', 'pod_name', 'namespace', 'port'] },
  pluginDuration: { kind: 'histogram', name: 'inference_extension_plugin_duration_seconds', help: 'Plugin processing latency distribution in seconds for each extension point, plugin type and plugin name.', labels: ['extension_point', 'plugin_type', 'plugin_name'], buckets: PLUGIN_BUCKETS },
  info: { kind: 'gauge', name: 'inference_extension_info', help: 'General information of the current build of Inference Extension.', labels: ['commit', 'build_ref'] },
  modelRewriteDecisions: { kind: 'counter', name: 'inference_extension_model_rewrite_decisions_total', help: 'Total number of model rewrite decisions.', labels: ['model_rewrite_name', 'model_name', 'target_model'] },
  poolAverageKvCacheUtilization: { kind: 'gauge', name: 'inference_pool_average_kv_cache_utilization', help: 'The average kv cache utilization for an inference server pool.', labels: ['name'] },
  poolAverageQueueSize: { kind: 'gauge', name: 'inference_pool_average_queue_size', help: 'The average number of requests pending in the model server queue.', labels: ['name'] },
  poolAverageRunningRequests: { kind: 'gauge', name: 'inference_pool_average_running_requests', help: 'The average number of requests currently being processed by the model servers.', labels: ['name'] },
  poolReadyPods: { kind: 'gauge', name: 'inference_pool_ready_pods', help: 'The number of ready pods in the inference server pool.', labels: ['name'] },
  poolPerPodQueueSize: { kind: 'gauge', name: 'inference_pool_per_pod_queue_size', help: 'The total number of requests pending in the model server queue for each underlying pod.', labels: ['name', 'model_server_pod'] },
  prefixIndexerSize: { kind: 'gauge', name: 'inference_extension_prefix_indexer_size', help: 'Size of the prefix indexer.' },
  prefixIndexerHitRatio: { kind: 'histogram', name: 'inference_extension_prefix_indexer_hit_ratio', help: 'Ratio of prefix length matched to total prefix length in the cache lookup.', buckets: HIT_RATIO_BUCKETS },
  prefixIndexerHitBytes: { kind: 'histogram', name: 'inference_extension_prefix_indexer_hit_bytes', help: 'Length of the prefix match in number of bytes in the cache lookup.', buckets: HIT_BYTES_BUCKETS },
  responseHookErrors: { kind: 'counter', name: 'epp_response_hook_errors_total', help: 'Response-path hook calls that threw or rejected (the stream carried on).', labels: ['extension_point', 'plugin_type', 'plugin_name'] },
  responseHookTimeouts: { kind: 'counter', name: 'epp_response_hook_timeouts_total', help: 'Response-path hook calls abandoned after their timeout (the stream carried on).', labels: ['extension_point', 'plugin_type', 'plugin_name'] },
  responseHookDuration: { kind: 'histogram', name: 'epp_response_hook_duration_seconds', help: 'Time spent running the response hooks of one event (headers, one chunk, completion).', labels: ['extension_point'], buckets: HOOK_BUCKETS },
  responseQueueDepth: { kind: 'histogram', name: 'epp_response_queue_depth', help: 'Pending chunk-hook work items in a stream queue, observed at each enqueue.', buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] },
  responseQueueOverflow: { kind: 'counter', name: 'epp_response_queue_overflow_total', help: 'Chunks whose hooks met a full stream queue, by overflow policy (drop: hooks skipped; block: reply waited).', labels: ['policy'] },
  completionOutcomes: { kind: 'counter', name: 'epp_request_completions_total', help: 'Scheduled requests completed, by outcome (each exactly once).', labels: ['outcome'] },
  requestBodyWait: { kind: 'histogram', name: 'epp_request_body_wait_seconds', help: 'Time from the first to the last request-body message of a request.', buckets: HOOK_BUCKETS },
  activeStreams: { kind: 'gauge', name: 'epp_active_streams', help: 'Requests in flight in the EPP, by data plane.', labels: ['data_plane'] },
  certificateReloads: { kind: 'counter', name: 'epp_tls_certificate_reloads_total', help: 'Changes of --cert-path seen with --enable-cert-reload, by result (success: now served; error: invalid, ignored).', labels: ['result'] },
  certificateExpiry: { kind: 'gauge', name: 'epp_tls_certificate_expiry_timestamp_seconds', help: 'Expiry (notAfter, Unix seconds) of the ext_proc certificate in use (source cert-path: loaded with --enable-cert-reload).', labels: ['source'] },
  pluginErrors: { kind: 'counter', name: 'epp_plugin_errors_total', help: 'Scheduling plugin calls (filter, scorer, picker) that threw; the request got a 500 naming the plugin.', labels: ['extension_point', 'plugin_type', 'plugin_name'] },
  invariantViolations: { kind: 'counter', name: 'epp_lifecycle_invariant_violations_total', help: 'Data-plane events that broke a lifecycle invariant (a chunk after the final one, a second completion), ignored.', labels: ['invariant'] },
  responseBufferOverflows: { kind: 'counter', name: 'epp_response_buffer_overflows_total', help: 'Non-streaming responses larger than the response buffer cap: passed through unbuffered, usage unknown.', labels: ['data_plane'] },
  bodyBudgetRejections: { kind: 'counter', name: 'epp_request_body_budget_rejections_total', help: 'Requests answered 429 because the in-flight request-body byte budget was exhausted.', labels: ['data_plane'] },
  upstreamTimeouts: { kind: 'counter', name: 'epp_gateway_upstream_timeouts_total', help: 'Embedded gateway: upstream requests ended by a timeout, by phase (connect, headers: 504; idle, deadline: stream ended).', labels: ['phase'] },
  clientTimeouts: { kind: 'counter', name: 'epp_client_timeouts_total', help: 'Clients (or proxy streams) closed for being idle too long, by data plane and phase.', labels: ['data_plane', 'phase'] },
  metricsAuthFailures: { kind: 'counter', name: 'epp_metrics_auth_failures_total', help: 'Refused /metrics scrapes with --metrics-endpoint-auth, by reason (missing, invalid, forbidden, error).', labels: ['reason'] },
} as const satisfies MetricTable;

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- the metric fields are the table's, registered in the constructor
export interface EppMetrics extends RegisteredMetrics<typeof EPP_METRICS> {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface above
export class EppMetrics {
  readonly registry: Registry;

  /** Model names as labels: known ones (served, rewrite rules) plus a bounded number of others, then `other`. */
  readonly modelLabels = new LabelBound(DEFAULT_MAX_EXTRA_MODEL_LABELS);
  /** Fairness ids (a client header) as labels, bounded the same way. */
  readonly fairnessLabels = new LabelBound(DEFAULT_MAX_FAIRNESS_LABELS);

  #pool: PoolSource | undefined;
  #prefixIndexers: ReadonlyArray<{ readonly size: number }> = [];

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const boundPool = (): PoolSource | undefined => this.#pool;
    const boundIndexers = (): ReadonlyArray<{ readonly size: number }> => this.#prefixIndexers;
    Object.assign(
      this,
      registerMetrics(registry, EPP_METRICS, {
        // Collected at scrape time over every endpoint, fresh or not (upstream's collector does the same).
        poolPerPodQueueSize() {
          this.reset();
          const pool = boundPool();
          if (pool === undefined) return;
          for (const e of pool.endpoints()) this.set({ name: pool.name, model_server_pod: e.metadata.name }, e.metrics.waitingQueueSize);
        },
        // Upstream samples every second; reading the index at scrape time is cheaper and never stale.
        prefixIndexerSize() {
          let total = 0;
          for (const ix of boundIndexers()) total += ix.size;
          this.set(total);
        },
      }),
    );
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
