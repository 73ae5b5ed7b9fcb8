/**
 * `approx-prefix-cache-producer`: estimates, per endpoint, how much of a request's prompt is already in that
 * endpoint's KV cache, from the prompts this EPP routed there before (epp-spec §3.4). Produces
 * `PrefixCacheMatchInfo` for `prefix-cache-scorer` and `prefix-cache-affinity-filter`.
 *
 * Request flow:
 *  - prepareData: hash the prompt into blocks, match them against the index, write the match info on every
 *    candidate, keep the hashes for this request (WeakMap keyed by the request object);
 *  - preRequest: index the hashes for the chosen endpoint (the primary profile's first target, plus the
 *    first target of a profile named `prefill`), then drop the request's state;
 *  - onResponseComplete: drop the request's state if preRequest never ran (scheduling failed, or a hook
 *    before it failed the request).
 *
 * Replication (src/framework/replication.ts): the producer is a `ReplicatedIndex`. With a cross-replica syncer
 * configured, every placement indexed in preRequest is also handed to the syncer's sink (an O(1) enqueue), and
 * peers' placements arrive through `applyRemotePlacement`, off the request path, as if this replica had routed
 * them. Placements hashed with another block size than this replica's current one are refused (and counted
 * by the syncer); so are peers whose hashing scheme (the fingerprint) differs.
 */
import { z } from 'zod';
import { PrefixCacheMatchInfoKey, type PrefixCacheMatchInfo } from '../../../framework/attributes.ts';
import type { Endpoint } from '../../../framework/datalayer.ts';
import { orDefaultWhenNotPositive, parameterWarning, parsePluginParameters } from '../../../framework/params.ts';
import type { Clock, Logger, PluginFactory, PluginHandle, TypedName } from '../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../framework/request.ts';
import type {
  DataProducer,
  Outcome,
  PreRequestHook,
  ResponseCompleteHook,
  ResponseInfo,
} from '../../../framework/requestcontrol.ts';
import type { BlockHashHalves, IndexSnapshotEntry, PlacementSink, ReplicatedIndex } from '../../../framework/replication.ts';
import type { Candidate, SchedulingResult } from '../../../framework/scheduling.ts';
import { PrefixIndex } from './prefix-index.ts';
import { BYTES_PER_TOKEN, inputCapChars, PromptHasher, userInputParts } from './prompt-hash.ts';

export const APPROX_PREFIX_CACHE_PRODUCER_TYPE = 'approx-prefix-cache-producer';

const DEFAULT_BLOCK_SIZE_TOKENS = 16;
const DEFAULT_MAX_PREFIX_BLOCKS_TO_MATCH = 256;
/** ≈ 500 000 KV tokens per server at 16 tokens per block (upstream's sizing example). */
export const DEFAULT_LRU_CAPACITY_PER_SERVER = 31_250;
/**
 * Blocks per snapshot entry: one endpoint of the default capacity comes in 8 pieces of ≈ 50 µs each, where walking
 * it whole held the event loop for 0.4–1.6 ms (bench:replicas-path --transport redis --profile-stalls).
 */
export const SNAPSHOT_CHUNK_BLOCKS = 4096;
/** The profile whose first target also receives the prompt in prefill/decode disaggregation. */
export const PREFILL_PROFILE_NAME = 'prefill';
/** How often endpoints that left the pool are dropped from the index (upstream: 2 min). */
export const INACTIVE_ENDPOINT_SWEEP_INTERVAL_MS = 120_000;

const positiveInt = (what: string) =>
  z.number({ error: `expected a positive integer (${what})` }).int(`expected a positive integer (${what})`).positive(`expected a positive integer (${what})`);
const nonNegativeInt = (what: string) =>
  z.number({ error: `expected an integer >= 0 (${what})` }).int(`expected an integer >= 0 (${what})`).nonnegative(`expected an integer >= 0 (${what})`);

