/**
 * The cross-replica sync engine, transport-agnostic. It carries the state of every plugin that opted in
 * (src/framework/replication.ts) between EPP replicas, entirely off the request path:
 *
 *  - publish: a plugin's `enqueuePlacement` is an O(1) push (coalescing runs at flush time); a timer flushes the
 *    pending placements every `batchMs` (or at `maxBatchBytes`) into one binary batch, and every
 *    `gaugeIntervalMs` a batch carries this replica's absolute gauges (also its heartbeat). Batches wait in a
 *    bounded queue that drops the OLDEST when full (fresh hints matter most) and are appended one at a time.
 *  - consume: one read loop tails the shared log, skips this replica's own batches, and applies the peers'
 *    placements in slices of at most `applySliceMs` of CPU, yielding to the event loop between slices. Gauges
 *    count while fresher than `loadStaleMs`; a `bye` drops an origin at once.
 *  - snapshots: whoever holds the lease writes the whole index every `snapshotIntervalMs`; a starting replica
 *    loads it, then reads the log from the snapshot's position, and reports ready when caught up — or after
 *    `warmupTimeoutMs`, or at once when the transport is unreachable (start cold).
 *  - faults: every transport call is bounded by a timeout; a read that neither returns nor fails within
 *    BLOCK + `watchdogMs` resets the link (a blackholed TCP connection never errors by itself); after a
 *    reconnect, a trim past this reader (or a lag over `maxLagMs`) reloads the snapshot and counts a gap.
 *    Nothing here ever throws into, or waits in, the request path.
 *
 * Why one file: publish, consume, snapshots and fault handling share the stream position, the per-origin state and
 * the link state; the transport, the codec and the settings are their own files.
 */
import type { Clock, Logger } from '../../framework/plugin.ts';
import type { EndpointGauge, IndexSnapshotEntry, PlacementSink, ReplicatedGauges, ReplicatedIndex } from '../../framework/replication.ts';
import type { Timers } from '../../util/timers.ts';
import { HI, LO, U64, U64_HALVES } from '../../util/u64-halves.ts';
import {
  compareIds,
  decodeBatchView,
  encodeBatch,
  FLAG_BYE,
  FLAG_GAUGES,
  peekOrigin,
  PlacementCursor,
  WIRE_VERSION,
  type BatchView,
  type WireChannel,
  type WireGauge,
  type WirePlacement,
} from './codec.ts';
import { RecentSends } from './recent-sends.ts';
import { SnapshotFieldBuilder, SnapshotFieldReader } from './snapshot-field.ts';
import { idAt, type Snapshot, type StreamEntry, type SyncTransport } from './transport.ts';

export interface SyncSettings {
  /** Flush pending placements at most this long after the first one. */
  readonly batchMs: number;
  /** Flush early when a batch reaches this many bytes. */
  readonly maxBatchBytes: number;
  /** Do not re-send an (endpoint, hash) this replica sent less than this long ago (0 = off). */
  readonly coalesceMs: number;
  /** Gauge cadence and heartbeat (`dataLayer.crossReplicaSyncInterval`). */
  readonly gaugeIntervalMs: number;
  /** Remote gauges and peers count while fresher than this. */
  readonly loadStaleMs: number;
  /** Publish queue caps: the oldest batches are dropped beyond either. */
  readonly maxQueueBytes: number;
  readonly maxQueueBatches: number;
  readonly snapshotIntervalMs: number;
  /** Readiness never waits on the transport longer than this. */
  readonly warmupTimeoutMs: number;
  /** Stream retention (the transport trims; used here to pick the replay start when there is no snapshot). */
  readonly retentionMs: number;
  /** Read long-poll, and the most entries one read asks for. */
  readonly readBlockMs: number;
  readonly readCount: number;
  /**
   * About the most bytes one read should bring. Redis's XREAD bounds a reply by entries only, and a reply arriving
   * at once is read and decoded in one turn of the event loop (up to 32 socket reads of 64 KB): the reader sets each
   * read's COUNT from the largest entry it has seen lately, so that a replica catching up after a stall does not
   * take megabytes of batches in one turn. Measured on the project's 2-core VM over loopback: the longest pause
   * while a reply of 5 kB entries came in grew from ≈ 0.2 ms (1–4 entries) to ≈ 1 ms (83 kB) and 6 ms (2.7 MB, the
   * old fixed COUNT of 512).
   */
  readonly readMaxBytes: number;
  /** Extra time a read may take beyond `readBlockMs` before the link is declared dead and reset. */
  readonly watchdogMs: number;
  /** Timeout of every other transport call. */
  readonly callTimeoutMs: number;
  /** CPU budget of one apply slice. */
  readonly applySliceMs: number;
  /** Apply lag beyond which the reader checks for a trim and reloads the snapshot. */
  readonly maxLagMs: number;
  /** Reconnect backoff: min(min·2ⁿ, max). */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
}

