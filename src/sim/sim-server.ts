// One simulated model server without its HTTP surface: options, engine, KV cache, LoRA registry, metrics, faults.
// The HTTP layer (`http/`) parses requests into `GenerationRequest`s and calls `admit`; tests may do the same.
// Why one file: one server's state (engine, KV pool, LoRA registry, metrics, faults) changes together under the
// admin knobs; the engines, the block pool, the KV events and the HTTP layer are their own files.

import { randomBytes } from 'node:crypto';
import { BlockPool } from './block-pool.ts';
import { blockHashes, rootHash } from './block-hash.ts';
import type { SimClock } from './clock.ts';
import {
  FAILURE_TYPES, KNOBS, findKnob, formatKnobValue, parseKnobValue, resolveServerOptions, validateServerOptions,
} from './config.ts';
import type { FailureType, SimServerOptions } from './config.ts';
import type { Engine, SchedulerState } from './engine.ts';
import { SimError } from './errors.ts';
import { KvEventHub } from './kv-events.ts';
import { LlmdEngine } from './llmd-engine.ts';
import { ServerMetrics } from './metrics/server-metrics.ts';
import type { LagSnapshot } from './metrics/server-metrics.ts';
import { sampleOutputLength } from './output-length.ts';
import { EchoOutputText, RandomOutputText } from './output-text.ts';
import type { OutputText } from './output-text.ts';
import { SeededRandom } from './rng.ts';
import type { RandomSource } from './rng.ts';
import { Sequence } from './sequence.ts';
import type { SequenceObserver, TtftSpike } from './sequence.ts';
import { StepEngine } from './step-engine.ts';
import { createTokenizer } from './tokenizer.ts';
import type { Tokenizer } from './tokenizer.ts';

/** One prompt of a generation request, already rendered (chat) or taken from the body (completions). */
export interface PromptInput {
  /** Prompt text, or null when the client sent token ids. */
  readonly text: string | null;
  /** Client-supplied token ids (`prompt: [ids]`), used as given. */
  readonly tokenIds: readonly number[] | null;
  /** What echo mode returns (the prompt, or the last user message for chat). */
  readonly echoText: string;
}

/** A validated generation request. */
export interface GenerationRequest {
  readonly model: string;
  readonly prompts: readonly PromptInput[];
  readonly n: number;
  readonly maxTokens: number | undefined;
  readonly ignoreEos: boolean;
  readonly cacheSalt: string | undefined;
}

/** One admitted choice. Choice `index` = promptIndex × n + k. */
export interface AdmittedChoice {
  readonly index: number;
  readonly promptIndex: number;
  readonly sequence: Sequence;
}

export interface Admission {
  /** The model name responses display (the LoRA name for adapter requests). */
  readonly displayedModel: string;
  readonly choices: readonly AdmittedChoice[];
  /** Prompt tokens per prompt. */
  readonly promptTokens: readonly number[];
}

/** A mid-stream fault drawn for one stream: act after `afterTokens` tokens of choice 0. */
export interface StreamFault {
  readonly kind: 'abort' | 'error';
  readonly afterTokens: number;
}

export interface SimServerInit {
  /** Name reported in `x-inference-pod` and `sim_server_info`. */
  readonly id: string;
  readonly options?: Partial<SimServerOptions>;
  readonly clock: SimClock;
  /** Defaults to a `SeededRandom` seeded with `options.seed`. */
  readonly rng?: RandomSource;
  /** Process-wide lag figures; zeros when absent. */
  readonly lag?: () => LagSnapshot;
  /** Real-time milliseconds for the metrics render cache; defaults to `performance.now`. */
  readonly realNowMs?: () => number;
}

/** One cached block in `/kv_state` (hashes as the engine's ids; the wire form turns them into u64). */
export interface KvStateBlock {
  readonly hash: number;
  readonly parent: number | null;
  readonly token_ids: readonly number[];
  readonly lora_name: string | null;
  readonly extra_keys: readonly string[] | null;
  readonly medium: 'GPU';
  readonly copies: number;
}

export interface KvStateDump {
  /** Seq of the last KV event batch whose effect the dump includes (−1: none yet). */
  readonly seq: number;
  readonly block_size: number;
  readonly blocks: readonly KvStateBlock[];
  /** Cached blocks without metadata (the llmd latency model caches without events): not listed. */
  readonly incomplete_blocks: number;
}

