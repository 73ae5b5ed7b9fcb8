// Prometheus metrics of one simulated server (sim-spec §4): vLLM names and labels (or SGLang names), fed by the
// engine through `EngineMetrics`, rendered for `/metrics`. Gauges and counters are rendered on every scrape
// (a few lines); histogram text is re-rendered only when something changed and the cached text is older than
// `metricsCacheMs`, so 80 scrapes/s across a fleet stay cheap.

import type { EngineMetrics, SchedulerState } from '../engine.ts';
import type { MetricsFlavor } from '../config.ts';
import type { FinishReason, Sequence } from '../sequence.ts';
import { Histogram, buckets125 } from './histogram.ts';
import { escapeLabelValue, familyHeader, formatValue, labelPairs } from './prom-text.ts';

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560,
];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const REQUEST_TIME_BUCKETS = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];
const ITERATION_TOKEN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
const PARAMS_N_BUCKETS = [1, 2, 5, 10, 20];
const STEP_BUCKETS = [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1];
/** Distinct `vllm:lora_requests_info` label sets kept; the oldest is dropped beyond this. */
const MAX_LORA_INFO_SERIES = 64;

/** Process-wide event-loop health, shared by every server of a fleet. */
export interface LagSnapshot {
  /** p99 of event-loop delay over the last window, seconds. */
  readonly p99Seconds: number;
  /** Maximum event-loop delay over the last window, seconds. */
  readonly maxSeconds: number;
  /** Largest lateness of an engine timer over the last window, seconds (simulated). */
  readonly timerLatenessSeconds: number;
}

export interface ServerMetricsInit {
  readonly flavor: MetricsFlavor;
  readonly modelName: string;
  readonly serverId: string;
  readonly port: () => number;
  readonly speedFactor: () => number;
  readonly maxModelLen: number;
  readonly maxLoras: number;
  readonly blockSize: number;
  readonly numGpuBlocks: number;
  /** Publish `numGpuBlocks` (the cache-config metric's block count); false = leave it out. */
  readonly publishNumGpuBlocks: boolean;
  readonly enablePrefixCaching: boolean;
  readonly metricsCacheMs: number;
  /** Unix milliseconds for `vllm:lora_requests_info` values. */
  readonly unixNowMs: () => number;
  /** Real milliseconds for the render cache. */
  readonly realNowMs: () => number;
  readonly lag: () => LagSnapshot;
}

type HistogramKey =
  | 'promptTokens' | 'generationTokens' | 'maxGenerationTokens' | 'paramsMaxTokens' | 'paramsN' | 'iterationTokens'
  | 'ttft' | 'itl' | 'tpot' | 'requestTpot' | 'e2e' | 'queue' | 'inference' | 'prefill' | 'decode' | 'step';

interface HistogramSpec {
  readonly key: HistogramKey;
  readonly vllm: string;
  readonly sglang: string | null;
  readonly help: string;
  readonly bounds: readonly number[];
}

export class ServerMetrics implements EngineMetrics {
  readonly #init: ServerMetricsInit;
  readonly #labels: string;
  readonly #histograms: ReadonlyMap<HistogramKey, Histogram>;
  readonly #histogramSpecs: readonly HistogramSpec[];
  readonly #staticText: string;
  #histogramText: string | null = null;
  #histogramRenderedAtMs = 0;
  #histogramDirty = true;

  // Gauges.
  #running = 0;
  #waiting = 0;
  #kvUsage = 0;
  #loraKey = '';
  readonly #loraSeries = new Map<string, { labels: string; valueSeconds: number }>();
  // Counters.
  #prefixQueries = 0;
  #prefixHits = 0;
  #preemptions = 0;
  #promptTokens = 0;
  #generationTokens = 0;
  readonly #success = new Map<string, number>();

