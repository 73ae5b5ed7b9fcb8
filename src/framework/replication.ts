/**
 * Cross-replica replication contracts (opt-in). Several EPP replicas route as one when the plugins that learn
 * from routing decisions share what they learnt. A plugin opts in by implementing one of these interfaces; the
 * runtime's syncer (src/datalayer/sync/) finds them at startup, carries their state between replicas over a
 * transport (Redis, or in memory in tests) and never puts the network on the request path: plugins only push
 * into a `PlacementSink` (an O(1) enqueue) and receive remote state on timers, off the request path.
 *
 * Two shapes, after what travels well:
 *  - `ReplicatedIndex`: a set of (endpoint, block hash) facts learnt from placements, e.g. the approximate
 *    prefix index. Replicas publish their placements and apply their peers' placements as if they had routed
 *    them. Applying a placement twice must change nothing but recency (idempotent), so loss, duplicates and
 *    reordering only cost freshness. A precise (KV-event) index can implement the same contract.
 *  - `ReplicatedGauges`: per-endpoint absolute counts owned by one replica, e.g. in-flight requests. Replicas
 *    publish their own current values periodically; readers add their peers' values while they are fresh.
 *    Absolute values heal at the next interval after any loss; nothing can leak.
 *
 * Per-replica state that must stay local (flow-control queues, per-request state) simply does not opt in.
 */
import type { Plugin } from './plugin.ts';

/** Where a replicated index reports the placements it learnt locally. Never blocks, never throws. */
export interface PlacementSink {
  /**
   * `endpoint` now (probably) caches the blocks `hashes` (prompt order, first block first), hashed with blocks
   * of `blockSizeTokens`. The sink copies nothing it does not need and returns at once.
   */
  enqueuePlacement(endpoint: string, blockSizeTokens: number, hashes: readonly bigint[]): void;
}

/**
 * Block hashes as uint32 halves, prompt order: block i's 64-bit hash is hi[i] · 2^32 + lo[i], for i < n (the arrays
 * may be longer). This is how the syncer hands over a peer's placement: read from the wire into arrays it reuses,
 * with no bigint allocated per hash (at 1,000 placements/s of 128 blocks, bigints alone made the young generation
 * collect twice as often).
 */
export interface BlockHashHalves {
  readonly n: number;
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
}

/** `hashes` as halves, in new arrays. */
export function toHalves(hashes: readonly bigint[]): BlockHashHalves {
  const hi = new Uint32Array(hashes.length);
  const lo = new Uint32Array(hashes.length);
  for (let i = 0; i < hashes.length; i++) {
    const h = hashes[i] as bigint;
    hi[i] = Number(BigInt.asUintN(64, h) >> 32n);
    lo[i] = Number(BigInt.asUintN(32, h));
  }
  return { n: hashes.length, hi, lo };
}

/** The hashes of `h` as bigints. */
export function fromHalves(h: BlockHashHalves): bigint[] {
  const out = new Array<bigint>(h.n);
  for (let i = 0; i < h.n; i++) out[i] = (BigInt(h.hi[i] as number) << 32n) | BigInt(h.lo[i] as number);
  return out;
}

/**
 * One endpoint's entries in a snapshot, or a piece of them: least recently used first, as uint32 halves (no bigint
 * per entry: an endpoint holds tens of thousands of blocks, and a snapshot is written every few seconds while
 * requests are served, so a bigint per entry made each endpoint a millisecond of work plus a megabyte for the young
 * generation). An endpoint may span several consecutive entries (pieces in recency order, oldest first), so that
 * neither side has to walk or import a whole endpoint without yielding to the event loop; the syncer joins them.
 * From `exportSnapshot`, the arrays are lent until the next entry is requested (an index may write every piece into
 * the same arrays: new ones per piece were megabytes of short-lived array buffers per snapshot, enough to start a
 * full collection); the syncer encodes each piece as it comes. Entries handed to `importSnapshot` belong to the
 * index.
 */
