// Options of one simulated server, their defaults (sim-spec §6.3 "small" profile) and the knob table that the
// CLI, `/admin/config` and the docs share. Durations are milliseconds of *simulated* time (`...Ms`).

import { formatDurationMs, parseDurationMs } from './duration.ts';
import type { GenerationMode } from './output-length.ts';
import type { TokenizerName } from './tokenizer.ts';

export type LatencyModelName = 'step' | 'llmd';
export type MetricsFlavor = 'vllm' | 'sglang';
export type LlmdLatencyCalculator = 'constant' | 'per-token';
export const FAILURE_TYPES = [
  'rate_limit', 'invalid_api_key', 'context_length', 'server_error', 'invalid_request', 'model_not_found',
] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** Everything that shapes one simulated server. Fields marked "runtime" may change while it runs. */
export interface SimServerOptions {
  /** Served model names (aliases of one base model); the first is displayed and seeds the prefix cache. */
  servedModelNames: string[];
  /** LoRA adapters registered at start-up: name → path. */
  loras: Record<string, string>;
  latencyModel: LatencyModelName;
  mode: GenerationMode;
  tokenizer: TokenizerName;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  blockSize: number;
  /** KV cache size in blocks (`num_gpu_blocks`). */
  kvCacheSize: number;
  maxModelLen: number;
  /** Waiting-queue bound (overflow → 429); 0 = unbounded. */
  maxWaitingQueueLength: number;
  maxLoras: number;
  /** Registered-adapter limit; loading more is refused with 400. */
  maxCpuLoras: number;
  /** LoRA load/unload status codes: vLLM's (400 duplicate / 404 unknown) or the llm-d sim's (always 200). */
  loraStatusCodes: 'vllm' | 'llmd';
  enablePrefixCaching: boolean;
  /** Also cache full blocks of generated text (vLLM does). */
  cacheOutputBlocks: boolean;
  /** Seed of the block-hash chains; "" = random per server process, as vLLM without PYTHONHASHSEED. */
  hashSeed: string;
  seed: number;
  /** ZeroMQ PUB address for KV events ("" = off); bound if it contains `*` or `::`, else connected (vLLM's rule). */
  kvEventsEndpoint: string;
  /** ZeroMQ ROUTER address serving replay of buffered KV event batches ("" = off). */
  kvEventsReplayEndpoint: string;
  /** Topic frame of every message; "" = llm-d's convention `kv@<host>:<port>@<model>`. */
  kvEventsTopic: string;
  /** Encode events as vLLM's map form (≥ #42892) rather than the positional form. */
  kvEventsMapFormat: boolean;
  /** Replay messages carry the topic frame (vLLM ≥ 0.26) or not (older vLLM, SGLang). */
  kvEventsReplayTopicFrame: boolean;
  /** Batches kept for replay (vLLM's `buffer_steps`). */
  kvEventsBufferSteps: number;
  /** runtime — percent of KV event batches lost on the wire (seq assigned, still replayable). */
  kvEventsDropRate: number;
  /** runtime — KV event batches are published this long after their engine step. */
  kvEventsDelayMs: number;
  /** runtime — step model: fixed cost of one forward pass. */
  stepOverheadMs: number;
  /** runtime — step model: cost of one decoding sequence in the batch. */
  decodeTimePerSeqMs: number;
  /** runtime — both models: cost of one uncached prompt token. */
  prefillTimePerTokenMs: number;
  /** runtime — step model: cost of reading 1000 context tokens of KV per decoding sequence. */
  kvReadTimePer1kTokensMs: number;
  /** runtime — step model: relative std-dev of step-time noise (factor clamped at ≥ 0.5). */
  stepJitter: number;
  /** runtime — multiplies every compute duration of this server (heterogeneous or degraded servers). */
  speedFactor: number;
  /** runtime — llmd model: `constant` uses `ttftMs`, `per-token` uses prefill overhead + per-token cost. */
  latencyCalculator: LlmdLatencyCalculator;
  ttftMs: number;
  ttftStdDevMs: number;
  interTokenLatencyMs: number;
  interTokenLatencyStdDevMs: number;
  prefillOverheadMs: number;
  prefillTimeStdDevMs: number;
  /** llmd model: latency multiplier reached when `maxNumSeqs` requests run (≥ 1). */
  timeFactorUnderLoad: number;
  metricsFlavor: MetricsFlavor;
  /** Publish the KV block count (`num_gpu_blocks`; sglang: `num_pages`, `max_total_num_tokens`); false = a server that does not. */
  metricsNumGpuBlocks: boolean;
  /** How long rendered histogram text may be reused by `/metrics`, in real ms. */
  metricsCacheMs: number;
  /** `/health/ready` answers 503 for this long after start. */
  startupDurationMs: number;
  enableRequestIdHeaders: boolean;
  // ---- faults (sim-spec §5), all runtime ----
  /** Percentage (0–100) of generation requests answered with an injected error. */
  failureInjectionRate: number;
  /** Failure types to draw from; empty = all. */
  failureTypes: FailureType[];
  /** Percentage of requests whose first token is delayed. */
  ttftSpikeRate: number;
  /** A spiked request's TTFT is multiplied by this… */
  ttftSpikeFactor: number;
  /** …and increased by this. */
  ttftSpikeExtraMs: number;
  /** The engine stalls every `stallEveryMs` for `stallDurationMs` (0 = never). */
  stallEveryMs: number;
  stallDurationMs: number;
  /** Percentage of streams whose connection is destroyed mid-stream (no `[DONE]`). */
  streamAbortRate: number;
  /** Percentage of streams that get an SSE error frame + `[DONE]` mid-stream. */
  midStreamErrorRate: number;
  /** `/health/ready` alternates 200/503 every half period (0 = off). */
  readyFlapPeriodMs: number;
  /** `/metrics` answers after this delay (simulated ms). */
  metricsDelayMs: number;
  /** Percentage of `/metrics` scrapes answered with 500. */
  metricsErrorRate: number;
  /** New requests get 503 while more than this many are waiting (-1 = off). */
  rejectWhenWaitingAbove: number;
}