export const DEFAULT_SYNC_SETTINGS: SyncSettings = Object.freeze({
  batchMs: 5,
  maxBatchBytes: 256 * 1024,
  coalesceMs: 1000,
  gaugeIntervalMs: 50,
  loadStaleMs: 500,
  maxQueueBytes: 8 * 1024 * 1024,
  maxQueueBatches: 1000,
  snapshotIntervalMs: 10_000,
  warmupTimeoutMs: 5000,
  retentionMs: 30_000,
  readBlockMs: 1000,
  readCount: 512,
  readMaxBytes: 32 * 1024,
  watchdogMs: 2000,
  callTimeoutMs: 1000,
  applySliceMs: 0.5,
  maxLagMs: 2000,
  backoffMinMs: 100,
  backoffMaxMs: 2000,
});

export type DropReason = 'queue_full' | 'transport_error' | 'timeout' | 'malformed';

/** Observability hooks (wired to `epp_ha_*` by the server); every method is optional. */
export interface SyncMetricsSink {
  up?(up: boolean): void;
  peers?(n: number): void;
  published?(bytes: number): void;
  dropped?(reason: DropReason, batches: number): void;
  applied?(placements: number): void;
  lagSeconds?(seconds: number): void;
  gaps?(n: number, reason: 'seq' | 'trimmed'): void;
  incompatible?(placements: number): void;
  snapshotLoaded?(ageSeconds: number, loadSeconds: number): void;
  snapshotWritten?(bytes: number): void;
  warm?(warm: boolean): void;
}

export interface SyncEngineOptions {
  readonly transport: SyncTransport;
  /** This replica incarnation: `<replica>:<8 hex>`. */
  readonly origin: string;
  readonly indexes: readonly ReplicatedIndex[];
  readonly gauges: readonly ReplicatedGauges[];
  readonly settings?: Partial<SyncSettings>;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly metrics?: SyncMetricsSink;
  /** CPU clock for apply slices (ms, default performance.now). */
  readonly cpuNow?: () => number;
  /** Runs `fn` after other pending I/O (default setImmediate): the yield between apply slices. */
  readonly yieldToLoop?: (fn: () => void) => void;
}

interface PendingPlacement {
  readonly channel: number;
  readonly endpoint: string;
  readonly blockSizeTokens: number;
  readonly hashes: bigint[];
}

interface OriginState {
  lastSeenMs: number;
  lastSeq: number;
  lastGaugeSeq: number;
  incompatibleLogged: boolean;
}

class TimeoutError extends Error {}

/** Appends pipelined at once; beyond this, batches wait in the (capped, drop-oldest) queue. */
const MAX_APPENDS_IN_FLIGHT = 32;

/**
 * Blocks a snapshot import hands the index at once (it then checks the slice budget): an endpoint of 31,250 blocks
 * imported whole is several milliseconds of table inserts, and a resync after a trim imports while serving.
 */
const SNAPSHOT_IMPORT_PIECE_BLOCKS = 2048;

/**
 * A full read slower than this is taken as latency-bound (a distant or lagging Redis, not a busy loop): the next
 * read may bring more than readMaxBytes.
 */
const SLOW_READ_MS = 20;

/** Per-(channel, endpoint) cap of one generation of coalescing's memory (recent-sends.ts). */
const COALESCE_CAP = 1 << 16;
/** How long the coalescing tables of an endpoint gone idle are kept for reuse (`#spareCoalesce`). */
const SPARE_COALESCE_MS = 60_000;

export class SyncEngine {
  readonly settings: SyncSettings;
  readonly #o: SyncEngineOptions;
  readonly #t: SyncTransport;
  readonly #m: SyncMetricsSink;
  readonly #channels: WireChannel[];
  readonly #indexByName = new Map<string, ReplicatedIndex>();
  readonly #gaugesByName = new Map<string, ReplicatedGauges>();
  readonly #cpuNow: () => number;
  readonly #yield: (fn: () => void) => void;

  // publish
  #pending: PendingPlacement[] = [];
  #pendingBytes = 0;
  #flushTimer: unknown;
  #heartbeatTimer: unknown;
  #seq = 0;
  readonly #queue: Uint8Array[] = [];
  #queueBytes = 0;
  /** Appends sent and not yet answered: pipelined (one connection keeps their order), so a slow link's RTT
   * does not cap the publish rate at one batch per round trip. */
  #inFlight = 0;
  /** Touch coalescing, per `<channel>\n<endpoint>`. */
  readonly #coalesce = new Map<string, RecentSends>();
  /**
   * Coalescing tables of endpoints gone idle, kept (with when they went spare) for the next endpoint that needs
   * tables, until SPARE_COALESCE_MS: regrowing an endpoint's two tables by doubling allocates ≈ 2× their final
   * size in array buffers (≈ 1 MB for an endpoint at 1,000 hashes/s), which V8 counts against the old
   * generation's headroom until the next mark-compact — after a lull of 2 × coalesceMs on every endpoint, one
   * mark-compact per return of traffic (bench:replicas-path --engine shared; docs/benchmarks.md, session 11).
   */
  readonly #spareCoalesce: Array<{ recent: RecentSends; sinceMs: number }> = [];
  /**
   * The field buffers of the last snapshot written, by field key, reused by the next one: a snapshot of an index
   * in steady state then allocates no array buffers (snapshot-field.ts says what that saved). Endpoints gone
   * since are dropped with each snapshot. Held: about one snapshot's size.
   */
  #fieldBuffers = new Map<string, Uint8Array>();
  /** A snapshot is being written (writes never overlap: they share `#fieldBuffers`). */
  #writingSnapshot = false;
  /** One cursor (and so one hashes array) for every batch this engine applies. */
  readonly #cursor = new PlacementCursor();