const parametersSchema = z.strictObject({
  /** Take block size and per-endpoint capacity from the model server's cache-config metrics when known. */
  autoTune: z.boolean({ error: 'expected a boolean' }).default(true),
  /** Block size in tokens when not auto-tuned (or the metric is unknown). */
  blockSizeTokens: positiveInt('tokens').default(DEFAULT_BLOCK_SIZE_TOKENS),
  /** Deprecated: block size in characters. Ignored (upstream ignores it too); use blockSizeTokens. */
  blockSize: nonNegativeInt('characters').default(0),
  /** Cap on the number of prompt blocks hashed and matched (≤ 0 → the default, as upstream accepts it). */
  maxPrefixBlocksToMatch: orDefaultWhenNotPositive('maxPrefixBlocksToMatch', DEFAULT_MAX_PREFIX_BLOCKS_TO_MATCH, positiveInt('blocks').default(DEFAULT_MAX_PREFIX_BLOCKS_TO_MATCH)),
  /** When > 0, overrides the block cap as maxPrefixTokensToMatch / blockSizeTokens. */
  maxPrefixTokensToMatch: nonNegativeInt('tokens').default(0),
  /** Per-endpoint index capacity in blocks when the endpoint's block count is unknown (or autoTune is off). */
  lruCapacityPerServer: orDefaultWhenNotPositive('lruCapacityPerServer', DEFAULT_LRU_CAPACITY_PER_SERVER, positiveInt('blocks').default(DEFAULT_LRU_CAPACITY_PER_SERVER)),
});

/**
 * Upstream requires `blockSizeTokens > 0` only when `autoTune` is false; with auto-tuning a value ≤ 0 is accepted,
 * and we then fall back to the default (with a warning) for endpoints whose block size is unknown.
 */
const lenientSchema = z.preprocess((v) => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const p = v as Record<string, unknown>;
  // (Upstream rejects blockSize > 0 with blockSizeTokens ≤ 0: that stays an error.)
  const legacyBlockSize = typeof p.blockSize === 'number' && p.blockSize > 0;
  if (p.autoTune !== false && !legacyBlockSize && typeof p.blockSizeTokens === 'number' && p.blockSizeTokens <= 0) {
    parameterWarning('blockSizeTokens', `${p.blockSizeTokens} is not positive: using the default ${DEFAULT_BLOCK_SIZE_TOKENS} when the model server does not report its block size`);
    return { ...p, blockSizeTokens: DEFAULT_BLOCK_SIZE_TOKENS };
  }
  return v;
}, parametersSchema);

export type ApproxPrefixCacheConfig = z.infer<typeof parametersSchema>;

interface RequestState {
  readonly hashes: readonly bigint[];
  readonly matches: ReadonlyMap<string, number>;
  readonly blockSizeTokens: number;
}

/**
 * What two replicas must share for their block hashes to mean the same: the hashing scheme of prompt-hash.ts
 * (XXH64 of character blocks, seeded by model and cache_salt, chained) and its characters-per-token factor.
 * Bump the scheme string when prompt-hash.ts changes its output.
 */
const PROMPT_HASH_SCHEME = `xxh64-chained-chars/v1/bytes-per-token=${BYTES_PER_TOKEN}`;