  constructor(init: ServerMetricsInit) {
    this.#init = init;
    this.#labels = init.flavor === 'vllm'
      ? labelPairs({ model_name: init.modelName, engine: '0' })
      : labelPairs({ model_name: init.modelName });
    const tokenBuckets = buckets125(init.maxModelLen);
    const specs: HistogramSpec[] = [
      { key: 'promptTokens', vllm: 'vllm:request_prompt_tokens', sglang: null, help: 'Number of prefill tokens processed.', bounds: tokenBuckets },
      { key: 'generationTokens', vllm: 'vllm:request_generation_tokens', sglang: null, help: 'Number of generation tokens processed.', bounds: tokenBuckets },
      { key: 'maxGenerationTokens', vllm: 'vllm:request_max_num_generation_tokens', sglang: null, help: 'Histogram of maximum number of requested generation tokens.', bounds: tokenBuckets },
      { key: 'paramsMaxTokens', vllm: 'vllm:request_params_max_tokens', sglang: null, help: 'Histogram of the max_tokens request parameter.', bounds: tokenBuckets },
      { key: 'paramsN', vllm: 'vllm:request_params_n', sglang: null, help: 'Histogram of the n request parameter.', bounds: PARAMS_N_BUCKETS },
      { key: 'iterationTokens', vllm: 'vllm:iteration_tokens_total', sglang: null, help: 'Histogram of number of tokens per engine_step.', bounds: ITERATION_TOKEN_BUCKETS },
      { key: 'ttft', vllm: 'vllm:time_to_first_token_seconds', sglang: 'sglang:time_to_first_token_seconds', help: 'Histogram of time to first token in seconds.', bounds: TTFT_BUCKETS },
      { key: 'itl', vllm: 'vllm:inter_token_latency_seconds', sglang: 'sglang:inter_token_latency_seconds', help: 'Histogram of inter-token latency in seconds.', bounds: ITL_BUCKETS },
      { key: 'tpot', vllm: 'vllm:time_per_output_token_seconds', sglang: null, help: 'Histogram of time per output token in seconds (deprecated twin of inter_token_latency).', bounds: ITL_BUCKETS },
      { key: 'requestTpot', vllm: 'vllm:request_time_per_output_token_seconds', sglang: null, help: 'Histogram of time_per_output_token_seconds per request.', bounds: ITL_BUCKETS },
      { key: 'e2e', vllm: 'vllm:e2e_request_latency_seconds', sglang: 'sglang:e2e_request_latency_seconds', help: 'Histogram of e2e request latency in seconds.', bounds: REQUEST_TIME_BUCKETS },
      { key: 'queue', vllm: 'vllm:request_queue_time_seconds', sglang: null, help: 'Histogram of time spent in WAITING phase for request.', bounds: REQUEST_TIME_BUCKETS },
      { key: 'inference', vllm: 'vllm:request_inference_time_seconds', sglang: null, help: 'Histogram of time spent in RUNNING phase for request.', bounds: REQUEST_TIME_BUCKETS },
      { key: 'prefill', vllm: 'vllm:request_prefill_time_seconds', sglang: null, help: 'Histogram of time spent in PREFILL phase for request.', bounds: REQUEST_TIME_BUCKETS },
      { key: 'decode', vllm: 'vllm:request_decode_time_seconds', sglang: null, help: 'Histogram of time spent in DECODE phase for request.', bounds: REQUEST_TIME_BUCKETS },
      { key: 'step', vllm: 'sim_step_duration_seconds', sglang: 'sim_step_duration_seconds', help: 'Simulated duration of one engine step in seconds.', bounds: STEP_BUCKETS },
    ];
    this.#histogramSpecs = specs;
    this.#histograms = new Map(specs.map((s) => [s.key, new Histogram(s.bounds)]));
    this.#staticText = this.#renderStatic();
    this.#loraKey = '|';
    this.#touchLoraSeries('', ''); // present from start-up, as pickers expect
  }

  // ---- EngineMetrics ----