  // consume
  #lastId: string;
  readonly #origins = new Map<string, OriginState>();
  #readerUp: boolean | undefined;
  #writerUp: boolean | undefined;
  #up: boolean | undefined;
  #backoffMs = 0;
  #closed = false;
  #snapshotTimer: unknown;
  #lastResyncMs = -Infinity;
  #trimCheckPending = false;
  /** The largest entry seen lately (bytes; halves per read down to the largest of that read): sets each read's COUNT. */
  #entryBytes: number;
  /**
   * Multiplies the byte-bounded COUNT while reads come back full and slow (a high-latency link, where
   * readMaxBytes per round trip could not keep up with the stream; ×4 per such read); halves back when a read is
   * not full.
   */
  #countBoost = 1;

  // readiness
  #ready = false;
  #warm = false;
  #resolveReady!: () => void;
  readonly ready: Promise<void>;
  #warmupTimer: unknown;

  /** Counters for tests and the bench (metrics get the same through the sink). */
  readonly stats = {
    publishedBatches: 0,
    publishedBytes: 0,
    dropped: { queue_full: 0, transport_error: 0, timeout: 0, malformed: 0 } as Record<DropReason, number>,
    appliedPlacements: 0,
    applySlices: 0,
    seqGaps: 0,
    trimGaps: 0,
    incompatiblePlacements: 0,
    snapshotsWritten: 0,
    snapshotsLoaded: 0,
    maxQueueBytesSeen: 0,
    /** Coalescing tables (an endpoint's two generations) created; an endpoint taking a spare creates none. */
    coalesceTablesCreated: 0,
  };