function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class ApproxPrefixCacheProducer implements DataProducer, PreRequestHook, ResponseCompleteHook, ReplicatedIndex {
  readonly typedName: TypedName;
  readonly produces: readonly string[] = [PrefixCacheMatchInfoKey];
  readonly consumes: readonly string[] = [];
  readonly config: Readonly<ApproxPrefixCacheConfig>;
  readonly index = new PrefixIndex();
  /**
   * Observer of the routed request's prefix hit (primary target): hit ratio in [0,1] and hit bytes. Set by the
   * server to feed `inference_extension_prefix_indexer_hit_*`; called synchronously from preRequest.
   */
  onPrefixMatch: ((hitRatio: number, hitBytes: number) => void) | undefined = undefined;
  readonly #states = new WeakMap<InferenceRequest, RequestState>();
  readonly #hasher = new PromptHasher();
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #pool: () => readonly Endpoint[];
  #lastSweepMs: number;
  #sink: PlacementSink | undefined;
  #capacityPool: readonly Endpoint[] | undefined;
  #capacityByName = new Map<string, Endpoint>();

  constructor(name: string, config: ApproxPrefixCacheConfig, handle: Pick<PluginHandle, 'logger' | 'clock' | 'endpoints'>) {
    this.typedName = { type: APPROX_PREFIX_CACHE_PRODUCER_TYPE, name };
    this.config = Object.freeze({ ...config });
    this.#logger = handle.logger;
    this.#clock = handle.clock;
    this.#pool = () => handle.endpoints();
    this.#lastSweepMs = handle.clock.now();
  }

  /** Block size for this request: the first candidate's cache block size when auto-tuned and known. */
  blockSizeTokensFor(candidates: readonly Candidate[]): number {
    if (this.config.autoTune) {
      const fromMetrics = candidates[0]?.endpoint.metrics.cacheBlockSize ?? 0;
      if (fromMetrics > 0) return fromMetrics;
    }
    return this.config.blockSizeTokens;
  }

  /** Index capacity for an endpoint seen for the first time: its KV block count when auto-tuned and known. */
  capacityBlocksFor(endpoint: Endpoint): number {
    const fromMetrics = endpoint.metrics.cacheNumBlocks;
    return this.config.autoTune && fromMetrics > 0 ? fromMetrics : this.config.lruCapacityPerServer;
  }

  prepareData(request: InferenceRequest, candidates: readonly Candidate[]): void {
    this.#sweepInactiveEndpoints();
    const blockSizeTokens = this.blockSizeTokensFor(candidates);
    const maxBlocks =
      this.config.maxPrefixTokensToMatch > 0
        ? Math.floor(this.config.maxPrefixTokensToMatch / blockSizeTokens)
        : this.config.maxPrefixBlocksToMatch;
    const salt = request.body.payload.cache_salt;
    const hashes = this.#hasher.hash(
      request.targetModel,
      typeof salt === 'string' ? salt : '',
      userInputParts(request, inputCapChars(blockSizeTokens, maxBlocks)),
      blockSizeTokens,
      maxBlocks,
    );
    const matches = this.index.match(hashes);
    const totalBlocks = hashes.length;
    // Most candidates match nothing: share one frozen value between them.
    const noMatch: PrefixCacheMatchInfo = Object.freeze({ matchBlocks: 0, totalBlocks, blockSizeTokens });
    for (const c of candidates) {
      const matchBlocks = matches.size === 0 ? 0 : (matches.get(c.endpoint.metadata.name) ?? 0);
      c.attributes.set(
        PrefixCacheMatchInfoKey,
        matchBlocks === 0 ? noMatch : Object.freeze({ matchBlocks, totalBlocks, blockSizeTokens }),
      );
    }
    this.#states.set(request, { hashes, matches, blockSizeTokens });
  }

  /** Synchronous: it checks `request.aborted` instead of taking a signal (none is created for it). */
  preRequest(request: InferenceRequest, result: SchedulingResult): void {
    const state = this.#states.get(request);
    this.#states.delete(request);
    if (state === undefined) {
      this.#logger.error({ requestId: request.requestId }, 'prefix cache state missing for request; index not updated');
      return;
    }
    if (request.aborted === true) return;
    const primary = result.profileResults.get(result.primaryProfileName)?.targets[0];
    if (primary === undefined) return;
    this.index.add(primary.endpoint.metadata.name, this.capacityBlocksFor(primary.endpoint), state.hashes);
    this.#sink?.enqueuePlacement(primary.endpoint.metadata.name, state.blockSizeTokens, state.hashes);
    const prefill = result.profileResults.get(PREFILL_PROFILE_NAME)?.targets[0];
    if (prefill !== undefined && prefill.endpoint.metadata.name !== primary.endpoint.metadata.name) {
      this.index.add(prefill.endpoint.metadata.name, this.capacityBlocksFor(prefill.endpoint), state.hashes);
      this.#sink?.enqueuePlacement(prefill.endpoint.metadata.name, state.blockSizeTokens, state.hashes);
    }
    if (this.onPrefixMatch !== undefined && state.hashes.length > 0) {
      const matchBlocks = state.matches.get(primary.endpoint.metadata.name) ?? 0;
      this.onPrefixMatch(matchBlocks / state.hashes.length, matchBlocks * state.blockSizeTokens * BYTES_PER_TOKEN);
    }
    if (this.#logger.isLevelEnabled('debug') && state.hashes.length > 0) {
      const matchBlocks = state.matches.get(primary.endpoint.metadata.name) ?? 0;
      this.#logger.debug(
        {
          requestId: request.requestId,
          endpoint: primary.endpoint.metadata.name,
          hitBytes: matchBlocks * state.blockSizeTokens * BYTES_PER_TOKEN,
          hitRatio: matchBlocks / state.hashes.length,
        },
        'prefix cache match of routed request',
      );
    }
  }

  onResponseComplete(response: ResponseInfo, _outcome: Outcome): void {
    this.#states.delete(response.request);
  }

  // --- ReplicatedIndex

  replicationFingerprint(): number {
    return fnv1a32(PROMPT_HASH_SCHEME);
  }

  attachPlacementSink(sink: PlacementSink | undefined): void {
    this.#sink = sink;
  }

  /** The block size local requests hash with now: the pool's first endpoint's, when auto-tuned and known. */
  currentBlockSizeTokens(): number {
    const first = this.#pool()[0];
    return first === undefined ? this.config.blockSizeTokens : this.blockSizeTokensFor([{ endpoint: first } as Candidate]);
  }

  applyRemotePlacement(endpoint: string, blockSizeTokens: number, hashes: BlockHashHalves): boolean {
    if (blockSizeTokens !== this.currentBlockSizeTokens()) return false;
    this.index.addHalves(endpoint, this.#capacityOf(endpoint), hashes.hi, hashes.lo, hashes.n);
    return true;
  }

  /**
   * Each endpoint in chunks of `SNAPSHOT_CHUNK_BLOCKS`, walked while the index keeps changing between them
   * (`PrefixIndex.walkHalves`), so the syncer can yield to the event loop inside an endpoint. Every chunk is
   * written into the same two arrays (the contract lends them until the next entry is requested).
   */
  *exportSnapshot(): Generator<IndexSnapshotEntry> {
    const into = { hi: new Uint32Array(SNAPSHOT_CHUNK_BLOCKS), lo: new Uint32Array(SNAPSHOT_CHUNK_BLOCKS) };
    for (const endpoint of [...this.index.endpoints()]) {
      const capacityBlocks = this.index.capacityOf(endpoint) ?? this.config.lruCapacityPerServer;
      const endpointBlocks = this.index.blocksOf(endpoint);
      for (const hashes of this.index.walkHalves(endpoint, SNAPSHOT_CHUNK_BLOCKS, into)) yield { endpoint, capacityBlocks, hashes, endpointBlocks };
    }
  }

  importSnapshot(entries: readonly IndexSnapshotEntry[]): void {
    // add() touches its argument last-to-first; a snapshot lists oldest first: reverse so the oldest is touched
    // first and ends least recently used, as it was on the writer.
    for (const e of entries) {
      const { n, hi, lo } = e.hashes;
      const rhi = new Uint32Array(n);
      const rlo = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        rhi[i] = hi[n - 1 - i] as number;
        rlo[i] = lo[n - 1 - i] as number;
      }
      this.index.addHalves(e.endpoint, this.index.capacityOf(e.endpoint) ?? e.capacityBlocks, rhi, rlo, n);
    }
  }

  #capacityOf(endpoint: string): number {
    const known = this.index.capacityOf(endpoint);
    if (known !== undefined) return known;
    const pool = this.#pool();
    if (pool !== this.#capacityPool) {
      this.#capacityPool = pool;
      this.#capacityByName = new Map(pool.map((e) => [e.metadata.name, e]));
    }
    const e = this.#capacityByName.get(endpoint);
    return e === undefined ? this.config.lruCapacityPerServer : this.capacityBlocksFor(e);
  }

  /** True while `request` has prepared state that preRequest has not consumed (for tests). */
  hasStateFor(request: InferenceRequest): boolean {
    return this.#states.has(request);
  }

  #sweepInactiveEndpoints(): void {
    const now = this.#clock.now();
    if (now - this.#lastSweepMs < INACTIVE_ENDPOINT_SWEEP_INTERVAL_MS) return;
    this.#lastSweepMs = now;
    const pool = this.#pool();
    // An empty pool is more likely a transient discovery gap than a fleet that vanished: keep the index.
    if (pool.length === 0) return;
    const active = new Set<string>();
    for (const e of pool) active.add(e.metadata.name);
    for (const name of [...this.index.endpoints()]) if (!active.has(name)) this.index.removeEndpoint(name);
  }
}

export const approxPrefixCacheProducerFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: APPROX_PREFIX_CACHE_PRODUCER_TYPE, name };
  const config = parsePluginParameters(typedName, lenientSchema, parameters);
  if (config.blockSize > 0) {
    handle.logger.warn(
      { plugin: name, type: APPROX_PREFIX_CACHE_PRODUCER_TYPE, blockSize: config.blockSize },
      `plugin '${name}' (type: ${APPROX_PREFIX_CACHE_PRODUCER_TYPE}): parameters.blockSize is deprecated and ignored; ` +
        `set blockSizeTokens (block size in tokens) instead`,
    );
  }
  const producer = new ApproxPrefixCacheProducer(name, config, handle);
  handle.metrics.prefixIndex({
    get size() {
      return producer.index.size;
    },
    observeMatches(observer) {
      producer.onPrefixMatch = observer;
    },
  });
  return producer;
};
