/**
 * What the sync engine needs from a shared log + small key/value store. The Redis transport maps it to one
 * Stream per pool plus a snapshot hash; the memory transport implements it in-process with injectable faults.
 * Every method may reject (a transport fault) or never settle (a blackholed link): the engine bounds each call
 * with its own timeout and never lets a request wait on any of them.
 */

export interface StreamEntry {
  /** `<ms>-<seq>`, strictly increasing in the stream. */
  readonly id: string;
  readonly payload: Uint8Array;
}

export interface SnapshotMeta {
  /** Snapshot format version. */
  readonly v: 1;
  readonly createdAtMs: number;
  readonly origin: string;
  /** The stream position the snapshot covers: readers continue after it. */
  readonly streamId: string;
  /** Channel (plugin name) → fingerprint of the index that wrote it. */
  readonly fingerprints: Readonly<Record<string, number>>;
  /**
   * Channel → the block size the writer hashed with. Absent in snapshots written before it existed: those are
   * accepted as before.
   */
  readonly blockSizes?: Readonly<Record<string, number>>;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** `<channel>\n<endpoint>` → encoded snapshot field (see codec.ts). */
  readonly fields: ReadonlyMap<string, Uint8Array>;
}

export interface SyncTransport {
  /** For logs and metrics, e.g. `redis://host:6379` (no credentials). */
  readonly description: string;
  /**
   * Resolves once the transport can serve calls; rejects as soon as it knows it cannot (e.g. connection
   * refused). Optional: transports without a connection phase omit it. Bounded by the engine's warm-up.
   */
  connect?(): Promise<void>;
  /**
   * Appends one batch; resolves with its id. The payload is the transport's from then on: the caller never changes
   * it (the Redis transport writes it to the socket uncopied, and may still be writing it after a timeout; the
   * memory transport keeps it as the entry).
   */
  append(payload: Uint8Array): Promise<string>;
  /**
   * Entries after `afterId`, oldest first, at most `count`; waits up to `blockMs` for the first one (resolves
   * with [] on timeout).
   */
  read(afterId: string, count: number, blockMs: number): Promise<StreamEntry[]>;
  /**
   * Id of the newest entry removed by trimming (undefined when none, or the stream is absent). A reader whose
   * last id is older than this has missed entries.
   */
  trimmedThrough(): Promise<string | undefined>;
  /**
   * Stores `snapshot` as the current one. Its field arrays are lent for the call: the syncer writes its next
   * snapshot into the same buffers once the returned promise has settled, so a transport copies what it keeps
   * (Redis: each HSET writes the fields to the socket uncopied and has settled by then; the memory transport
   * copies).
   */
  putSnapshot(snapshot: Snapshot): Promise<void>;
  getSnapshot(): Promise<Snapshot | undefined>;
  /** Takes or renews the snapshot-writer lease for `holder`; true when `holder` holds it afterwards. */
  tryLease(holder: string, ttlMs: number): Promise<boolean>;
  /** Drops and re-opens the reading link (after a watchdog timeout: a blackholed link never errors itself). */
  resetReader(): void;
  close(): Promise<void>;
}

/** The first id of the stream at `ms` (entries at or after that time sort after it). */
export function idAt(ms: number): string {
  return `${Math.max(0, Math.floor(ms))}-0`;
}
