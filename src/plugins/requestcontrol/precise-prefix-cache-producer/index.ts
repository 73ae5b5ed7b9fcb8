/**
 * `precise-prefix-cache-producer`: per candidate, how much of the request's prompt is in that endpoint's KV cache,
 * from the engines' own KV-cache events (vLLM/SGLang over ZeroMQ), exported as the same `PrefixCacheMatchInfo`
 * the approximate producer writes, so every prefix scorer and filter works unchanged.
 *
 * - Endpoints: one ZeroMQ SUB per pool endpoint (`tcp://<address>:<events.socketPort>`, per-endpoint label
 *   overrides), reconciled with the pool every second and on each request; an endpoint that leaves is cleared.
 * - prepareData: the request's token ids come from `token-producer` (`TokenizedPrompt`); our chained keys over
 *   full blocks are matched against the dual-key index (longest consecutive prefix, tier-weighted).
 *   matchBlocks = ⌊weighted⌋, totalBlocks = ⌊P / B⌋. Endpoints whose index is not trustworthy (DESYNCED, not yet
 *   synced), and every endpoint when the request has no token ids, get the approximate producer's match instead.
 * - preRequest: speculative entries for the chosen endpoint (TTL, llm-d's "speculative indexing"), so a burst of
 *   same-prefix requests sticks before the engine's first BlockStored arrives.
 * - onResponseComplete: the drift check — predicted cached tokens (at routing) vs the engine's reported
 *   `cached_tokens`; an EWMA above `desync.driftThreshold` marks the endpoint DESYNCED, `recoverAfterRequests`
 *   consecutive good predictions bring a DESYNCED one back. A failed request drops its speculative entries.
 *   A served request that stored new blocks owes events: none within `events.silenceMs` → SILENT (fallback).
 *
 * Why one file: the plugin's hooks (prepareData, preRequest, onResponseComplete) and the pool reconciliation share
 * per-endpoint sync state and per-request predictions; the index, the event transport and the per-endpoint
 * recovery are their own files.
 */
import { z } from 'zod';
import { PrefixCacheMatchInfoKey, tokenizedPromptOf, TokenizedPromptKey, type PrefixCacheMatchInfo } from '../../../framework/attributes.ts';
import { KV_EVENTS_LABELS, type Endpoint } from '../../../framework/datalayer.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { Clock, Logger, PluginFactory, PluginHandle, TypedName } from '../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../framework/request.ts';
import type { DataProducer, Outcome, PreRequestHook, ResponseCompleteHook, ResponseInfo } from '../../../framework/requestcontrol.ts';
import type { Candidate, SchedulingResult } from '../../../framework/scheduling.ts';
import type { PrecisePrefixMetricsSource } from '../../../framework/plugin-metrics.ts';
import { ApproxPrefixCacheProducer, approxPrefixCacheProducerFactory } from '../approx-prefix-cache-producer/index.ts';
import { EndpointSync, newSyncCounters, type SyncCounters, type SyncPhase } from './endpoint-sync.ts';
import { KvEventApplier, newIngestCounters, type IngestCounters } from './ingest.ts';
import { KvBlockIndex } from './kv-block-index.ts';
import type { DecodeStats } from './kv-events.ts';
import { extraWords, KeyArrayPool, RequestKeyer, type KeyArrays } from './request-keys.ts';
import { fetchSnapshot } from './snapshot.ts';
import { ZmqTransport, type EventTransport } from './zmq-transport.ts';

export const PRECISE_PREFIX_CACHE_PRODUCER_TYPE = 'precise-prefix-cache-producer';


const RECONCILE_INTERVAL_MS = 1000;

const num = (what: string) => z.number({ error: `expected a number (${what})` });
const port = z.number({ error: 'expected a TCP port (1-65535)' }).int('expected a TCP port (1-65535)').min(1, 'expected a TCP port (1-65535)').max(65535, 'expected a TCP port (1-65535)');