export interface IndexSnapshotEntry {
  readonly endpoint: string;
  readonly capacityBlocks: number;
  readonly hashes: BlockHashHalves;
  /**
   * Optional, exports only: the blocks the endpoint held when its walk began, so the syncer can size the endpoint's
   * field once instead of growing it piece by piece (the first snapshot after a start; later ones reuse buffers).
   */
  readonly endpointBlocks?: number;
}

export interface ReplicatedIndex extends Plugin {
  /**
   * A 32-bit fingerprint of everything two replicas must agree on for their placements to mean the same
   * thing (hash algorithm and seed scheme, block cap, ...; not the block size, which travels per placement).
   * Placements and snapshots from a peer with a different fingerprint are ignored and counted.
   */
  replicationFingerprint(): number;
  /**
   * The block size this replica hashes with now. A snapshot records it per index, and a replica whose current
   * block size differs refuses that snapshot's entries (counted as incompatible), as it refuses such placements.
   */
  currentBlockSizeTokens(): number;
  /** Called once by the syncer at startup (undefined = detach). The index then reports each local placement. */
  attachPlacementSink(sink: PlacementSink | undefined): void;
  /**
   * Applies a peer's placement as if this replica had routed it. Returns false (and changes nothing) when the
   * placement cannot be used here, e.g. its block size differs from this replica's current one. `hashes` is
   * only valid during the call: the syncer reuses its arrays for the next placement (copy what you keep).
   */
  applyRemotePlacement(endpoint: string, blockSizeTokens: number, hashes: BlockHashHalves): boolean;
  /**
   * The whole index, LRU order (oldest first), one entry per endpoint or several consecutive ones (pieces of a
   * few thousand blocks: the syncer yields to the event loop between entries, so a piece is the longest it holds
   * the loop). Called off the request path and lazily iterated: the index keeps serving (and changing) between
   * entries, so a piece may repeat a block touched since an earlier piece (its last occurrence is its recency).
   * An entry's arrays may be reused for the next one (see `IndexSnapshotEntry`).
   */
  exportSnapshot(): Iterable<IndexSnapshotEntry>;
  /**
   * Merges a snapshot: its entries are touched oldest first, so their recency order is preserved. The syncer
   * hands an endpoint over in several calls (consecutive pieces, oldest first) and yields between them.
   */
  importSnapshot(entries: readonly IndexSnapshotEntry[]): void;
}

/** One endpoint's gauge values from one replica. */
export interface EndpointGauge {
  readonly endpoint: string;
  readonly requests: number;
  readonly tokens: number;
}

export interface ReplicatedGauges extends Plugin {
  /** This replica's own current values (absolute), every endpoint with a non-zero value. */
  localGauges(): EndpointGauge[];
  /**
   * Replaces everything known about `origin` (another replica): its values count until `expiresAtMs` (the
   * plugin's clock) unless replaced or dropped before.
   */
  setRemoteGauges(origin: string, gauges: readonly EndpointGauge[], expiresAtMs: number): void;
  /** Forgets `origin` at once (it said goodbye, or the syncer stopped). */
  dropRemoteGauges(origin: string): void;
}

export function isReplicatedIndex(p: Plugin): p is ReplicatedIndex {
  const x = p as Partial<ReplicatedIndex>;
  return (
    typeof x.replicationFingerprint === 'function' &&
    typeof x.attachPlacementSink === 'function' &&
    typeof x.applyRemotePlacement === 'function' &&
    typeof x.exportSnapshot === 'function' &&
    typeof x.importSnapshot === 'function'
  );
}

export function isReplicatedGauges(p: Plugin): p is ReplicatedGauges {
  const x = p as Partial<ReplicatedGauges>;
  return typeof x.localGauges === 'function' && typeof x.setRemoteGauges === 'function' && typeof x.dropRemoteGauges === 'function';
}

/**
 * The syncer plugin (`dataLayer.crossReplicaSyncerPluginRef`): built from the config like any plugin, started
 * by the server once every plugin exists.
 */
export interface CrossReplicaSyncer extends Plugin {
  readonly isCrossReplicaSyncer: true;
}

export function isCrossReplicaSyncer(p: Plugin): p is CrossReplicaSyncer {
  return (p as Partial<CrossReplicaSyncer>).isCrossReplicaSyncer === true;
}
