/**
 * Builds the cross-replica sync of a running EPP from its config: the engine, over Redis (or an injected
 * transport), carrying every plugin that implements the replication contracts, with `epp_ha_*` metrics.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock, Logger, Plugin } from '../../framework/plugin.ts';
import { isReplicatedGauges, isReplicatedIndex } from '../../framework/replication.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import { haSyncMetricsOf } from '../../observability/ha-sync-metrics.ts';
import type { RedisCrossReplicaSyncer } from '../../plugins/datalayer/syncer/redis-cross-replica-syncer/index.ts';
import type { Timers } from '../../util/timers.ts';
import { SyncEngine, type SyncMetricsSink, type SyncSettings } from './engine.ts';
import type { SyncTransport } from './transport.ts';

export { SyncEngine, DEFAULT_SYNC_SETTINGS, type SyncSettings, type SyncMetricsSink } from './engine.ts';
export type { SyncTransport } from './transport.ts';

export interface CrossReplicaSyncOptions {
  readonly syncer: RedisCrossReplicaSyncer;
  /** `dataLayer.crossReplicaSyncInterval`, ms. */
  readonly syncIntervalMs: number;
  readonly plugins: readonly Plugin[];
  /** `<namespace>/<pool>`: which fleet this replica belongs to (the key hash tag). */
  readonly pool: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: EppMetrics;
  /** Replaces the Redis transport (tests, models). */
  readonly transport?: SyncTransport;
  /** Timers of the engine (the server passes unref'd real timers). */
  readonly timers: Timers;
  /** Overrides of the engine settings derived from the plugin parameters (tests, benchmarks). */
  readonly settings?: Partial<SyncSettings>;
}

/** Loads the Redis client only when no transport is injected (it is large: ≈ 0.2 s and 27 MiB to load). */
export async function createCrossReplicaSync(o: CrossReplicaSyncOptions): Promise<SyncEngine> {
  const p = o.syncer.parameters;
  const replica = p.replicaName ?? process.env.POD_NAME ?? hostname();
  const origin = `${replica.slice(0, 200)}:${randomBytes(4).toString('hex')}`;
  const logger = o.logger.child({ component: 'cross-replica-sync', origin });
  const transport =
    o.transport ??
    new (await import('./redis-transport.ts')).RedisTransport({
      ...(p.url !== undefined ? { url: p.url } : {}),
      ...(p.sentinels !== undefined ? { sentinels: p.sentinels, ...(p.name !== undefined ? { name: p.name } : {}) } : {}),
      ...(p.username !== undefined ? { username: p.username } : {}),
      ...(o.syncer.password() !== undefined ? { password: o.syncer.password() as string } : {}),
      ...(p.sentinelPassword !== undefined ? { sentinelPassword: p.sentinelPassword } : {}),
      ...(p.tls !== undefined ? { tls: p.tls } : {}),
      db: p.db,
      keyPrefix: p.keyPrefix,
      pool: o.pool,
      retentionMs: p.retentionSeconds * 1000,
      snapshotIntervalMs: p.snapshotIntervalSeconds * 1000,
      commandTimeoutMs: p.commandTimeoutMs,
      logger,
    });
  const m = haSyncMetricsOf(o.metrics, () => o.clock.now());
  const sink: SyncMetricsSink = {
    up: (up) => m.up.set(up ? 1 : 0),
    peers: (n) => m.peers.set(n),
    warm: (w) => m.warm.set(w ? 1 : 0),
    published: (bytes) => {
      m.publishedBatches.inc();
      m.publishedBytes.inc(bytes);
    },
    dropped: (reason, n) => m.droppedBatches.inc({ reason }, n),
    applied: (n) => m.appliedPlacements.inc(n),
    lagSeconds: (s) => m.lag.observe(s),
    gaps: (n, reason) => m.gaps.inc({ reason }, n),
    incompatible: (n) => m.incompatible.inc(n),
    snapshotLoaded: (ageS, loadS) => {
      m.lastSnapshotAtMs = o.clock.now() - ageS * 1000;
      m.snapshotLoadSeconds.set(loadS);
    },
    snapshotWritten: (bytes) => {
      m.lastSnapshotAtMs = o.clock.now();
      m.snapshotBytes.set(bytes);
    },
  };
  m.up.set(0);
  m.warm.set(0);
  return new SyncEngine({
    transport,
    origin,
    indexes: o.plugins.filter(isReplicatedIndex),
    gauges: o.plugins.filter(isReplicatedGauges),
    settings: {
      batchMs: p.batchMs,
      maxBatchBytes: p.maxBatchBytes,
      coalesceMs: p.coalesceMs,
      gaugeIntervalMs: o.syncIntervalMs,
      loadStaleMs: p.loadStaleMs,
      maxQueueBytes: p.maxQueueBytes,
      snapshotIntervalMs: p.snapshotIntervalSeconds * 1000,
      warmupTimeoutMs: p.warmupTimeoutMs,
      retentionMs: p.retentionSeconds * 1000,
      readBlockMs: p.readBlockMs,
      callTimeoutMs: p.commandTimeoutMs,
      maxLagMs: p.maxLagMs,
      ...o.settings,
    },
    clock: o.clock,
    timers: o.timers,
    logger,
    metrics: sink,
  });
}