  constructor(o: SyncEngineOptions) {
    this.#o = o;
    this.#t = o.transport;
    this.#m = o.metrics ?? {};
    this.settings = Object.freeze({ ...DEFAULT_SYNC_SETTINGS, ...o.settings });
    this.#cpuNow = o.cpuNow ?? (() => performance.now());
    this.#yield = o.yieldToLoop ?? ((fn) => setImmediate(fn));
    this.#channels = [];
    for (const ix of o.indexes) {
      this.#channels.push({ name: ix.typedName.name, fingerprint: ix.replicationFingerprint() >>> 0 });
      this.#indexByName.set(ix.typedName.name, ix);
    }
    for (const g of o.gauges) {
      this.#channels.push({ name: g.typedName.name, fingerprint: 0 });
      this.#gaugesByName.set(g.typedName.name, g);
    }
    if (this.#channels.length > 255) throw new Error('cross-replica sync: more than 255 replicated plugins');
    this.#lastId = idAt(o.clock.now() - this.settings.retentionMs);
    // Until entries are seen, one read takes one entry; the estimate then halves per read to the entries' size.
    this.#entryBytes = this.settings.readMaxBytes;
    this.ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
  }

  get origin(): string {
    return this.#o.origin;
  }

  /** True once warm (caught up) or given up waiting (cold). Never false again. */
  isReady(): boolean {
    return this.#ready;
  }

  /** True when warm-up loaded state and caught up with the log. */
  isWarm(): boolean {
    return this.#warm;
  }

  /** True while both links work. */
  isUp(): boolean {
    return this.#up === true;
  }

  /** The last stream id this replica has read. */
  get lastId(): string {
    return this.#lastId;
  }

  /** Peers seen within `loadStaleMs`. */
  peerCount(): number {
    const since = this.#o.clock.now() - this.settings.loadStaleMs;
    let n = 0;
    for (const s of this.#origins.values()) if (s.lastSeenMs > since) n++;
    return n;
  }

  /** Queued, not yet appended, bytes. */
  get queueBytes(): number {
    return this.#queueBytes;
  }

  /**
   * Attaches the sinks, starts publishing and reading. Resolves when ready: warm (snapshot loaded and caught up
   * with the log), or cold after `warmupTimeoutMs`, or at once when the transport cannot be reached.
   */
  start(): Promise<void> {
    this.#o.indexes.forEach((ix, channel) => ix.attachPlacementSink(this.#sinkFor(channel)));
    this.#heartbeatTimer = this.#o.timers.setTimeout(() => this.#heartbeat(), this.settings.gaugeIntervalMs);
    this.#warmupTimer = this.#o.timers.setTimeout(() => {
      if (!this.#ready) this.#markReady(false, 'warm-up timed out; serving with what was loaded so far');
    }, this.settings.warmupTimeoutMs);
    void this.#warmUpThenRead();
    return this.ready;
  }

  /** Stops: says goodbye (best effort, bounded), detaches the sinks, forgets remote gauges. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    const bye = encodeBatch({ origin: this.#o.origin, seq: ++this.#seq, sentAtMs: this.#o.clock.now(), flags: FLAG_BYE, channels: this.#channels, endpoints: [], placements: [], gauges: [] });
    this.#closed = true;
    for (const t of [this.#flushTimer, this.#heartbeatTimer, this.#snapshotTimer, this.#warmupTimer]) if (t !== undefined) this.#o.timers.clearTimeout(t);
    for (const ix of this.#o.indexes) ix.attachPlacementSink(undefined);
    if (this.#writerUp !== false) await this.#bounded(this.#t.append(bye), this.settings.callTimeoutMs).catch(() => undefined);
    for (const origin of this.#origins.keys()) for (const g of this.#o.gauges) g.dropRemoteGauges(origin);
    this.#origins.clear();
    this.#markReady(this.#warm, undefined);
    await this.#t.close().catch(() => undefined);
  }

  // ---------------------------------------------------------------- publish

  #sinkFor(channel: number): PlacementSink {
    return {
      enqueuePlacement: (endpoint, blockSizeTokens, hashes) => this.#enqueue(channel, endpoint, blockSizeTokens, hashes),
    };
  }

  /**
   * The request path's part of publishing: a copy of the hashes onto the pending list. Touch coalescing runs at
   * flush time, off the request path (`#coalesced`): done here it cost `prepareData + preRequest` ≈ +45 µs at
   * p50 in bench:replicas-path, the table probes missing the cache while peers' placements are applied.
   */
  #enqueue(channel: number, endpoint: string, blockSizeTokens: number, hashes: readonly bigint[]): void {
    if (this.#closed || hashes.length === 0) return;
    this.#pending.push({ channel, endpoint, blockSizeTokens, hashes: hashes.slice() });
    this.#pendingBytes += 7 + 8 * hashes.length + endpoint.length;
    if (this.#pendingBytes >= this.settings.maxBatchBytes) this.#flush();
    else if (this.#flushTimer === undefined) this.#flushTimer = this.#o.timers.setTimeout(() => this.#flush(), this.settings.batchMs);
  }

  /** The hashes of `p` this replica did not send for its endpoint within `coalesceMs` (all when coalescing is off). */
  #coalesced(p: PendingPlacement, now: number): bigint[] {
    const window = this.settings.coalesceMs;
    if (window <= 0) return p.hashes;
    const key = `${p.channel}\n${p.endpoint}`;
    let recent = this.#coalesce.get(key);
    if (recent === undefined) {
      const spare = this.#spareCoalesce.pop();
      if (spare !== undefined) {
        recent = spare.recent;
        recent.reset(now);
      } else {
        recent = new RecentSends(window, COALESCE_CAP, now);
        this.stats.coalesceTablesCreated++;
      }
      this.#coalesce.set(key, recent);
    }
    const send: bigint[] = [];
    for (const h of p.hashes) {
      U64[0] = h;
      if (recent.offer(U64_HALVES[HI] as number, U64_HALVES[LO] as number, now)) send.push(h);
    }
    return send;
  }

  #heartbeat(): void {
    if (this.#closed) return;
    this.#flush(true);
    // An endpoint nothing was sent to for two windows has nothing left to coalesce against: its tables go spare,
    // for the next endpoint that needs some; spares unused for SPARE_COALESCE_MS are dropped.
    const now = this.#o.clock.now();
    const idleSince = now - 2 * this.settings.coalesceMs;
    for (const [key, recent] of this.#coalesce) {
      if (recent.lastUsedMs >= idleSince) continue;
      this.#coalesce.delete(key);
      this.#spareCoalesce.push({ recent, sinceMs: now });
    }
    // Oldest first (pushed in time order; reuse pops the newest).
    let expired = 0;
    while (expired < this.#spareCoalesce.length && (this.#spareCoalesce[expired] as { sinceMs: number }).sinceMs < now - SPARE_COALESCE_MS) expired++;
    if (expired > 0) this.#spareCoalesce.splice(0, expired);
    this.#m.peers?.(this.peerCount());
    this.#heartbeatTimer = this.#o.timers.setTimeout(() => this.#heartbeat(), this.settings.gaugeIntervalMs);
  }

  #flush(withGauges = false): void {
    if (this.#flushTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#closed || (this.#pending.length === 0 && !withGauges)) return;
    const endpointIdx = new Map<string, number>();
    const endpoints: string[] = [];
    const idx = (name: string): number => {
      let i = endpointIdx.get(name);
      if (i === undefined) {
        i = endpoints.length;
        endpoints.push(name);
        endpointIdx.set(name, i);
      }
      return i;
    };
    const now = this.#o.clock.now();
    const placements: WirePlacement[] = [];
    for (const p of this.#pending) {
      const hashes = this.#coalesced(p, now);
      if (hashes.length > 0) placements.push({ channel: p.channel, endpoint: idx(p.endpoint), blockSizeTokens: p.blockSizeTokens, hashes });
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    if (placements.length === 0 && !withGauges) return;
    const gauges: WireGauge[] = [];
    if (withGauges) {
      this.#o.gauges.forEach((g, i) => {
        const channel = this.#o.indexes.length + i;
        for (const x of g.localGauges()) gauges.push({ channel, endpoint: idx(x.endpoint), requests: x.requests, tokens: x.tokens });
      });
    }
    let payload: Uint8Array;
    try {
      payload = encodeBatch({ origin: this.#o.origin, seq: ++this.#seq, sentAtMs: this.#o.clock.now(), flags: withGauges ? FLAG_GAUGES : 0, channels: this.#channels, endpoints, placements, gauges });
    } catch (err) {
      this.#drop('malformed', 1);
      this.#o.logger.warn({ err: (err as Error).message }, 'cross-replica sync: a batch could not be encoded and was dropped');
      return;
    }
    this.#queue.push(payload);
    this.#queueBytes += payload.length;
    let dropped = 0;
    while (this.#queue.length > 1 && (this.#queueBytes > this.settings.maxQueueBytes || this.#queue.length > this.settings.maxQueueBatches)) {
      this.#queueBytes -= (this.#queue.shift() as Uint8Array).length;
      dropped++;
    }
    if (dropped > 0) this.#drop('queue_full', dropped);
    if (this.#queueBytes > this.stats.maxQueueBytesSeen) this.stats.maxQueueBytesSeen = this.#queueBytes;
    this.#pump();
  }

  #pump(): void {
    if (this.#inFlight >= MAX_APPENDS_IN_FLIGHT || this.#closed) return;
    const payload = this.#queue.shift();
    if (payload === undefined) return;
    this.#queueBytes -= payload.length;
    this.#inFlight++;
    this.#bounded(this.#t.append(payload), this.settings.callTimeoutMs).then(
      () => {
        this.stats.publishedBatches++;
        this.stats.publishedBytes += payload.length;
        this.#m.published?.(payload.length);
        this.#setWriterUp(true);
      },
      (err: unknown) => {
        this.#drop(err instanceof TimeoutError ? 'timeout' : 'transport_error', 1);
        this.#setWriterUp(false, err);
      },
    ).finally(() => {
      this.#inFlight--;
      this.#pump();
    });
    this.#pump();
  }

  #drop(reason: DropReason, n: number): void {
    this.stats.dropped[reason] += n;
    this.#m.dropped?.(reason, n);
  }

  // ---------------------------------------------------------------- consume

  async #warmUpThenRead(): Promise<void> {
    try {
      if (this.#t.connect) await this.#bounded(this.#t.connect(), this.settings.warmupTimeoutMs);
      const loaded = await this.#loadSnapshot();
      this.#setReaderUp(true);
      if (!loaded) this.#o.logger.info({ transport: this.#t.description }, 'cross-replica sync: no usable snapshot; replaying the retained log');
    } catch (err) {
      this.#setReaderUp(false, err);
      this.#markReady(false, 'transport unreachable at start; serving cold (will sync when it returns)');
    }
    this.#armSnapshotTimer();
    await this.#readForever();
  }

  async #readForever(): Promise<void> {
    const s = this.settings;
    while (!this.#closed) {
      let entries: StreamEntry[];
      let count: number;
      let readStartMs: number;
      try {
        // While warming up, do not long-poll: a short read means caught up.
        const block = this.#ready ? s.readBlockMs : 0;
        count = Math.max(1, Math.min(s.readCount, Math.floor(s.readMaxBytes / this.#entryBytes) * this.#countBoost));
        readStartMs = this.#o.clock.now();
        entries = await this.#bounded(this.#t.read(this.#lastId, count, block), block + s.watchdogMs);
      } catch (err) {
        if (this.#closed) return;
        if (err instanceof TimeoutError) this.#t.resetReader();
        this.#setReaderUp(false, err);
        if (!this.#ready) this.#markReady(false, 'transport unreachable during warm-up; serving cold');
        this.#backoffMs = this.#backoffMs === 0 ? s.backoffMinMs : Math.min(this.#backoffMs * 2, s.backoffMaxMs);
        await this.#sleep(this.#backoffMs);
        continue;
      }
      if (this.#closed) return;
      this.#backoffMs = 0;
      if (this.#readerUp !== true) {
        this.#setReaderUp(true);
        this.#trimCheckPending = true;
      }
      // After a reconnect: was the log trimmed past this reader? (retried until the check itself succeeds)
      if (this.#trimCheckPending) this.#trimCheckPending = !(await this.#checkTrimmed('reconnected'));
      if (entries.length > 0) {
        let largest = 0;
        for (const e of entries) if (e.payload.byteLength > largest) largest = e.payload.byteLength;
        if (entries.length === count && this.#o.clock.now() - readStartMs >= SLOW_READ_MS) {
          // A full read that took a long round trip: more is waiting than a byte-bounded read per round trip
          // brings. Take the entries' size at once and read 4× more (a reader starting 1 s from Redis, halving
          // its way down from one entry per read, took ≈ 5 s to read at full speed).
          this.#entryBytes = Math.min(s.maxBatchBytes, Math.max(256, largest));
          this.#countBoost = Math.min(this.#countBoost * 4, s.readCount);
        } else {
          this.#entryBytes = Math.min(s.maxBatchBytes, Math.max(256, largest, this.#entryBytes / 2));
          if (entries.length < count) this.#countBoost = Math.max(1, this.#countBoost / 2);
        }
        const from = this.#lastId;
        this.#lastId = (entries[entries.length - 1] as StreamEntry).id;
        const gapsBefore = this.stats.seqGaps;
        const worstLagMs = await this.#applyEntries(entries);
        // Lost batches or a large lag may mean the log was trimmed past this reader (a stall that never broke
        // the connection): check, at most once per maxLagMs. The check compares with where this read started.
        const suspicious = worstLagMs > s.maxLagMs || this.stats.seqGaps > gapsBefore;
        if (suspicious && this.#o.clock.now() - this.#lastResyncMs > s.maxLagMs) await this.#checkTrimmed(worstLagMs > s.maxLagMs ? 'lagging' : 'sequence gap', from);
      }
      if (!this.#ready && entries.length < count) this.#markReady(true, undefined);
    }
  }

  /**
   * Applies entries in CPU-bounded slices; returns the worst apply lag seen (ms). The budget is checked after
   * every placement (a clock read costs far less than a placement of 100+ hashes), and each placement's hashes
   * are decoded into the cursor's one reused array, so applying allocates only the hashes themselves.
   */
  async #applyEntries(entries: readonly StreamEntry[]): Promise<number> {
    let sliceStart = this.#cpuNow();
    let worstLag = 0;
    let applied = 0;
    const cursor = this.#cursor;
    for (const e of entries) {
      let batch: BatchView;
      try {
        const head = peekOrigin(e.payload);
        if (head.origin === this.#o.origin) continue;
        if (head.version !== WIRE_VERSION) {
          this.#incompatible(head.origin, 1, `wire version ${head.version}`);
          continue;
        }
        batch = decodeBatchView(e.payload);
      } catch (err) {
        this.#drop('malformed', 1);
        this.#o.logger.debug({ err: (err as Error).message, id: e.id }, 'cross-replica sync: malformed batch skipped');
        continue;
      }
      const now = this.#o.clock.now();
      const st = this.#originState(batch.origin, now);
      if (st.lastSeq >= 0 && batch.seq > st.lastSeq + 1) {
        const missed = batch.seq - st.lastSeq - 1;
        this.stats.seqGaps += missed;
        this.#m.gaps?.(missed, 'seq');
      }
      if (batch.seq > st.lastSeq) st.lastSeq = batch.seq;
      if (batch.flags & FLAG_BYE) {
        for (const g of this.#o.gauges) g.dropRemoteGauges(batch.origin);
        this.#origins.delete(batch.origin);
        continue;
      }
      if (batch.flags & FLAG_GAUGES && batch.seq >= st.lastGaugeSeq) {
        st.lastGaugeSeq = batch.seq;
        this.#applyGauges(batch, now);
      }
      const channels = batch.channels.map((c) => {
        const ix = this.#indexByName.get(c.name);
        if (ix === undefined) return undefined;
        return (ix.replicationFingerprint() >>> 0) === c.fingerprint ? ix : null;
      });
      cursor.reset(batch);
      for (let left = batch.placementCount; left > 0; left--) {
        cursor.next();
        const ix = channels[cursor.channel];
        if (ix === undefined) continue; // a plugin this replica does not run
        if (ix === null || !ix.applyRemotePlacement(batch.endpoints[cursor.endpoint] as string, cursor.blockSizeTokens, cursor.hashes)) {
          this.#incompatible(batch.origin, 1, ix === null ? 'index fingerprint differs' : `block size ${cursor.blockSizeTokens} unusable here`);
          continue;
        }
        applied++;
        if (this.#cpuNow() - sliceStart >= this.settings.applySliceMs) {
          this.#countApplied(applied);
          applied = 0;
          await this.#yieldNow();
          if (this.#closed) return worstLag;
          sliceStart = this.#cpuNow();
        }
      }
      const lag = Math.max(0, this.#o.clock.now() - batch.sentAtMs);
      if (batch.placementCount > 0) this.#m.lagSeconds?.(lag / 1000);
      if (lag > worstLag) worstLag = lag;
    }
    this.#countApplied(applied);
    return worstLag;
  }

  #countApplied(n: number): void {
    this.stats.applySlices++;
    if (n === 0) return;
    this.stats.appliedPlacements += n;
    this.#m.applied?.(n);
  }

  #applyGauges(batch: BatchView, now: number): void {
    const per = new Map<number, EndpointGauge[]>();
    for (const g of batch.gauges) {
      let list = per.get(g.channel);
      if (list === undefined) per.set(g.channel, (list = []));
      list.push({ endpoint: batch.endpoints[g.endpoint] as string, requests: g.requests, tokens: g.tokens });
    }
    // A gauge batch is the origin's complete state: a plugin with no entry in it has zero load there.
    for (const [name, plugin] of this.#gaugesByName) {
      const channel = batch.channels.findIndex((c) => c.name === name);
      plugin.setRemoteGauges(batch.origin, channel < 0 ? [] : (per.get(channel) ?? []), now + this.settings.loadStaleMs);
    }
  }

  #originState(origin: string, now: number): OriginState {
    let st = this.#origins.get(origin);
    if (st === undefined) {
      st = { lastSeenMs: now, lastSeq: -1, lastGaugeSeq: -1, incompatibleLogged: false };
      this.#origins.set(origin, st);
    }
    st.lastSeenMs = now;
    return st;
  }

  #incompatible(origin: string, n: number, why: string): void {
    this.stats.incompatiblePlacements += n;
    this.#m.incompatible?.(n);
    const st = this.#originState(origin, this.#o.clock.now());
    if (!st.incompatibleLogged) {
      st.incompatibleLogged = true;
      this.#o.logger.warn({ peer: origin, reason: why }, 'cross-replica sync: ignoring an incompatible peer\'s placements');
    }
  }

  /**
   * After a reconnect or a large lag: if the log was trimmed past this reader, reload the snapshot. Returns
   * false when the check could not be made (try again later).
   */
  async #checkTrimmed(why: string, readFrom: string = this.#lastId): Promise<boolean> {
    this.#lastResyncMs = this.#o.clock.now();
    let trimmed: string | undefined;
    try {
      trimmed = await this.#bounded(this.#t.trimmedThrough(), this.settings.callTimeoutMs);
    } catch {
      return false;
    }
    if (trimmed === undefined || compareIds(trimmed, readFrom) <= 0) return true;
    // Entries after lastId were trimmed before this replica read them: count it and reload the snapshot.
    this.stats.trimGaps++;
    this.#m.gaps?.(1, 'trimmed');
    let loaded = false;
    try {
      loaded = await this.#loadSnapshot(true);
    } catch {
      // keep going with what we have
    }
    this.#o.logger.warn({ why, lastId: this.#lastId, trimmedThrough: trimmed, snapshotReloaded: loaded }, 'cross-replica sync: the log was trimmed past this replica; resynchronising');
    return true;
  }

  // ---------------------------------------------------------------- snapshots

  async #loadSnapshot(resync = false): Promise<boolean> {
    const started = this.#cpuNow();
    const snap = await this.#bounded(this.#t.getSnapshot(), this.settings.callTimeoutMs);
    if (snap === undefined || snap.meta.v !== 1) return false;
    if (snap.meta.origin === this.#o.origin && resync) return false; // our own state: nothing to learn
    const byChannel = new Map<string, Array<[string, Uint8Array]>>();
    for (const [field, value] of snap.fields) {
      const nl = field.indexOf('\n');
      if (nl < 0) continue;
      const channel = field.slice(0, nl);
      let list = byChannel.get(channel);
      if (list === undefined) byChannel.set(channel, (list = []));
      list.push([field.slice(nl + 1), value]);
    }
    for (const [channel, fields] of byChannel) {
      const ix = this.#indexByName.get(channel);
      if (ix === undefined) continue;
      if (snap.meta.fingerprints[channel] !== ix.replicationFingerprint() >>> 0) {
        this.#incompatible(snap.meta.origin, fields.length, 'snapshot index fingerprint differs');
        continue;
      }
      const blockSize = snap.meta.blockSizes?.[channel];
      if (blockSize !== undefined && blockSize !== ix.currentBlockSizeTokens()) {
        this.#incompatible(snap.meta.origin, fields.length, `snapshot block size ${blockSize} unusable here`);
        continue;
      }
      // Decoded and imported piece by piece (oldest first, as the contract allows), yielding once a slice's budget
      // is spent: the whole index at once held the loop for milliseconds, and a resync imports while serving.
      let sliceStart = this.#cpuNow();
      for (const [endpoint, value] of fields) {
        let reader: SnapshotFieldReader;
        try {
          reader = new SnapshotFieldReader(value);
        } catch {
          this.#drop('malformed', 1);
          continue;
        }
        let from = 0;
        do {
          const entry: IndexSnapshotEntry = { endpoint, capacityBlocks: reader.capacityBlocks, hashes: reader.read(from, SNAPSHOT_IMPORT_PIECE_BLOCKS) };
          ix.importSnapshot([entry]);
          from += SNAPSHOT_IMPORT_PIECE_BLOCKS;
          if (this.#cpuNow() - sliceStart >= this.settings.applySliceMs) {
            await this.#yieldNow();
            if (this.#closed) return false;
            sliceStart = this.#cpuNow();
          }
        } while (from < reader.n);
      }
    }
    if (compareIds(snap.meta.streamId, this.#lastId) > 0) this.#lastId = snap.meta.streamId;
    this.stats.snapshotsLoaded++;
    const ageS = Math.max(0, this.#o.clock.now() - snap.meta.createdAtMs) / 1000;
    this.#m.snapshotLoaded?.(ageS, (this.#cpuNow() - started) / 1000);
    return true;
  }

  #armSnapshotTimer(): void {
    if (this.#closed) return;
    this.#snapshotTimer = this.#o.timers.setTimeout(() => {
      void this.writeSnapshot().finally(() => this.#armSnapshotTimer());
    }, this.settings.snapshotIntervalMs);
  }

  /** Writes a snapshot when this replica holds (or takes) the lease. Returns true when one was written. */
  async writeSnapshot(): Promise<boolean> {
    if (this.#closed || this.#o.indexes.length === 0 || this.#readerUp !== true) return false;
    let written = false;
    try {
      const holder = await this.#bounded(this.#t.tryLease(this.#o.origin, 3 * this.settings.snapshotIntervalMs), this.settings.callTimeoutMs);
      if (!holder || this.#writingSnapshot) return false;
      this.#writingSnapshot = true;
      written = true;
      const streamId = this.#lastId;
      const reuse = this.#fieldBuffers;
      const buffers = new Map<string, Uint8Array>();
      const fields = new Map<string, Uint8Array>();
      const fingerprints: Record<string, number> = {};
      const blockSizes: Record<string, number> = {};
      let bytes = 0;
      for (const ix of this.#o.indexes) {
        const name = ix.typedName.name;
        fingerprints[name] = ix.replicationFingerprint() >>> 0;
        blockSizes[name] = ix.currentBlockSizeTokens();
        // An endpoint may come in several consecutive pieces: each is encoded as it comes, the field is joined when
        // the next endpoint starts, and the loop yields between pieces once a slice's budget is spent.
        let open: SnapshotFieldBuilder | undefined;
        let openEndpoint = '';
        const close = (): void => {
          if (open === undefined) return;
          const key = `${name}\n${openEndpoint}`;
          const value = open.finish();
          fields.set(key, value);
          buffers.set(key, open.buffer);
          bytes += value.length;
          open = undefined;
        };
        let sliceStart = this.#cpuNow();
        for (const e of ix.exportSnapshot()) {
          if (open === undefined || e.endpoint !== openEndpoint) {
            close();
            const key = `${name}\n${e.endpoint}`;
            open = new SnapshotFieldBuilder(e.capacityBlocks, reuse.get(key), e.endpointBlocks);
            reuse.delete(key); // never two fields in one buffer
            openEndpoint = e.endpoint;
          }
          open.add(e.hashes);
          if (this.#cpuNow() - sliceStart >= this.settings.applySliceMs) {
            await this.#yieldNow();
            if (this.#closed) return false;
            sliceStart = this.#cpuNow();
          }
        }
        close();
      }
      const snapshot: Snapshot = { meta: { v: 1, createdAtMs: this.#o.clock.now(), origin: this.#o.origin, streamId, fingerprints, blockSizes }, fields };
      // The transport copies the fields during the call (transport.ts), so once it has settled they are free
      // for the next snapshot; after a failure (a timeout may leave the call running) they are not reused.
      this.#fieldBuffers = new Map();
      await this.#bounded(this.#t.putSnapshot(snapshot), Math.max(this.settings.callTimeoutMs, 5000));
      this.#fieldBuffers = buffers;
      this.stats.snapshotsWritten++;
      this.#m.snapshotWritten?.(bytes);
      return true;
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, 'cross-replica sync: snapshot not written');
      return false;
    } finally {
      if (written) this.#writingSnapshot = false;
    }
  }

  // ---------------------------------------------------------------- state

  #markReady(warm: boolean, note: string | undefined): void {
    if (this.#ready) return;
    this.#ready = true;
    this.#warm = warm;
    if (this.#warmupTimer !== undefined) this.#o.timers.clearTimeout(this.#warmupTimer);
    this.#m.warm?.(warm);
    if (!this.#closed) this.#o.logger.info({ warm, lastId: this.#lastId, note }, warm ? 'cross-replica sync: warm and caught up; ready' : 'cross-replica sync: ready (cold)');
    this.#resolveReady();
  }

  #setReaderUp(up: boolean, err?: unknown): void {
    this.#readerUp = up;
    this.#updateUp(err);
  }

  #setWriterUp(up: boolean, err?: unknown): void {
    if (this.#writerUp === up) return;
    this.#writerUp = up;
    this.#updateUp(err);
  }

  #updateUp(err: unknown): void {
    const up = this.#readerUp !== false && this.#writerUp !== false;
    if (up === this.#up || this.#closed) return;
    const first = this.#up === undefined;
    this.#up = up;
    this.#m.up?.(up);
    if (up && first) return;
    if (up) this.#o.logger.info({ transport: this.#t.description }, 'cross-replica sync: transport up again; syncing');
    else this.#o.logger.warn({ transport: this.#t.description, err: err instanceof Error ? err.message : String(err) }, 'cross-replica sync: transport down; routing on local state (fail-open)');
  }

  #bounded<T>(p: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.#o.timers.setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
      p.then(
        (v) => {
          this.#o.timers.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          this.#o.timers.clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#o.timers.setTimeout(resolve, ms));
  }

  #yieldNow(): Promise<void> {
    return new Promise((resolve) => this.#yield(resolve));
  }
}