const ZERO_LAG: LagSnapshot = { p99Seconds: 0, maxSeconds: 0, timerLatenessSeconds: 0 };

export class SimServer {
  readonly id: string;
  readonly clock: SimClock;
  /** Live options; runtime knobs change through `updateConfig`. */
  readonly options: SimServerOptions;
  readonly pool: BlockPool;
  readonly kvEvents = new KvEventHub();
  readonly metrics: ServerMetrics;
  readonly engine: Engine;
  readonly tokenizer: Tokenizer;
  /** Set by the HTTP layer once listening; 0 before. */
  port = 0;
  readonly #rng: RandomSource;
  readonly #faultRng: RandomSource;
  readonly #loras = new Map<string, string>();
  readonly #rootHashes = new Map<string, number>();
  /** The hash seed in use: `hash-seed`, or random per server (re-drawn on `restart`) when it is "". */
  #hashSeed: string;
  readonly #startedMs: number;
  #sequenceCounter = 0;
  #closed = false;

  constructor(init: SimServerInit) {
    this.id = init.id;
    this.clock = init.clock;
    this.options = resolveServerOptions(init.options);
    const o = this.options;
    this.#rng = init.rng ?? new SeededRandom(o.seed);
    this.#faultRng = new SeededRandom(o.seed ^ 0x5f3759df);
    this.#hashSeed = o.hashSeed !== '' ? o.hashSeed : randomBytes(8).toString('hex');
    for (const [name, path] of Object.entries(o.loras)) this.#loras.set(name, path);
    this.tokenizer = createTokenizer(o.tokenizer);
    this.pool = new BlockPool(o.kvCacheSize, o.blockSize);
    this.#startedMs = init.clock.nowMs();
    const lag = init.lag ?? (() => ZERO_LAG);
    this.metrics = new ServerMetrics({
      flavor: o.metricsFlavor,
      modelName: o.servedModelNames[0] as string,
      serverId: init.id,
      port: () => this.port,
      speedFactor: () => this.options.speedFactor,
      maxModelLen: o.maxModelLen,
      maxLoras: o.maxLoras,
      blockSize: o.blockSize,
      numGpuBlocks: o.kvCacheSize,
      publishNumGpuBlocks: o.metricsNumGpuBlocks,
      enablePrefixCaching: o.enablePrefixCaching,
      metricsCacheMs: o.metricsCacheMs,
      unixNowMs: () => init.clock.unixNowMs(),
      realNowMs: init.realNowMs ?? (() => performance.now()),
      lag,
    });
    const deps = { clock: init.clock, rng: this.#rng, pool: this.pool, options: o, metrics: this.metrics, kvEvents: this.kvEvents };
    this.engine = o.latencyModel === 'llmd' ? new LlmdEngine(deps) : new StepEngine(deps);
  }

  get baseModel(): string {
    return this.options.servedModelNames[0] as string;
  }

  get closed(): boolean {
    return this.#closed;
  }

  state(): SchedulerState {
    return this.engine.state();
  }

  /** True if `model` is a served model name or a registered LoRA adapter. */
  hasModel(model: string): boolean {
    return this.options.servedModelNames.includes(model) || this.#loras.has(model);
  }

  /** Registered LoRA adapters, name → path, in registration order. */
  loras(): ReadonlyMap<string, string> {
    return this.#loras;
  }

  /** `/health/ready`: false during `startup-duration` and during the "down" half of a ready-flap period. */
  isReady(): boolean {
    const elapsed = this.clock.nowMs() - this.#startedMs;
    if (elapsed < this.options.startupDurationMs) return false;
    const period = this.options.readyFlapPeriodMs;
    if (period > 0) return Math.floor(elapsed / (period / 2)) % 2 === 0;
    return true;
  }

  /**
   * Validates, tokenizes and queues a generation request; one sequence per prompt × n. Throws `SimError`
   * (404 unknown model, 429 queue full, 503 shedding, 400 context too long). `observerFor(choiceIndex)` is
   * called once per choice before anything is queued.
   */
  admit(req: GenerationRequest, observerFor: (choiceIndex: number) => SequenceObserver): Admission {
    if (this.#closed) throw new SimError(503, 'The server is shutting down.');
    const o = this.options;
    const lora = this.#resolveModel(req.model);
    const state = this.engine.state();
    const newSequences = req.prompts.length * req.n;
    if (o.maxWaitingQueueLength > 0 && state.waiting + newSequences > o.maxWaitingQueueLength) {
      throw new SimError(429, 'Failed to enqueue request, waiting requests queue is full');
    }
    if (o.rejectWhenWaitingAbove >= 0 && state.waiting > o.rejectWhenWaitingAbove) {
      throw new SimError(503, 'The server is overloaded or not ready yet.');
    }
    const namespace = lora ?? this.baseModel;
    const root = this.#root(namespace, req.cacheSalt ?? '');
    const tokenized = req.prompts.map((p) => p.tokenIds ?? this.tokenizer.encode(p.text ?? ''));
    for (const ids of tokenized) {
      const completion = req.maxTokens ?? 1;
      if (ids.length + completion > o.maxModelLen) {
        throw new SimError(
          400,
          `This model's maximum context length is ${o.maxModelLen} tokens. However, you requested ` +
            `${ids.length + completion} tokens (${ids.length} in the messages, ${completion} in the completion). ` +
            'Please reduce the length of the messages or completion.',
          'messages',
        );
      }
    }
    const choices: AdmittedChoice[] = [];
    const arrivalMs = this.clock.nowMs();
    for (let p = 0; p < tokenized.length; p++) {
      const ids = tokenized[p] as ArrayLike<number>;
      const hashes = blockHashes(root, ids, o.blockSize);
      for (let k = 0; k < req.n; k++) {
        const index = p * req.n + k;
        const prompt = req.prompts[p] as PromptInput;
        const { output, targetTokens, finishReason } = this.#planOutput(req, prompt, ids.length);
        const sequence = new Sequence({
          id: `${this.id}-${++this.#sequenceCounter}`,
          arrivalMs,
          promptTokenIds: ids,
          promptBlockHashes: k === 0 ? hashes : [...hashes],
          rootHash: root,
          lora,
          cacheSalt: req.cacheSalt ?? null,
          targetTokens,
          finishReasonAtTarget: finishReason,
          output,
          maxTokensParam: req.maxTokens,
          nParam: req.n,
          ttftSpike: this.#drawTtftSpike(),
          observer: observerFor(index),
        });
        choices.push({ index, promptIndex: p, sequence });
      }
    }
    for (const c of choices) this.engine.submit(c.sequence);
    return { displayedModel: lora ?? this.baseModel, choices, promptTokens: tokenized.map((t) => t.length) };
  }

  /** Probabilistic failure injection (sim-spec §5.2); null when no failure is drawn. */
  drawInjectedFailure(model: string): SimError | null {
    const o = this.options;
    if (o.failureInjectionRate <= 0 || this.#faultRng.next() * 100 >= o.failureInjectionRate) return null;
    const types: readonly FailureType[] = o.failureTypes.length > 0 ? o.failureTypes : FAILURE_TYPES;
    const type = types[this.#faultRng.int(types.length)] as FailureType;
    switch (type) {
      case 'rate_limit':
        return new SimError(429, `Rate limit reached for ${model} in organization org-sim on requests per min (RPM): Limit 3, Used 3, Requested 1.`);
      case 'invalid_api_key':
        return new SimError(401, 'Incorrect API key provided.');
      case 'context_length':
        return new SimError(400, "This model's maximum context length is 4096 tokens. However, your messages resulted in 4500 tokens.", 'messages');
      case 'server_error':
        return new SimError(503, 'The server is overloaded or not ready yet.');
      case 'invalid_request':
        return new SimError(400, "Invalid request: missing required parameter 'model'.", 'model');
      case 'model_not_found':
        return new SimError(404, `The model '${model}-nonexistent' does not exist`, 'model');
    }
  }

  /** Mid-stream fault for a stream whose first choice generates `targetTokens` tokens; null when none is drawn. */
  drawStreamFault(targetTokens: number): StreamFault | null {
    const o = this.options;
    const afterTokens = () => this.#faultRng.int(Math.max(1, targetTokens));
    if (o.streamAbortRate > 0 && this.#faultRng.next() * 100 < o.streamAbortRate) return { kind: 'abort', afterTokens: afterTokens() };
    if (o.midStreamErrorRate > 0 && this.#faultRng.next() * 100 < o.midStreamErrorRate) return { kind: 'error', afterTokens: afterTokens() };
    return null;
  }

  /** True when this `/metrics` scrape should fail (`metrics-error-rate`). */
  drawMetricsFailure(): boolean {
    const rate = this.options.metricsErrorRate;
    return rate > 0 && this.#faultRng.next() * 100 < rate;
  }

  /** Stops the engine for `durationMs` of simulated time (a one-off stall fault). */
  stall(durationMs: number): void {
    this.engine.stallFor(durationMs);
  }

  /**
   * Applies runtime knobs atomically: every entry is parsed and the result validated before anything changes.
   * Keys are the option names of `KNOBS` (kebab-case) or their camelCase keys. Throws `SimError` 400.
   */
  updateConfig(patch: Readonly<Record<string, unknown>>): void {
    const next: SimServerOptions = { ...this.options };
    for (const [key, raw] of Object.entries(patch)) {
      const knob = findKnob(key) ?? KNOBS.find((k) => k.key === key);
      if (knob === undefined) throw new SimError(400, `unknown option ${key}`, key);
      if (!knob.runtime) throw new SimError(400, `option ${knob.name} cannot be changed at run time`, key);
      try {
        Object.assign(next, { [knob.key]: parseKnobValue(knob, raw) });
      } catch (err) {
        throw new SimError(400, (err as Error).message, key);
      }
    }
    try {
      validateServerOptions(next);
    } catch (err) {
      throw new SimError(400, (err as Error).message);
    }
    Object.assign(this.options, next);
  }

  /** Current options as `/admin/config` shows them (kebab-case names, durations as strings). */
  configView(): Record<string, unknown> {
    const view: Record<string, unknown> = {
      'server-id': this.id,
      'served-model-name': [...this.options.servedModelNames],
      loras: Object.fromEntries(this.#loras),
    };
    for (const k of KNOBS) view[k.name] = formatKnobValue(k, this.options);
    return view;
  }

  /** `/v1/load_lora_adapter`. Throws `SimError` 400 (duplicate, limit) under vLLM status codes. */
  loadLora(name: string, path: string): void {
    const vllmCodes = this.options.loraStatusCodes === 'vllm';
    if (this.#loras.has(name)) {
      if (vllmCodes) throw new SimError(400, `The lora adapter '${name}' has already been loaded.`, 'lora_name');
      this.#loras.set(name, path);
      return;
    }
    if (this.#loras.size >= this.options.maxCpuLoras) {
      throw new SimError(400, `Cannot load more than max-cpu-loras (${this.options.maxCpuLoras}) adapters.`, 'lora_name');
    }
    this.#loras.set(name, path);
  }

  /** `/v1/unload_lora_adapter`. Throws `SimError` 404 for an unknown adapter under vLLM status codes. */
  unloadLora(name: string): void {
    if (!this.#loras.delete(name) && this.options.loraStatusCodes === 'vllm') {
      throw new SimError(404, `The lora adapter '${name}' cannot be found.`, 'lora_name');
    }
  }

  /**
   * vLLM's reset_prefix_cache: drops every cached block and emits AllBlocksCleared. Like vLLM, it refuses (returns
   * false, changes nothing) while requests hold blocks: their blocks would stay cached behind the event's back.
   * With `resetRunningRequests` (vLLM's `reset_running_requests=True`) it first preempts every running request
   * (`Engine.preemptAll`: they recompute from scratch once re-admitted), so it always succeeds. The events are
   * vLLM's: the preemptions publish nothing, the cleared blocks are covered by the one AllBlocksCleared, and the
   * recomputed blocks are stored (BlockStored) anew.
   */
  resetPrefixCache(opts: { readonly resetRunningRequests?: boolean } = {}): boolean {
    if (opts.resetRunningRequests === true) this.engine.preemptAll();
    if (this.pool.usage > 0) return false;
    this.pool.clearIdle();
    this.kvEvents.push({ type: 'AllBlocksCleared' });
    this.kvEvents.flush(this.clock.unixNowMs());
    return true;
  }

  /**
   * Simulates an engine process restart at quiescence: the cache is emptied without any event, a new random hash
   * seed is drawn (unless `hash-seed` is set) and KV event seqs start again at 0. Refused (false) while requests
   * are in flight. `onRestart` listeners (the ZeroMQ publisher drops its replay buffer) run before it returns.
   */
  restart(): boolean {
    const st = this.engine.state();
    if (st.running + st.waiting > 0 || this.pool.usage > 0) return false;
    this.pool.clearAll();
    this.#rootHashes.clear();
    if (this.options.hashSeed === '') this.#hashSeed = randomBytes(8).toString('hex');
    this.kvEvents.reset();
    for (const l of this.#restartListeners) l();
    return true;
  }

  readonly #restartListeners = new Set<() => void>();

  /** Adds a listener called on `restart`; returns its removal function. */
  onRestart(listener: () => void): () => void {
    this.#restartListeners.add(listener);
    return () => this.#restartListeners.delete(listener);
  }

  /**
   * `GET /kv_state`: every cached block with its parent, tokens, LoRA name, extra keys and medium, parents before
   * children, and the seq of the last KV event batch the state includes (a full dump, like Dynamo's local indexer).
   */
  kvState(): KvStateDump {
    const blocks = new Map<number, KvStateBlock>();
    let incomplete = 0;
    for (const b of this.pool.cachedBlocks()) {
      if (b.meta === undefined) {
        incomplete++;
        continue;
      }
      blocks.set(b.hash, { hash: b.hash, parent: b.meta.parent, token_ids: b.meta.tokenIds, lora_name: b.meta.loraName, extra_keys: b.meta.extraKeys, medium: 'GPU', copies: 1 });
    }
    // Parents before children: depth of each block along its cached ancestors, then a stable sort by depth.
    const depth = new Map<number, number>();
    const depthOf = (h: number): number => {
      let d = depth.get(h);
      if (d !== undefined) return d;
      const chain: number[] = [];
      let cur: number | null = h;
      while (cur !== null && blocks.has(cur) && !depth.has(cur)) {
        chain.push(cur);
        cur = (blocks.get(cur) as KvStateBlock).parent;
      }
      d = cur !== null && depth.has(cur) ? (depth.get(cur) as number) : -1;
      for (let i = chain.length - 1; i >= 0; i--) depth.set(chain[i] as number, ++d);
      return depth.get(h) as number;
    };
    const list = [...blocks.values()].sort((a, b) => depthOf(a.hash) - depthOf(b.hash));
    return { seq: this.kvEvents.lastSeq, block_size: this.options.blockSize, blocks: list, incomplete_blocks: incomplete };
  }

  /** Aborts everything in flight and stops the engine. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.engine.close();
  }

  /** Returns the LoRA name for an adapter request, null for the base model; throws 404 otherwise. */
  #resolveModel(model: string): string | null {
    if (this.options.servedModelNames.includes(model)) return null;
    if (this.#loras.has(model)) return model;
    throw new SimError(404, `The model \`${model}\` does not exist.`, 'model', 'NotFoundError');
  }

  #root(namespace: string, salt: string): number {
    const key = `${namespace}\u0000${salt}`;
    let root = this.#rootHashes.get(key);
    if (root === undefined) {
      root = rootHash(this.#hashSeed, namespace, salt);
      this.#rootHashes.set(key, root);
    }
    return root;
  }

  #planOutput(req: GenerationRequest, prompt: PromptInput, promptLen: number): { output: OutputText; targetTokens: number; finishReason: 'stop' | 'length' } {
    const o = this.options;
    if (o.mode === 'echo') {
      const output = new EchoOutputText(prompt.echoText);
      const room = o.maxModelLen - promptLen;
      return { output, targetTokens: Math.max(1, Math.min(output.maxTokens, room)), finishReason: 'stop' };
    }
    const length = sampleOutputLength(this.#rng, o.mode, req.maxTokens, req.ignoreEos, o.maxModelLen - promptLen);
    return { output: new RandomOutputText(this.#rng.int(1 << 20)), targetTokens: length.tokens, finishReason: length.finishReason };
  }

  #drawTtftSpike(): TtftSpike | null {
    const o = this.options;
    if (o.ttftSpikeRate <= 0 || this.#faultRng.next() * 100 >= o.ttftSpikeRate) return null;
    return { factor: o.ttftSpikeFactor, extraMs: o.ttftSpikeExtraMs };
  }
}