export const DEFAULT_MODEL_NAME = 'meta-llama/Llama-3.1-8B-Instruct';

/** Defaults: the sim-spec §6.3 "small" profile; llmd-model values from llm-d's "8B on H100, balanced" profile. */
export function defaultServerOptions(): SimServerOptions {
  return {
    servedModelNames: [DEFAULT_MODEL_NAME],
    loras: {},
    latencyModel: 'step',
    mode: 'random',
    tokenizer: 'chars4',
    maxNumSeqs: 32,
    maxNumBatchedTokens: 2048,
    blockSize: 16,
    kvCacheSize: 2048,
    maxModelLen: 16384,
    maxWaitingQueueLength: 1000,
    maxLoras: 1,
    maxCpuLoras: 16,
    loraStatusCodes: 'vllm',
    enablePrefixCaching: true,
    cacheOutputBlocks: true,
    hashSeed: '',
    seed: 42,
    kvEventsEndpoint: '',
    kvEventsReplayEndpoint: '',
    kvEventsTopic: '',
    kvEventsMapFormat: false,
    kvEventsReplayTopicFrame: true,
    kvEventsBufferSteps: 10_000,
    kvEventsDropRate: 0,
    kvEventsDelayMs: 0,
    stepOverheadMs: 12,
    decodeTimePerSeqMs: 0.25,
    prefillTimePerTokenMs: 0.1,
    kvReadTimePer1kTokensMs: 0.05,
    stepJitter: 0.05,
    speedFactor: 1,
    latencyCalculator: 'per-token',
    ttftMs: 100,
    ttftStdDevMs: 0,
    interTokenLatencyMs: 12,
    interTokenLatencyStdDevMs: 2,
    prefillOverheadMs: 30,
    prefillTimeStdDevMs: 5,
    timeFactorUnderLoad: 2,
    metricsFlavor: 'vllm',
    metricsNumGpuBlocks: true,
    metricsCacheMs: 20,
    startupDurationMs: 0,
    enableRequestIdHeaders: false,
    failureInjectionRate: 0,
    failureTypes: [],
    ttftSpikeRate: 0,
    ttftSpikeFactor: 1,
    ttftSpikeExtraMs: 0,
    stallEveryMs: 0,
    stallDurationMs: 0,
    streamAbortRate: 0,
    midStreamErrorRate: 0,
    readyFlapPeriodMs: 0,
    metricsDelayMs: 0,
    metricsErrorRate: 0,
    rejectWhenWaitingAbove: -1,
  };
}