export const precisePrefixParametersSchema = z.strictObject({
  /** Tokens per KV block; must equal the engine's `--block-size` (checked against events and cache-config metrics). */
  blockSize: z.number({ error: 'expected a positive integer (tokens per block, = vLLM --block-size)' }).int().positive().default(16),
  /** Seed of our request keys (any string; never compared with engine hashes). */
  hashSeed: z.string({ error: 'expected a string' }).default(''),
  /** Weight of one cached block per medium (lower-case vLLM `medium`); the first is the GPU tier. */
  tierWeights: z.record(z.string(), num('weight in [0, 1]').min(0).max(1)).default({ gpu: 1, cpu: 0.8 }),
  speculative: z
    .strictObject({ enabled: z.boolean({ error: 'expected a boolean' }).default(true), ttlMs: num('milliseconds > 0').positive().default(2000) })
    .default({ enabled: true, ttlMs: 2000 }),
  events: z
    .strictObject({
      /** Port of the engine's PUB socket on the endpoint's address (vLLM `--kv-events-config` endpoint). */
      socketPort: port.default(5557),
      /** Port of the engine's replay ROUTER (`replay_endpoint`), or null when it has none. */
      replaySocketPort: port.nullable().default(null),
      /** SUB topic prefix ("" = all topics). */
      topicFilter: z.string({ error: 'expected a string' }).default('kv@'),
      /** `vllm` or `sglang` (SGLang sends no extra keys: salted requests are scored approximately). */
      engine: z.enum(['vllm', 'sglang'], { error: 'expected vllm or sglang' }).default('vllm'),
      /** Recover from a full dump (`GET /kv_state` on the endpoint; the simulator serves it) when replay fails. */
      snapshot: z.boolean({ error: 'expected a boolean' }).default(false),
      /** Idle timeout of one replay or dump request. */
      replayTimeoutMs: num('milliseconds > 0').positive().default(2000),
      /** Wait at least this long between recovery attempts of a DESYNCED endpoint. */
      retryCooldownMs: num('milliseconds >= 0').nonnegative().default(30_000),
      /**
       * An endpoint that completed a request which stored new blocks, and sent no event within this bound, is
       * SILENT (scored by the approximate fallback until events resume); 0 turns the check off.
       */
      silenceMs: num('milliseconds >= 0').nonnegative().default(5000),
    })
    .default({ socketPort: 5557, replaySocketPort: null, topicFilter: 'kv@', engine: 'vllm', snapshot: false, replayTimeoutMs: 2000, retryCooldownMs: 30_000, silenceMs: 5000 }),
  desync: z
    .strictObject({
      /** Score untrustworthy endpoints with the approximate producer (`approx`) or as no hit (`none`). */
      fallback: z.enum(['approx', 'none'], { error: 'expected approx or none' }).default('approx'),
      /** EWMA of |predicted − reported cached tokens| / prompt tokens above which an endpoint is DESYNCED. */
      driftThreshold: num('fraction in (0, 1]').positive().max(1).default(0.15),
      /** Consecutive good predictions that bring a DESYNCED endpoint back. */
      recoverAfterRequests: z.number({ error: 'expected a positive integer' }).int().positive().default(50),
      /** Requests seen before the drift EWMA can mark an endpoint DESYNCED. */
      minSamples: z.number({ error: 'expected a positive integer' }).int().positive().default(10),
    })
    .default({ fallback: 'approx', driftThreshold: 0.15, recoverAfterRequests: 50, minSamples: 10 }),
});

export type PrecisePrefixCacheConfig = z.infer<typeof precisePrefixParametersSchema>;

interface Speculation {
  /** The index's handle for the speculation (`KvBlockIndex.addSpeculative`). */
  readonly handle: number;
  /** The request's keys[0, n); back to the pool when the entry goes (`live` turns false). */
  readonly keys: KeyArrays;
  readonly n: number;
  readonly expiresAt: number;
  live: boolean;
}

