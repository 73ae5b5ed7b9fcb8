/**
 * Every Prometheus metric the EPP exports, defined in one place. Names, types, labels and buckets of the
 * upstream metrics follow epp-spec §7.3 (dashboards and autoscalers read them); `epp_*` metrics are ours.
 *
 * One `EppMetrics` per process (or per test): it owns its own registry, so tests never share state.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

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

export type ResponseHookPhase = 'ResponseReceived' | 'ResponseStreaming' | 'ResponseComplete';
export type CompletionOutcomeLabel = 'success' | 'upstream-error' | 'aborted' | 'internal-error';

export class EppMetrics {
  readonly registry: Registry;

  // --- upstream request metrics (epp-spec §7.3)
  readonly requestTotal: Counter<'model_name' | 'target_model_name' | 'priority'>;
  readonly requestErrorTotal: Counter<'model_name' | 'target_model_name' | 'error_code'>;
  readonly requestDuration: Histogram<'model_name' | 'target_model_name'>;
  readonly requestSizes: Histogram<'model_name' | 'target_model_name'>;
  readonly responseSizes: Histogram<'model_name' | 'target_model_name'>;
  readonly inputTokens: Histogram<'model_name' | 'target_model_name'>;
  readonly outputTokens: Histogram<'model_name' | 'target_model_name'>;
  readonly promptCachedTokens: Histogram<'model_name' | 'target_model_name'>;
  readonly runningRequests: Gauge<'model_name'>;
  readonly normalizedTimePerOutputToken: Histogram<'model_name' | 'target_model_name'>;
  readonly schedulerE2eDuration: Histogram;
  readonly schedulerAttemptsTotal: Counter<'status' | 'target_model_name' | 'pod_name' | 'namespace' | 'port'>;
  readonly pluginDuration: Histogram<'extension_point' | 'plugin_type' | 'plugin_name'>;
  readonly info: Gauge<'commit' | 'build_ref'>;

  // --- ours: the response path
  readonly responseHookErrors: Counter<'extension_point' | 'plugin_type' | 'plugin_name'>;
  readonly responseHookTimeouts: Counter<'extension_point' | 'plugin_type' | 'plugin_name'>;
  readonly responseHookDuration: Histogram<'extension_point'>;
  readonly responseQueueDepth: Histogram;
  readonly responseQueueOverflow: Counter<'policy'>;
  readonly completionOutcomes: Counter<'outcome'>;
  readonly requestBodyWait: Histogram;
  readonly activeStreams: Gauge<'data_plane'>;

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
    this.requestDuration = new Histogram({
      name: 'inference_objective_request_duration_seconds',
      help: 'Inference objective response latency distribution in seconds for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: GENERAL_LATENCY_BUCKETS,
      registers: r,
    });
    this.requestSizes = new Histogram({
      name: 'inference_objective_request_sizes',
      help: 'Inference objective requests size distribution in bytes for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: exponential(64, 2, 25),
      registers: r,
    });
    this.responseSizes = new Histogram({
      name: 'inference_objective_response_sizes',
      help: 'Inference objective responses size distribution in bytes for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32778, 65536],
      registers: r,
    });
    this.inputTokens = new Histogram({
      name: 'inference_objective_input_tokens',
      help: 'Inference objective input token count distribution for requests in each model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: exponential(1, 2, 21),
      registers: r,
    });
    this.outputTokens = new Histogram({
      name: 'inference_objective_output_tokens',
      help: 'Inference objective output token count distribution for requests in each model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: exponential(1, 2, 14),
      registers: r,
    });
    this.promptCachedTokens = new Histogram({
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
    this.normalizedTimePerOutputToken = new Histogram({
      name: 'inference_objective_normalized_time_per_output_token_seconds',
      help: 'Inference objective latency divided by number of output tokens in seconds for each model and target model.',
      labelNames: ['model_name', 'target_model_name'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0],
      registers: r,
    });
    this.schedulerE2eDuration = new Histogram({
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
    this.pluginDuration = new Histogram({
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
    this.responseHookDuration = new Histogram({
      name: 'epp_response_hook_duration_seconds',
      help: 'Time spent running the response hooks of one event (headers, one chunk, completion).',
      labelNames: ['extension_point'],
      buckets: HOOK_BUCKETS,
      registers: r,
    });
    this.responseQueueDepth = new Histogram({
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
    this.requestBodyWait = new Histogram({
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
  }
}