type KnobKind =
  | { type: 'duration' }
  | { type: 'number'; min: number; max?: number }
  | { type: 'int'; min: number; max?: number }
  | { type: 'boolean' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'string' }
  | { type: 'failure-types' };

/** One option, as spelled on the command line and in `/admin/config` (kebab-case, sim-spec names). */
export interface Knob {
  readonly key: keyof SimServerOptions;
  readonly name: string;
  readonly kind: KnobKind;
  /** May be changed on a running server. */
  readonly runtime: boolean;
  readonly description: string;
}

const knob = (key: keyof SimServerOptions, name: string, kind: KnobKind, runtime: boolean, description: string): Knob =>
  ({ key, name, kind, runtime, description });
const pct = { type: 'number', min: 0, max: 100 } as const;
const duration = { type: 'duration' } as const;

/** Every scalar option. `servedModelNames` and `loras` are handled by the CLI and the LoRA endpoints instead. */
export const KNOBS: readonly Knob[] = [
  knob('latencyModel', 'latency-model', { type: 'enum', values: ['step', 'llmd'] }, false, 'latency model: iteration-level engine or llm-d per-request sleeps'),
  knob('mode', 'mode', { type: 'enum', values: ['random', 'echo', 'fixed'] }, false, 'output text: random words, echo of the input, or always max_tokens'),
  knob('tokenizer', 'tokenizer', { type: 'enum', values: ['chars4', 'chars3.2', 'words'] }, false, 'weight-free tokenizer'),
  knob('maxNumSeqs', 'max-num-seqs', { type: 'int', min: 1 }, false, 'running requests per server'),
  knob('maxNumBatchedTokens', 'max-num-batched-tokens', { type: 'int', min: 1 }, false, 'token budget of one engine step'),
  knob('blockSize', 'block-size', { type: 'enum', values: ['8', '16', '32', '64', '128'] }, false, 'tokens per KV block'),
  knob('kvCacheSize', 'kv-cache-size', { type: 'int', min: 1 }, false, 'KV cache size in blocks'),
  knob('maxModelLen', 'max-model-len', { type: 'int', min: 1 }, false, 'context window in tokens'),
  knob('maxWaitingQueueLength', 'max-waiting-queue-length', { type: 'int', min: 0 }, false, 'waiting-queue bound, 0 = unbounded'),
  knob('maxLoras', 'max-loras', { type: 'int', min: 1 }, false, 'distinct LoRA adapters among running requests'),
  knob('maxCpuLoras', 'max-cpu-loras', { type: 'int', min: 1 }, false, 'registered LoRA adapters'),
  knob('loraStatusCodes', 'lora-status-codes', { type: 'enum', values: ['vllm', 'llmd'] }, false, 'LoRA load/unload status codes'),
  knob('enablePrefixCaching', 'enable-prefix-caching', { type: 'boolean' }, false, 'automatic prefix caching'),
  knob('cacheOutputBlocks', 'cache-output-blocks', { type: 'boolean' }, false, 'cache full blocks of generated text too'),
  knob('hashSeed', 'hash-seed', { type: 'string' }, false, 'seed of the block-hash chains ("" = random per server, as vLLM)'),
  knob('kvEventsEndpoint', 'kv-events-endpoint', { type: 'string' }, false, 'ZeroMQ PUB address of KV events, e.g. tcp://*:5557 ("" = off)'),
  knob('kvEventsReplayEndpoint', 'kv-events-replay-endpoint', { type: 'string' }, false, 'ZeroMQ ROUTER address for KV event replay ("" = off)'),
  knob('kvEventsTopic', 'kv-events-topic', { type: 'string' }, false, 'topic frame ("" = kv@<host>:<port>@<model>)'),
  knob('kvEventsMapFormat', 'use-vllm-map-event-format', { type: 'boolean' }, false, "events in vLLM's map form instead of positional arrays"),
  knob('kvEventsReplayTopicFrame', 'kv-events-replay-topic-frame', { type: 'boolean' }, false, 'replay replies carry the topic frame (vLLM >= 0.26)'),
  knob('kvEventsBufferSteps', 'kv-events-buffer-steps', { type: 'int', min: 1 }, false, 'KV event batches kept for replay'),
  knob('kvEventsDropRate', 'kv-events-drop-rate', pct, true, 'percent of KV event batches lost on the wire (still replayable)'),
  knob('kvEventsDelayMs', 'kv-events-delay', duration, true, 'KV event batches are published this much later'),
  knob('seed', 'seed', { type: 'int', min: 0 }, false, 'random seed (server i uses seed + i)'),
  knob('stepOverheadMs', 'step-overhead', duration, true, 'step model: fixed cost per engine step'),
  knob('decodeTimePerSeqMs', 'decode-time-per-seq', duration, true, 'step model: cost per decoding sequence'),
  knob('prefillTimePerTokenMs', 'prefill-time-per-token', duration, true, 'cost per uncached prompt token'),
  knob('kvReadTimePer1kTokensMs', 'kv-read-time-per-1k-tokens', duration, true, 'step model: cost per 1k context tokens decoded'),
  knob('stepJitter', 'step-jitter', { type: 'number', min: 0, max: 1 }, true, 'step model: relative std-dev of step time'),
  knob('speedFactor', 'speed-factor', { type: 'number', min: 0.01 }, true, 'slowdown multiplier of this server'),
  knob('latencyCalculator', 'latency-calculator', { type: 'enum', values: ['constant', 'per-token'] }, true, 'llmd model: TTFT calculator'),
  knob('ttftMs', 'time-to-first-token', duration, true, 'llmd model, constant calculator: TTFT'),
  knob('ttftStdDevMs', 'time-to-first-token-std-dev', duration, true, 'llmd model: TTFT std-dev'),
  knob('interTokenLatencyMs', 'inter-token-latency', duration, true, 'llmd model: inter-token latency'),
  knob('interTokenLatencyStdDevMs', 'inter-token-latency-std-dev', duration, true, 'llmd model: ITL std-dev'),
  knob('prefillOverheadMs', 'prefill-overhead', duration, true, 'llmd model, per-token calculator: fixed TTFT part'),
  knob('prefillTimeStdDevMs', 'prefill-time-std-dev', duration, true, 'llmd model: prefill std-dev'),
  knob('timeFactorUnderLoad', 'time-factor-under-load', { type: 'number', min: 1 }, true, 'llmd model: latency factor at max-num-seqs'),
  knob('metricsFlavor', 'metrics-names', { type: 'enum', values: ['vllm', 'sglang'] }, false, 'metric names to expose'),
  knob('metricsNumGpuBlocks', 'metrics-num-gpu-blocks', { type: 'boolean' }, false, 'publish the KV block count in the cache-config metric (false = a server that does not)'),
  knob('metricsCacheMs', 'metrics-cache', duration, false, 'reuse rendered histogram text this long (real time)'),
  knob('startupDurationMs', 'startup-duration', duration, false, '/health/ready is 503 this long after start'),
  knob('enableRequestIdHeaders', 'enable-request-id-headers', { type: 'boolean' }, false, 'echo X-Request-Id'),
  knob('failureInjectionRate', 'failure-injection-rate', pct, true, 'percent of requests failed with an injected error'),
  knob('failureTypes', 'failure-types', { type: 'failure-types' }, true, `comma list of ${FAILURE_TYPES.join(', ')} (empty = all)`),
  knob('ttftSpikeRate', 'ttft-spike-rate', pct, true, 'percent of requests with a delayed first token'),
  knob('ttftSpikeFactor', 'ttft-spike-factor', { type: 'number', min: 1 }, true, 'TTFT multiplier of a spiked request'),
  knob('ttftSpikeExtraMs', 'ttft-spike-extra', duration, true, 'TTFT added to a spiked request'),
  knob('stallEveryMs', 'stall-every', duration, true, 'engine stalls this often (0 = never)'),
  knob('stallDurationMs', 'stall-duration', duration, true, 'length of each stall'),
  knob('streamAbortRate', 'stream-abort-rate', pct, true, 'percent of streams cut without [DONE]'),
  knob('midStreamErrorRate', 'mid-stream-error-rate', pct, true, 'percent of streams ending in an SSE error frame'),
  knob('readyFlapPeriodMs', 'ready-flap-period', duration, true, '/health/ready alternates 200/503 (0 = off)'),
  knob('metricsDelayMs', 'metrics-delay', duration, true, '/metrics answers after this delay'),
  knob('metricsErrorRate', 'metrics-error-rate', pct, true, 'percent of /metrics scrapes answered 500'),
  knob('rejectWhenWaitingAbove', 'reject-when-waiting-above', { type: 'int', min: -1 }, true, '503 new requests while more are waiting (-1 = off)'),
];

