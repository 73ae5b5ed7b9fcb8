/**
 * Metrics of precise prefix-cache routing (`precise-prefix-cache-producer`, `token-producer`), registered on an
 * `EppMetrics` registry when such plugins are configured (docs/precise-prefix.md lists them). Values are read from the
 * plugins at scrape time; the histograms drain the samples the plugins collected since the last scrape.
 * Labels are bounded: `producer` and `source` are plugin names, `endpoint` the pool's endpoints.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PrecisePrefixMetricsSource, TokenSourceMetricsSource } from '../framework/plugin-metrics.ts';

const SYNC_PHASE_LABELS = ['CONNECTING', 'SYNCED', 'REPLAYING', 'DESYNCED', 'SILENT'] as const;

/** Counter keys → metric name and label (every counter is exported, so none can be forgotten silently). */
const COUNTERS: ReadonlyArray<readonly [string, string, string, Record<string, string>]> = [
  ['batches', 'epp_kv_events_batches_total', 'KV event batches applied.', {}],
  ['duplicates', 'epp_kv_events_duplicate_batches_total', 'KV event batches received twice (same seq), ignored.', {}],
  ['gaps', 'epp_kv_events_gaps_total', 'Sequence gaps detected (lost batches).', {}],
  ['restarts', 'epp_kv_events_engine_restarts_total', 'Engine restarts detected (seq went back).', {}],
  ['replaysOk', 'epp_kv_events_replays_total', 'Replays from an engine replay socket, by result.', { result: 'ok' }],
  ['replaysFailed', 'epp_kv_events_replays_total', 'Replays from an engine replay socket, by result.', { result: 'failed' }],
  ['snapshotsOk', 'epp_kv_events_snapshots_total', 'Recoveries from a full dump (/kv_state), by result.', { result: 'ok' }],
  ['snapshotsFailed', 'epp_kv_events_snapshots_total', 'Recoveries from a full dump (/kv_state), by result.', { result: 'failed' }],
  ['desyncs', 'epp_kv_events_desyncs_total', 'Endpoints marked DESYNCED (scored by the approximate fallback).', {}],
  ['silences', 'epp_kv_events_silences_total', 'Endpoints marked SILENT: requests served that stored new blocks, no KV events within the bound (scored by the approximate fallback until events resume).', {}],
  ['blocksStored', 'epp_kv_events_blocks_total', 'Cached blocks stored / removed by events.', { op: 'stored' }],
  ['blocksRemoved', 'epp_kv_events_blocks_total', 'Cached blocks stored / removed by events.', { op: 'removed' }],
  ['orphanStores', 'epp_kv_events_orphan_stores_total', 'Blocks stored under a parent the index does not know (lost history), skipped.', {}],
  ['unknownRemoves', 'epp_kv_events_unknown_removes_total', 'Removals of blocks the index does not hold.', {}],
  ['keyConflicts', 'epp_kv_events_key_conflicts_total', 'Engine hashes stored again with different tokens.', {}],
  ['clears', 'epp_kv_events_clears_total', 'AllBlocksCleared events applied.', {}],
  ['unknownTags', 'epp_kv_events_skipped_total', 'Events or fields skipped, by reason.', { reason: 'unknown_tag' }],
  ['unknownFields', 'epp_kv_events_skipped_total', 'Events or fields skipped, by reason.', { reason: 'unknown_field' }],
  ['malformedEvents', 'epp_kv_events_skipped_total', 'Events or fields skipped, by reason.', { reason: 'malformed_event' }],
  ['malformed', 'epp_kv_events_skipped_total', 'Events or fields skipped, by reason.', { reason: 'malformed_message' }],
  ['skipped', 'epp_kv_events_skipped_total', 'Events or fields skipped, by reason.', { reason: 'unindexed_medium_or_kind' }],
  ['blockSizeMismatches', 'epp_kv_events_skipped_total', 'Events or fields skipped, by reason.', { reason: 'block_size_mismatch' }],
  ['requestsPrecise', 'epp_precise_prefix_requests_total', 'Requests scored by the precise producer, by mode.', { mode: 'precise' }],
  ['requestsNoTokens', 'epp_precise_prefix_requests_total', 'Requests scored by the precise producer, by mode.', { mode: 'no_tokens_fallback' }],
  ['fallbackCandidates', 'epp_precise_prefix_fallback_candidates_total', 'Candidates scored by the approximate fallback because their endpoint was not in sync.', {}],
];

const bound = new WeakMap<Registry, { producers: readonly PrecisePrefixMetricsSource[]; tokenSources: readonly TokenSourceMetricsSource[] }>();