interface RequestState {
  readonly names: readonly string[];
  /** Precise matched blocks per candidate (also for fallback candidates: the drift check needs them). */
  readonly blocks: Float64Array;
  readonly promptTokens: number;
  /** The request's keys[0, n) for its speculative entries (speculation on), owned by this state until preRequest. */
  readonly keys: KeyArrays | undefined;
  readonly n: number;
  readonly approx: boolean;
}

interface Prediction {
  readonly endpoint: string;
  /** Cached tokens predicted from confirmed entries only, and with speculative ones (a range under concurrency). */
  readonly confirmedTokens: number;
  readonly predictedTokens: number;
  readonly promptTokens: number;
  readonly speculation: Speculation | undefined;
  /** No other request of ours was in flight on the endpoint when this one was routed. */
  readonly quiet: boolean;
  /** The endpoint was DESYNCED when this request was routed (only those count towards recovery). */
  readonly desynced: boolean;
  /** The endpoint's live message count when this request was routed (silence check). */
  readonly messagesAtRouting: number;
}

interface EndpointHealth {
  ewma: number;
  samples: number;
  goodStreak: number;
}

/** Counters and gauges read by the metrics layer. */
export interface PrecisePrefixStats {
  readonly ingest: IngestCounters;
  readonly sync: SyncCounters;
  readonly decode: DecodeStats;
  /** Requests scored precisely / with the fallback because they had no token ids / a salt the engine does not report. */
  requestsPrecise: number;
  requestsNoTokens: number;
  /** Candidate scorings that used the fallback because their endpoint was not in sync. */
  fallbackCandidates: number;
  /** |predicted − reported| / prompt tokens of each checked request (drained by the metrics layer). */
  readonly predictionErrors: number[];
}

export class PrecisePrefixCacheProducer implements DataProducer, PreRequestHook, ResponseCompleteHook {
  readonly typedName: TypedName;
  readonly produces: readonly string[] = [PrefixCacheMatchInfoKey];
  readonly consumes: readonly string[] = [TokenizedPromptKey];
  readonly config: Readonly<PrecisePrefixCacheConfig>;
  readonly index: KvBlockIndex;
  readonly keyer: RequestKeyer;
  readonly applier: KvEventApplier;
  readonly stats: PrecisePrefixStats;
  readonly #syncs = new Map<string, EndpointSync>();
  readonly #health = new Map<string, EndpointHealth>();
  /** Requests routed to each endpoint and not completed yet (quiet drift samples). */
  readonly #inflight = new Map<string, number>();
  readonly #mismatchLogged = new Set<string>();
  readonly #states = new WeakMap<InferenceRequest, RequestState>();
  readonly #predictions = new WeakMap<InferenceRequest, Prediction>();
  readonly #speculations: Speculation[] = [];
  readonly #keyArrays = new KeyArrayPool();
  #specHead = 0;
  readonly #fallback: ApproxPrefixCacheProducer | undefined;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #pool: () => readonly Endpoint[];
  readonly #transportFor: (endpoint: Endpoint) => EventTransport | undefined;
  #lastPool: readonly Endpoint[] | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #lastSilenceCheck = Number.NEGATIVE_INFINITY;
  readonly #onClose: (() => void) | undefined;