const KNOB_BY_NAME = new Map(KNOBS.map((k) => [k.name, k]));

export function findKnob(name: string): Knob | undefined {
  return KNOB_BY_NAME.get(name);
}

/** Converts a CLI string or a JSON value into the knob's type. Throws a RangeError naming the option. */
export function parseKnobValue(k: Knob, raw: unknown): SimServerOptions[keyof SimServerOptions] {
  const what = k.name;
  switch (k.kind.type) {
    case 'duration':
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new RangeError(`${what}: expected a duration`);
      return parseDurationMs(raw, what);
    case 'number':
    case 'int': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw new RangeError(`${what}: expected a number, got ${String(raw)}`);
      if (k.kind.type === 'int' && !Number.isInteger(n)) throw new RangeError(`${what}: expected an integer, got ${n}`);
      if (n < k.kind.min || (k.kind.max !== undefined && n > k.kind.max)) {
        throw new RangeError(`${what}: ${n} is outside [${k.kind.min}, ${k.kind.max ?? '∞'}]`);
      }
      return n;
    }
    case 'boolean':
      if (raw === true || raw === 'true' || raw === '1') return true;
      if (raw === false || raw === 'false' || raw === '0') return false;
      throw new RangeError(`${what}: expected true or false, got ${String(raw)}`);
    case 'enum': {
      const s = String(raw);
      if (!k.kind.values.includes(s)) throw new RangeError(`${what}: expected one of ${k.kind.values.join('|')}, got ${s}`);
      return k.key === 'blockSize' ? Number(s) : s;
    }
    case 'string':
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new RangeError(`${what}: expected a string`);
      return String(raw);
    case 'failure-types': {
      const list = Array.isArray(raw) ? raw.map(String) : String(raw).split(',').map((s) => s.trim()).filter((s) => s !== '');
      for (const t of list) {
        if (!(FAILURE_TYPES as readonly string[]).includes(t)) throw new RangeError(`${what}: unknown failure type ${t}`);
      }
      return list as FailureType[];
    }
  }
}