/** Registers the metrics on `registry` (once; a later call only replaces the sources they read). */
export function registerPrecisePrefixMetrics(
  registry: Registry,
  producerList: readonly PrecisePrefixMetricsSource[],
  tokenSourceList: readonly TokenSourceMetricsSource[],
): void {
  const existing = bound.get(registry);
  if (existing !== undefined) {
    existing.producers = producerList;
    existing.tokenSources = tokenSourceList;
    return;
  }
  const holder = { producers: producerList, tokenSources: tokenSourceList };
  bound.set(registry, holder);
  const producers = { [Symbol.iterator]: () => holder.producers[Symbol.iterator]() };
  const tokenSources = { [Symbol.iterator]: () => holder.tokenSources[Symbol.iterator]() };
  const r = [registry];
  const byName = new Map<string, { help: string; labels: Set<string>; rows: [string, Record<string, string>][] }>();
  for (const [key, name, help, labels] of COUNTERS) {
    const m = byName.get(name) ?? { help, labels: new Set(['producer']), rows: [] };
    for (const l of Object.keys(labels)) m.labels.add(l);
    m.rows.push([key, labels]);
    byName.set(name, m);
  }
  for (const [name, m] of byName) {
    new Counter({
      name,
      help: m.help,
      labelNames: [...m.labels],
      registers: r,
      collect() {
        this.reset();
        for (const p of producers) for (const [key, labels] of m.rows) this.inc({ producer: p.name, ...labels }, p.counters[key] ?? 0);
      },
    });
  }
  new Gauge({
    name: 'epp_kv_index_blocks',
    help: 'Cached block replicas held by the precise index, per tier.',
    labelNames: ['producer', 'tier'],
    registers: r,
    collect() {
      this.reset();
      for (const p of producers) for (const [tier, n] of Object.entries(p.indexStats().byTier)) this.set({ producer: p.name, tier }, n);
    },
  });
  new Gauge({
    name: 'epp_kv_index_request_keys',
    help: 'Distinct request keys (prefix blocks) in the precise index.',
    labelNames: ['producer'],
    registers: r,
    collect() {
      this.reset();
      for (const p of producers) this.set({ producer: p.name }, p.indexStats().requestKeys);
    },
  });
  new Gauge({
    name: 'epp_kv_index_bytes',
    help: 'Bytes held by the precise index tables.',
    labelNames: ['producer'],
    registers: r,
    collect() {
      this.reset();
      for (const p of producers) this.set({ producer: p.name }, p.indexStats().bytes);
    },
  });
  new Gauge({
    name: 'epp_kv_endpoint_phase',
    help: 'Event sync phase of each endpoint (1 for its current phase): SYNCED and REPLAYING are scored precisely, CONNECTING, DESYNCED and SILENT by the approximate fallback.',
    labelNames: ['producer', 'endpoint', 'phase'],
    registers: r,
    collect() {
      this.reset();
      for (const p of producers) {
        for (const [endpoint, phase] of p.phases()) {
          for (const ph of SYNC_PHASE_LABELS) this.set({ producer: p.name, endpoint, phase: ph }, ph === phase ? 1 : 0);
        }
      }
    },
  });
  new Histogram({
    name: 'epp_precise_prefix_prediction_error',
    help: '|predicted − reported cached tokens| / prompt tokens of requests routed to an otherwise idle endpoint (the drift check).',
    labelNames: ['producer'],
    buckets: [0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1],
    registers: r,
    collect() {
      for (const p of producers) for (const e of p.drainPredictionErrors()) this.observe({ producer: p.name }, e);
    },
  });
  new Histogram({
    name: 'epp_token_source_latency_seconds',
    help: 'Latency of producing the token ids of one request (render round trip or local tokenizer).',
    labelNames: ['source', 'backend'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: r,
    collect() {
      for (const t of tokenSources) for (const s of t.drainLatencies()) this.observe({ source: t.name, backend: t.backend }, s);
    },
  });
  new Counter({
    name: 'epp_token_source_failures_total',
    help: 'Requests whose token ids could not be produced (they fall back to approximate matching).',
    labelNames: ['source', 'backend'],
    registers: r,
    collect() {
      this.reset();
      for (const t of tokenSources) this.inc({ source: t.name, backend: t.backend }, t.failures);
    },
  });
  const local = { [Symbol.iterator]: () => holder.tokenSources.filter((t) => t.backend === 'local')[Symbol.iterator]() };
  new Counter({
    name: 'epp_token_source_local_requests_total',
    help: 'Requests tokenized by the local tokenizer (backend local, while its parity with render holds).',
    labelNames: ['source'],
    registers: r,
    collect() {
      this.reset();
      for (const t of local) this.inc({ source: t.name }, t.localRequests);
    },
  });
  new Counter({
    name: 'epp_token_source_parity_checks_total',
    help: 'Parity checks of the local tokenizer against render (probe sets, sampled requests), by result; a failure sends requests back to render.',
    labelNames: ['source', 'result'],
    registers: r,
    collect() {
      this.reset();
      for (const t of local) {
        this.inc({ source: t.name, result: 'agree' }, t.parityPasses);
        this.inc({ source: t.name, result: 'disagree' }, t.parityFailures);
      }
    },
  });
}
