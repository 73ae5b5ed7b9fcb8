/** Cross-replica sync metrics (`epp_ha_*`, docs/replicas.md): registered only when a cross-replica syncer is configured. */
import type { Registry } from 'prom-client';
import { systemClock } from '../util/clock.ts';
import type { EppMetrics } from './metrics.ts';
import { registerMetrics, type MetricTable, type RegisteredMetrics } from './metric-table.ts';

const HA_LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `epp_ha_*` (ours; docs/replicas.md). */
const HA_SYNC_METRICS = {
  up: { kind: 'gauge', name: 'epp_ha_sync_up', help: '1 while this replica can both publish to and read from the sync transport (Redis), else 0 (routing continues on local state).' },
  peers: { kind: 'gauge', name: 'epp_ha_sync_peers', help: 'Other replicas heard from within loadStaleMs.' },
  warm: { kind: 'gauge', name: 'epp_ha_sync_warm', help: '1 when this replica started warm (snapshot + log caught up), 0 when it started cold.' },
  publishedBatches: { kind: 'counter', name: 'epp_ha_sync_published_batches_total', help: 'Sync batches appended to the transport.' },
  publishedBytes: { kind: 'counter', name: 'epp_ha_sync_published_bytes_total', help: 'Bytes of sync batches appended to the transport.' },
  droppedBatches: { kind: 'counter', name: 'epp_ha_sync_dropped_batches_total', help: 'Sync batches dropped, by reason: queue_full (oldest dropped at the publish queue cap), transport_error, timeout, malformed (received and unreadable).', labels: ['reason'] },
  appliedPlacements: { kind: 'counter', name: 'epp_ha_sync_applied_placements_total', help: "Peers' placements applied to this replica's index." },
  lag: { kind: 'histogram', name: 'epp_ha_sync_lag_seconds', help: 'From a peer sending a batch of placements to this replica applying it (wall clocks of both).', buckets: HA_LAG_BUCKETS },
  gaps: { kind: 'counter', name: 'epp_ha_sync_gaps_total', help: 'Batches missed, by reason: seq (a peer\'s sequence skipped: lost batches), trimmed (the log was trimmed past this reader; snapshot reloaded).', labels: ['reason'] },
  incompatible: { kind: 'counter', name: 'epp_ha_sync_incompatible_total', help: 'Placements ignored because the peer hashes differently (fingerprint, block size or wire version).' },
  snapshotAge: { kind: 'gauge', name: 'epp_ha_sync_snapshot_age_seconds', help: 'Age of the newest snapshot this replica loaded or wrote (-1 = none yet).' },
  snapshotLoadSeconds: { kind: 'gauge', name: 'epp_ha_sync_snapshot_load_seconds', help: 'Time the last snapshot load took (fetch + import).' },
  snapshotBytes: { kind: 'gauge', name: 'epp_ha_sync_snapshot_bytes', help: 'Size of the last snapshot this replica wrote.' },
} as const satisfies MetricTable;

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- the metric fields are the table's, registered in the constructor
export interface HaSyncMetrics extends RegisteredMetrics<typeof HA_SYNC_METRICS> {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface above
export class HaSyncMetrics {
  /** When the newest snapshot this replica loaded or wrote was taken (ms since epoch; 0 = none). */
  lastSnapshotAtMs = 0;

  constructor(registry: Registry, now: () => number = systemClock.now) {
    const lastSnapshotAtMs = (): number => this.lastSnapshotAtMs;
    Object.assign(
      this,
      registerMetrics(registry, HA_SYNC_METRICS, {
        snapshotAge() {
          const at = lastSnapshotAtMs();
          this.set(at === 0 ? -1 : Math.max(0, (now() - at) / 1000));
        },
      }),
    );
  }
}

const haSyncMetrics = new WeakMap<Registry, HaSyncMetrics>();

/** The `epp_ha_*` metrics of an `EppMetrics` registry (registered on first use, once per registry). */
export function haSyncMetricsOf(metrics: EppMetrics, now?: () => number): HaSyncMetrics {
  let m = haSyncMetrics.get(metrics.registry);
  if (m === undefined) {
    m = new HaSyncMetrics(metrics.registry, now);
    haSyncMetrics.set(metrics.registry, m);
  }
  return m;
}