/** Renders a knob's current value the way `/admin/config` reports it (durations as strings like "12ms"). */
export function formatKnobValue(k: Knob, options: SimServerOptions): unknown {
  const value = options[k.key];
  return k.kind.type === 'duration' && typeof value === 'number' ? formatDurationMs(value) : value;
}

/** Checks cross-field constraints. Throws a RangeError describing the first violation. */
export function validateServerOptions(o: SimServerOptions): void {
  if (o.servedModelNames.length === 0) throw new RangeError('at least one served model name is required');
  const blocksPerMaxRequest = Math.ceil(o.maxModelLen / o.blockSize);
  if (blocksPerMaxRequest > o.kvCacheSize) {
    throw new RangeError(
      `kv-cache-size ${o.kvCacheSize} blocks cannot hold one max-model-len request (${blocksPerMaxRequest} blocks)`,
    );
  }
  if (o.ttftStdDevMs > 0.3 * o.ttftMs || o.interTokenLatencyStdDevMs > 0.3 * o.interTokenLatencyMs) {
    throw new RangeError('llmd model: std-devs must be at most 30 % of their means');
  }
  if (Object.keys(o.loras).length > o.maxCpuLoras) throw new RangeError('more start-up LoRA adapters than max-cpu-loras');
}

/**
 * Returns defaults overlaid with `overrides`, validated. The result is a fresh object owned by the caller.
 */
export function resolveServerOptions(overrides: Partial<SimServerOptions> = {}): SimServerOptions {
  const options: SimServerOptions = { ...defaultServerOptions(), ...stripUndefined(overrides) };
  options.servedModelNames = [...options.servedModelNames];
  options.loras = { ...options.loras };
  options.failureTypes = [...options.failureTypes];
  validateServerOptions(options);
  return options;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