  onAdmitted(_seq: Sequence, queriedTokens: number, hitTokens: number): void {
    this.#prefixQueries += queriedTokens;
    this.#prefixHits += hitTokens;
  }

  onFirstToken(seq: Sequence, atMs: number): void {
    this.#promptTokens += seq.promptLen;
    this.#generationTokens++;
    this.#observe('ttft', (atMs - seq.arrivalMs) / 1000);
  }

  onNextToken(_seq: Sequence, gapMs: number): void {
    this.#generationTokens++;
    this.#observe('itl', gapMs / 1000);
    this.#observe('tpot', gapMs / 1000);
  }

  onPreemption(): void {
    this.#preemptions++;
  }

  onStep(durationMs: number, tokens: number): void {
    this.#observe('iterationTokens', tokens);
    this.#observe('step', durationMs / 1000);
  }

  onFinished(seq: Sequence, reason: FinishReason, atMs: number): void {
    this.#success.set(reason, (this.#success.get(reason) ?? 0) + 1);
    this.#observe('e2e', (atMs - seq.arrivalMs) / 1000);
    this.#observe('promptTokens', seq.promptLen);
    this.#observe('generationTokens', seq.generated);
    this.#observe('maxGenerationTokens', seq.maxTokensParam ?? seq.targetTokens);
    if (seq.maxTokensParam !== undefined) this.#observe('paramsMaxTokens', seq.maxTokensParam);
    this.#observe('paramsN', seq.nParam);
    if (seq.firstAdmittedMs !== null) {
      this.#observe('queue', (seq.firstAdmittedMs - seq.arrivalMs) / 1000);
      this.#observe('inference', (atMs - seq.firstAdmittedMs) / 1000);
      if (seq.firstTokenMs !== null) this.#observe('prefill', (seq.firstTokenMs - seq.firstAdmittedMs) / 1000);
    }
    if (seq.firstTokenMs !== null && seq.lastTokenMs !== null) {
      const decodeMs = seq.lastTokenMs - seq.firstTokenMs;
      this.#observe('decode', decodeMs / 1000);
      if (seq.deliveredTokens > 1) this.#observe('requestTpot', decodeMs / 1000 / (seq.deliveredTokens - 1));
    }
  }

  onSchedulerState(state: SchedulerState): void {
    this.#running = state.running;
    this.#waiting = state.waiting;
    this.#kvUsage = state.kvUsage;
    const running = state.runningLoras.join(',');
    const waiting = state.waitingLoras.join(',');
    const key = `${running}|${waiting}`;
    if (key !== this.#loraKey || this.#loraSeries.size === 0) {
      this.#loraKey = key;
      this.#touchLoraSeries(running, waiting);
    }
  }

  // ---- read side ----

  /** Counter values, for tests and benchmark reports. */
  counters(): { prefixQueries: number; prefixHits: number; preemptions: number; promptTokens: number; generationTokens: number; success: Record<string, number> } {
    return {
      prefixQueries: this.#prefixQueries,
      prefixHits: this.#prefixHits,
      preemptions: this.#preemptions,
      promptTokens: this.#promptTokens,
      generationTokens: this.#generationTokens,
      success: Object.fromEntries(this.#success),
    };
  }

  histogram(key: HistogramKey): Histogram {
    return this.#histograms.get(key) as Histogram;
  }

  /** The full `/metrics` body. */
  render(): string {
    const nowMs = this.#init.realNowMs();
    if (this.#histogramText === null || (this.#histogramDirty && nowMs - this.#histogramRenderedAtMs >= this.#init.metricsCacheMs)) {
      this.#histogramText = this.#renderHistograms();
      this.#histogramRenderedAtMs = nowMs;
      this.#histogramDirty = false;
    }
    return this.#staticText + this.#renderLive() + this.#histogramText;
  }

  #observe(key: HistogramKey, value: number): void {
    (this.#histograms.get(key) as Histogram).observe(value);
    this.#histogramDirty = true;
  }

  #touchLoraSeries(running: string, waiting: string): void {
    const key = `${running}|${waiting}`;
    const labels = `max_lora="${this.#init.maxLoras}",running_lora_adapters="${escapeLabelValue(running)}",waiting_lora_adapters="${escapeLabelValue(waiting)}"`;
    this.#loraSeries.delete(key); // re-insert so Map order is recency order
    this.#loraSeries.set(key, { labels, valueSeconds: this.#init.unixNowMs() / 1000 });
    if (this.#loraSeries.size > MAX_LORA_INFO_SERIES) {
      const oldest = this.#loraSeries.keys().next().value;
      if (oldest !== undefined) this.#loraSeries.delete(oldest);
    }
  }