  constructor(
    name: string,
    config: PrecisePrefixCacheConfig,
    handle: PluginHandle,
    options: {
      transportFor?: (endpoint: Endpoint) => EventTransport | undefined;
      reconcileTimer?: boolean;
      /** Type name for logs and `typedName` (a plugin type built on this producer, e.g. `precise-prefix-cache-scorer`). */
      type?: string;
      /** Called once by `close()` (a shared socket behind `transportFor`). */
      onClose?: () => void;
    } = {},
  ) {
    this.typedName = { type: options.type ?? PRECISE_PREFIX_CACHE_PRODUCER_TYPE, name };
    this.#onClose = options.onClose;
    this.config = Object.freeze({ ...config });
    this.#logger = handle.logger;
    this.#clock = handle.clock;
    this.#pool = () => handle.endpoints();
    const tiers = Object.entries(config.tierWeights).map(([n, weight]) => ({ name: n, weight }));
    this.index = new KvBlockIndex(tiers);
    this.keyer = new RequestKeyer(config.blockSize, config.hashSeed);
    this.applier = new KvEventApplier(this.index, this.keyer, newIngestCounters());
    this.stats = {
      ingest: this.applier.counters,
      sync: newSyncCounters(),
      decode: { unknownTags: 0, unknownFields: 0, malformedEvents: 0 },
      requestsPrecise: 0,
      requestsNoTokens: 0,
      fallbackCandidates: 0,
      predictionErrors: [],
    };
    if (config.desync.fallback === 'approx') {
      // The fallback index is internal to this producer: its size is not exported as a prefix indexer's.
      const internal: PluginHandle = { ...handle, metrics: { prefixIndex() {}, precisePrefix() {}, tokenSource() {} } };
      this.#fallback = approxPrefixCacheProducerFactory(`${name}-approx-fallback`, { blockSizeTokens: config.blockSize }, internal) as ApproxPrefixCacheProducer;
    }
    this.#transportFor = options.transportFor ?? ((e) => this.#zmqTransport(e));
    if (options.reconcileTimer !== false) {
      this.#timer = setInterval(() => {
        this.reconcile();
        this.checkSilence();
        this.index.drainClears(); // a cleared endpoint's leftover bits, when no event comes to take them off
      }, RECONCILE_INTERVAL_MS);
      this.#timer.unref();
    }
  }

  /** Sync phase of an endpoint (undefined when it has no event stream). */
  phaseOf(endpoint: string): SyncPhase | undefined {
    return this.#syncs.get(endpoint)?.phase;
  }

  /** The sync state machine of an endpoint (tests wait on `idle`, read `lastSeq`). */
  syncOf(endpoint: string): EndpointSync | undefined {
    return this.#syncs.get(endpoint);
  }

  /** Opens event streams for new pool endpoints and closes those of endpoints that left. Cheap when unchanged. */
  reconcile(): void {
    if (this.#closed) return;
    const pool = this.#pool();
    if (pool === this.#lastPool) return;
    this.#lastPool = pool;
    const present = new Set<string>();
    for (const e of pool) {
      const name = e.metadata.name;
      present.add(name);
      this.#checkBlockSizeMetric(e);
      if (this.#syncs.has(name)) continue;
      const transport = this.#transportFor(e);
      if (transport === undefined) continue;
      const ev = this.config.events;
      const sync = new EndpointSync({
        endpoint: name,
        transport,
        snapshot: ev.snapshot ? () => fetchSnapshot(`http://${e.hostPort}`, ev.replayTimeoutMs) : undefined,
        index: this.index,
        applier: this.applier,
        decodeStats: this.stats.decode,
        counters: this.stats.sync,
        logger: this.#logger,
        clock: this.#clock,
        maxPending: 10_000,
        retryCooldownMs: ev.retryCooldownMs,
        onBlockSizeMismatch: (ep, bs) => this.#blockSizeMismatch(ep, bs),
      });
      this.#syncs.set(name, sync);
      sync.start();
    }
    // An empty pool is more likely a discovery gap than a fleet that vanished: keep the streams.
    if (pool.length === 0) return;
    for (const [name, sync] of this.#syncs) {
      if (present.has(name)) continue;
      sync.close();
      this.#syncs.delete(name);
      this.#health.delete(name);
      this.index.clear(name);
    }
  }

  /**
   * Marks SILENT every endpoint whose owed events are `events.silenceMs` overdue (run every second and at most
   * every 250 ms from the request path; tests call it after moving the clock).
   */
  checkSilence(): void {
    const silenceMs = this.config.events.silenceMs;
    if (silenceMs <= 0) return;
    const now = this.#clock.now();
    this.#lastSilenceCheck = now;
    for (const sync of this.#syncs.values()) sync.checkSilence(now, silenceMs);
  }

  #zmqTransport(e: Endpoint): EventTransport {
    const ev = this.config.events;
    const labels = e.metadata.labels;
    const host = e.metadata.address.includes(':') ? `[${e.metadata.address}]` : e.metadata.address;
    const portLabel = Number(labels[KV_EVENTS_LABELS.port] ?? ev.socketPort);
    const replayPortLabel = labels[KV_EVENTS_LABELS.replayPort] ?? ev.replaySocketPort;
    const pubAddress = labels[KV_EVENTS_LABELS.endpoint] ?? `tcp://${host}:${portLabel}`;
    const replayAddress = labels[KV_EVENTS_LABELS.replayEndpoint] ?? (replayPortLabel === null ? undefined : `tcp://${host}:${Number(replayPortLabel)}`);
    return new ZmqTransport({ pubAddress, replayAddress, topicFilter: ev.topicFilter, replayIdleTimeoutMs: ev.replayTimeoutMs, maxReplayBatches: 10_000 });
  }

  #checkBlockSizeMetric(e: Endpoint): void {
    const bs = e.metrics.cacheBlockSize;
    if (bs > 0 && bs !== this.config.blockSize) this.#blockSizeMismatch(e.metadata.name, bs);
  }

  #blockSizeMismatch(endpoint: string, engineBlockSize: number): void {
    if (!this.#mismatchLogged.has(endpoint)) {
      this.#mismatchLogged.add(endpoint);
      this.#logger.error(
        { endpoint, engineBlockSize, blockSize: this.config.blockSize, plugin: this.typedName.name },
        `plugin '${this.typedName.name}' (type: ${this.typedName.type}): endpoint ${endpoint} uses KV block size ${engineBlockSize} ` +
          `but parameters.blockSize is ${this.config.blockSize}; set parameters.blockSize: ${engineBlockSize} (it must equal the engine's --block-size). ` +
          'Until then the endpoint is scored by the approximate fallback',
      );
    }
    this.#syncs.get(endpoint)?.markDrifted(`block size ${engineBlockSize} ≠ ${this.config.blockSize}`);
    this.index.clear(endpoint);
  }

  #trusted(endpoint: string): boolean {
    if (this.#mismatchLogged.has(endpoint)) return false;
    const phase = this.#syncs.get(endpoint)?.phase;
    return phase === 'SYNCED' || phase === 'REPLAYING';
  }

  #expireSpeculations(now: number): void {
    const q = this.#speculations;
    while (this.#specHead < q.length && (q[this.#specHead] as Speculation).expiresAt <= now) {
      const s = q[this.#specHead++] as Speculation;
      if (s.live) this.#dropSpeculation(s);
    }
    if (this.#specHead > 1024 && this.#specHead * 2 > q.length) {
      q.splice(0, this.#specHead);
      this.#specHead = 0;
    }
  }

  #dropSpeculation(s: Speculation): void {
    s.live = false;
    this.index.removeSpeculative(s.handle, s.keys.hi, s.keys.lo, s.n);
    this.#keyArrays.give(s.keys);
  }

  /** Forgets the request's scoring state, its key arrays back to the pool (they were not used for speculation). */
  #dropState(request: InferenceRequest): RequestState | undefined {
    const state = this.#states.get(request);
    if (state === undefined) return undefined;
    this.#states.delete(request);
    if (state.keys !== undefined) this.#keyArrays.give(state.keys);
    return state;
  }

  prepareData(request: InferenceRequest, candidates: readonly Candidate[]): void | Promise<void> {
    this.reconcile();
    this.#dropState(request);
    if (candidates.length === 0) return;
    const now = this.#clock.now();
    this.#expireSpeculations(now);
    if (now - this.#lastSilenceCheck >= 250) this.checkSilence();
    const tokens = tokenizedPromptOf((candidates[0] as Candidate).attributes);
    const salt = request.body.payload.cache_salt;
    const hasSalt = typeof salt === 'string' && salt !== '';
    if (tokens === undefined || (hasSalt && this.config.events.engine === 'sglang')) {
      this.stats.requestsNoTokens++;
      return this.#runFallback(request, candidates, undefined);
    }
    this.stats.requestsPrecise++;
    const B = this.config.blockSize;
    const namespace = this.applier.loraNames.has(request.targetModel) ? request.targetModel : '';
    const saltWords = hasSalt ? extraWords([salt]) : undefined;
    const nBlocks = Math.floor(tokens.tokenIds.length / B);
    // With speculation on, the keys outlive this call (preRequest inserts them): hash straight into pooled arrays.
    const owned = this.config.speculative.enabled && nBlocks > 0 ? this.#keyArrays.take(nBlocks) : undefined;
    const keys = this.keyer.keys(namespace, tokens.tokenIds, saltWords === undefined ? undefined : (b) => (b === 0 ? saltWords : undefined), owned);
    const n = keys.n;
    const slots = new Int32Array(candidates.length);
    const names: string[] = new Array<string>(candidates.length);
    let untrusted: Candidate[] | undefined;
    for (let c = 0; c < candidates.length; c++) {
      const name = (candidates[c] as Candidate).endpoint.metadata.name;
      names[c] = name;
      slots[c] = this.index.hasEndpoint(name) ? this.index.slotOf(name) : -1;
      if (!this.#trusted(name)) (untrusted ??= []).push(candidates[c] as Candidate);
    }
    const { blocks, weighted } = this.index.match(keys.hi, keys.lo, n, slots, this.config.speculative.enabled);
    const noMatch: PrefixCacheMatchInfo = Object.freeze({ matchBlocks: 0, totalBlocks: n, blockSizeTokens: B });
    for (let c = 0; c < candidates.length; c++) {
      const w = Math.min(n, Math.floor(weighted[c] as number));
      (candidates[c] as Candidate).attributes.set(PrefixCacheMatchInfoKey, w === 0 ? noMatch : Object.freeze({ matchBlocks: w, totalBlocks: n, blockSizeTokens: B }));
    }
    const state: RequestState = { names, blocks, promptTokens: tokens.tokenIds.length, keys: owned, n, approx: false };
    this.#states.set(request, state);
    if (untrusted !== undefined) {
      this.stats.fallbackCandidates += untrusted.length;
      return this.#runFallback(request, untrusted, state);
    }
  }

  #runFallback(request: InferenceRequest, candidates: readonly Candidate[], state: RequestState | undefined): void | Promise<void> {
    if (this.#fallback === undefined) {
      if (state === undefined) {
        const none: PrefixCacheMatchInfo = Object.freeze({ matchBlocks: 0, totalBlocks: 0, blockSizeTokens: this.config.blockSize });
        for (const c of candidates) c.attributes.set(PrefixCacheMatchInfoKey, none);
      } else {
        for (const c of candidates) c.attributes.set(PrefixCacheMatchInfoKey, Object.freeze({ matchBlocks: 0, totalBlocks: (c.attributes.get(PrefixCacheMatchInfoKey) as PrefixCacheMatchInfo).totalBlocks, blockSizeTokens: this.config.blockSize }));
      }
      return;
    }
    this.#states.set(request, { ...(state ?? { names: [], blocks: new Float64Array(0), promptTokens: 0, keys: undefined, n: 0 }), approx: true });
    return this.#fallback.prepareData(request, candidates);
  }

  preRequest(request: InferenceRequest, result: SchedulingResult, signal: AbortSignal): void | Promise<void> {
    const primary = result.profileResults.get(result.primaryProfileName)?.targets[0];
    if (primary === undefined || signal.aborted) {
      const dropped = this.#dropState(request);
      if (dropped?.approx === true) return this.#fallback?.preRequest(request, result);
      return;
    }
    const state = this.#states.get(request);
    this.#states.delete(request);
    if (state === undefined) return;
    const name = primary.endpoint.metadata.name;
    const c = state.names.indexOf(name);
    let speculation: Speculation | undefined;
    if (state.keys !== undefined) {
      const handle = this.index.addSpeculative(name, state.keys.hi, state.keys.lo, state.n);
      speculation = { handle, keys: state.keys, n: state.n, expiresAt: this.#clock.now() + this.config.speculative.ttlMs, live: true };
      this.#speculations.push(speculation);
    }
    const inflight = this.#inflight.get(name) ?? 0;
    this.#inflight.set(name, inflight + 1);
    if (c >= 0) {
      const B = this.config.blockSize;
      // The engine always recomputes the prompt's last token: at most ⌊(P − 1) / B⌋ blocks can hit.
      const cap = Math.max(0, Math.floor((state.promptTokens - 1) / B));
      const predictedBlocks = Math.min(state.blocks[c] as number, cap);
      // Confirmed-only prediction (before this request's own speculative insert above is irrelevant: the walk
      // below skips the speculative tier entirely).
      const confirmedBlocks = state.keys !== undefined && this.index.hasEndpoint(name)
        ? Math.min(this.index.match(state.keys.hi, state.keys.lo, state.n, [this.index.slotOf(name)], false).blocks[0] as number, cap)
        : predictedBlocks;
      const sync = this.#syncs.get(name);
      this.#predictions.set(request, {
        endpoint: name, confirmedTokens: confirmedBlocks * B, predictedTokens: predictedBlocks * B, promptTokens: state.promptTokens, speculation,
        quiet: inflight === 0, desynced: sync?.phase === 'DESYNCED', messagesAtRouting: sync?.messages ?? 0,
      });
    } else {
      // No prediction (no token ids, or the target was not a candidate): still tracked for the in-flight count.
      this.#predictions.set(request, { endpoint: name, confirmedTokens: 0, predictedTokens: 0, promptTokens: 0, speculation, quiet: false, desynced: false, messagesAtRouting: 0 });
    }
    if (state.approx) return this.#fallback?.preRequest(request, result);
  }

  onResponseComplete(response: ResponseInfo, outcome: Outcome): void | Promise<void> {
    const request = response.request;
    this.#dropState(request);
    const p = this.#predictions.get(request);
    this.#predictions.delete(request);
    if (p !== undefined) {
      const n = (this.#inflight.get(p.endpoint) ?? 1) - 1;
      if (n <= 0) this.#inflight.delete(p.endpoint);
      else this.#inflight.set(p.endpoint, n);
      if (outcome.kind !== 'success' && p.speculation?.live === true && response.status === 0) {
        // Failed before the engine answered: nothing was cached, do not wait for the TTL.
        this.#dropSpeculation(p.speculation);
      }
      const cached = outcome.kind === 'success' ? outcome.usage?.cachedTokens : undefined;
      if (outcome.kind === 'success' && p.promptTokens > 0) this.#owesEvents(p, cached);
      // Only requests routed while the endpoint was otherwise idle (of our traffic) are exact predictions: with
      // requests in flight the engine may not have stored their blocks yet when this one is admitted.
      if (cached !== undefined && p.quiet && p.promptTokens > 0) this.#checkDrift(p, cached);
    }
    return this.#fallback?.onResponseComplete(response, outcome);
  }

  /**
   * A served request whose prompt had full blocks the engine could have hit but did not (per its reported
   * `cached_tokens`, else our confirmed prediction) made the engine compute and store them: events are owed.
   */
  #owesEvents(p: Prediction, reportedCachedTokens: number | undefined): void {
    if (this.config.events.silenceMs <= 0) return;
    const B = this.config.blockSize;
    const cap = Math.floor((p.promptTokens - 1) / B);
    const cachedBlocks = Math.floor((reportedCachedTokens ?? p.confirmedTokens) / B);
    if (cap - cachedBlocks >= 1) this.#syncs.get(p.endpoint)?.expectEvents(this.#clock.now(), p.messagesAtRouting);
  }

  #checkDrift(p: Prediction, reportedCachedTokens: number): void {
    // Under concurrency the truth lies between the confirmed and the speculative prediction (blocks of requests
    // routed just before are being computed): only a report outside that range is an error.
    const lo = Math.min(p.confirmedTokens, p.predictedTokens);
    const hi = Math.max(p.confirmedTokens, p.predictedTokens);
    const off = reportedCachedTokens < lo ? lo - reportedCachedTokens : reportedCachedTokens > hi ? reportedCachedTokens - hi : 0;
    const error = off / p.promptTokens;
    if (this.stats.predictionErrors.length < 10_000) this.stats.predictionErrors.push(error);
    let h = this.#health.get(p.endpoint);
    if (h === undefined) this.#health.set(p.endpoint, (h = { ewma: 0, samples: 0, goodStreak: 0 }));
    h.ewma = h.samples === 0 ? error : 0.9 * h.ewma + 0.1 * error;
    h.samples++;
    const d = this.config.desync;
    if (error > d.driftThreshold) h.goodStreak = 0;
    else if (p.desynced) h.goodStreak++;
    const sync = this.#syncs.get(p.endpoint);
    if (sync === undefined) return;
    if (sync.phase === 'DESYNCED' && !this.#mismatchLogged.has(p.endpoint) && h.goodStreak >= d.recoverAfterRequests) {
      sync.markRecovered();
      h.ewma = 0;
      h.samples = 0;
      h.goodStreak = 0;
    } else if (sync.phase === 'SYNCED' && h.samples >= d.minSamples && h.ewma > d.driftThreshold) {
      sync.markDrifted(`mean prediction error ${h.ewma.toFixed(3)} > ${d.driftThreshold}`);
      h.goodStreak = 0;
    }
  }

  /** The view the metrics layer reads at scrape time (`epp_kv_*`, `epp_precise_prefix_*`). */
  metricsSource(): PrecisePrefixMetricsSource {
    const stats = this.stats;
    return {
      name: this.typedName.name,
      get counters() {
        return {
          ...stats.ingest, ...stats.sync, ...stats.decode,
          requestsPrecise: stats.requestsPrecise, requestsNoTokens: stats.requestsNoTokens, fallbackCandidates: stats.fallbackCandidates,
        };
      },
      indexStats: () => {
        const st = this.index.stats();
        return { byTier: Object.fromEntries(this.index.tiers.map((t, i) => [t, st.byTier[i] ?? 0])), requestKeys: st.requestKeys, bytes: st.bytes };
      },
      phases: () => new Map([...this.#syncs].map(([k, v]) => [k, v.phase])),
      drainPredictionErrors: () => stats.predictionErrors.splice(0),
    };
  }

  /** Closes every event stream (shutdown, tests). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const s of this.#syncs.values()) s.close();
    this.#syncs.clear();
    this.#onClose?.();
  }
}

export const precisePrefixCacheProducerFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: PRECISE_PREFIX_CACHE_PRODUCER_TYPE, name };
  const config = parsePluginParameters(typedName, precisePrefixParametersSchema, parameters);
  if (Object.keys(config.tierWeights).length === 0) {
    parsePluginParameters(typedName, z.strictObject({ tierWeights: z.never({ error: 'expected at least one tier, e.g. {gpu: 1, cpu: 0.8}' }) }), { tierWeights: {} });
  }
  const producer = new PrecisePrefixCacheProducer(name, config, handle);
  handle.metrics.precisePrefix(producer.metricsSource());
  return producer;
};