  #renderStatic(): string {
    const i = this.#init;
    if (i.flavor === 'sglang') {
      if (!i.publishNumGpuBlocks) {
        return familyHeader('sglang:cache_config_info', 'gauge', 'Information of the KV cache configuration.') +
          `sglang:cache_config_info{${this.#labels},page_size="${i.blockSize}"} 1\n`;
      }
      return (
        familyHeader('sglang:cache_config_info', 'gauge', 'Information of the KV cache configuration.') +
        `sglang:cache_config_info{${this.#labels},page_size="${i.blockSize}",num_pages="${i.numGpuBlocks}"} 1\n` +
        familyHeader('sglang:max_total_num_tokens', 'gauge', 'Maximum total number of tokens in the KV cache.') +
        `sglang:max_total_num_tokens{${this.#labels}} ${i.numGpuBlocks * i.blockSize}\n`
      );
    }
    const cacheLabels = labelPairs({
      block_size: String(i.blockSize),
      cache_dtype: 'auto',
      enable_prefix_caching: i.enablePrefixCaching ? 'True' : 'False',
      gpu_memory_utilization: '0.9',
      num_cpu_blocks: '0',
      ...(i.publishNumGpuBlocks ? { num_gpu_blocks: String(i.numGpuBlocks) } : {}),
      engine: '0',
    });
    return familyHeader('vllm:cache_config_info', 'gauge', 'Information of the LLMEngine CacheConfig.') +
      `vllm:cache_config_info{${cacheLabels}} 1\n`;
  }

  #renderLive(): string {
    const i = this.#init;
    const l = this.#labels;
    const lag = i.lag();
    let out = '';
    if (i.flavor === 'sglang') {
      const hitRate = this.#prefixQueries === 0 ? 0 : this.#prefixHits / this.#prefixQueries;
      out +=
        familyHeader('sglang:num_running_reqs', 'gauge', 'The number of running requests.') + `sglang:num_running_reqs{${l}} ${this.#running}\n` +
        familyHeader('sglang:num_queue_reqs', 'gauge', 'The number of requests in the waiting queue.') + `sglang:num_queue_reqs{${l}} ${this.#waiting}\n` +
        familyHeader('sglang:token_usage', 'gauge', 'The token usage.') + `sglang:token_usage{${l}} ${formatValue(this.#kvUsage)}\n` +
        familyHeader('sglang:num_used_tokens', 'gauge', 'The number of used tokens.') + `sglang:num_used_tokens{${l}} ${Math.round(this.#kvUsage * i.numGpuBlocks * i.blockSize)}\n` +
        familyHeader('sglang:cache_hit_rate', 'gauge', 'The prefix cache hit rate.') + `sglang:cache_hit_rate{${l}} ${formatValue(hitRate)}\n` +
        familyHeader('sglang:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.') + `sglang:prompt_tokens_total{${l}} ${this.#promptTokens}\n` +
        familyHeader('sglang:generation_tokens_total', 'counter', 'Number of generation tokens processed.') + `sglang:generation_tokens_total{${l}} ${this.#generationTokens}\n` +
        familyHeader('sglang:cached_tokens_total', 'counter', 'Number of cached prompt tokens.') + `sglang:cached_tokens_total{${l}} ${this.#prefixHits}\n`;
    } else {
      out +=
        familyHeader('vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.') + `vllm:num_requests_running{${l}} ${this.#running}\n` +
        familyHeader('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.') + `vllm:num_requests_waiting{${l}} ${this.#waiting}\n` +
        familyHeader('vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.') + `vllm:kv_cache_usage_perc{${l}} ${formatValue(this.#kvUsage)}\n` +
        familyHeader('vllm:gpu_cache_usage_perc', 'gauge', 'GPU KV-cache usage (deprecated alias of vllm:kv_cache_usage_perc).') + `vllm:gpu_cache_usage_perc{${l}} ${formatValue(this.#kvUsage)}\n` +
        this.#renderLoraInfo() +
        familyHeader('vllm:prefix_cache_queries_total', 'counter', 'Prefix cache queries, in terms of number of queried tokens.') + `vllm:prefix_cache_queries_total{${l}} ${this.#prefixQueries}\n` +
        familyHeader('vllm:prefix_cache_hits_total', 'counter', 'Prefix cache hits, in terms of number of cached tokens.') + `vllm:prefix_cache_hits_total{${l}} ${this.#prefixHits}\n` +
        familyHeader('vllm:num_preemptions_total', 'counter', 'Cumulative number of preemption from the engine.') + `vllm:num_preemptions_total{${l}} ${this.#preemptions}\n` +
        familyHeader('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.') + `vllm:prompt_tokens_total{${l}} ${this.#promptTokens}\n` +
        familyHeader('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.') + `vllm:generation_tokens_total{${l}} ${this.#generationTokens}\n` +
        familyHeader('vllm:request_success_total', 'counter', 'Count of successfully processed requests.');
      for (const reason of ['stop', 'length', 'abort']) if (!this.#success.has(reason)) this.#success.set(reason, 0);
      for (const [reason, n] of this.#success) out += `vllm:request_success_total{${l},finished_reason="${reason}"} ${n}\n`;
    }
    out +=
      familyHeader('sim_event_loop_lag_seconds', 'gauge', 'Event-loop delay of the simulator process over the last window (quantile label: 0.99 or max).') +
      `sim_event_loop_lag_seconds{quantile="0.99"} ${formatValue(lag.p99Seconds)}\n` +
      `sim_event_loop_lag_seconds{quantile="max"} ${formatValue(lag.maxSeconds)}\n` +
      familyHeader('sim_timer_lateness_seconds', 'gauge', 'Largest lateness of an engine timer over the last window (simulated seconds).') +
      `sim_timer_lateness_seconds ${formatValue(lag.timerLatenessSeconds)}\n` +
      familyHeader('sim_server_info', 'gauge', 'Static information about this simulated server.') +
      `sim_server_info{${labelPairs({ server_id: i.serverId, port: String(i.port()), speed_factor: String(i.speedFactor()) })}} 1\n`;
    return out;
  }

  #renderLoraInfo(): string {
    // The current label set is refreshed to "now" on every scrape, so it always carries the largest value.
    const current = this.#loraSeries.get(this.#loraKey);
    if (current !== undefined) current.valueSeconds = this.#init.unixNowMs() / 1000;
    let out = familyHeader('vllm:lora_requests_info', 'gauge', 'Running stats on lora requests.');
    for (const s of this.#loraSeries.values()) out += `vllm:lora_requests_info{${s.labels}} ${formatValue(s.valueSeconds)}\n`;
    return out;
  }

  #renderHistograms(): string {
    let out = '';
    for (const spec of this.#histogramSpecs) {
      const name = this.#init.flavor === 'vllm' ? spec.vllm : spec.sglang;
      if (name === null) continue;
      const h = this.#histograms.get(spec.key) as Histogram;
      out += familyHeader(name, 'histogram', spec.help) + h.render(name, name.startsWith('sim_') ? '' : this.#labels);
    }
    return out;
  }
}
