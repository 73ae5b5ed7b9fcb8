/**
 * How a plugin exposes metrics: through `PluginHandle.metrics`, at construction, never by the server checking
 * its class. The runtime collects the sources (src/runtime/plugin-metrics.ts) and the admin wiring
 * (src/server/admin) exports them; a plugin that exposes nothing has no metrics of its own. Sources are read at
 * scrape time, off the request path: every method here must be cheap and must not throw.
 */

/** The approximate prefix index of `approx-prefix-cache-producer`. */
export interface PrefixIndexMetricsSource {
  /** Entries held; every index's size adds up to `inference_extension_prefix_indexer_size`. */
  readonly size: number;
  /**
   * The runtime passes the observer of each prefix match (hit ratio 0..1, hit bytes) once metrics are served,
   * and undefined when they stop. The plugin calls it synchronously on every match it computes.
   */
  observeMatches(observer: ((hitRatio: number, hitBytes: number) => void) | undefined): void;
}

/** What the metrics read from one precise producer . */
export interface PrecisePrefixMetricsSource {
  readonly name: string;
  readonly counters: Readonly<Record<string, number>>;
  /** Cached block replicas per tier, request keys, bytes held by the index. */
  indexStats(): { readonly byTier: Readonly<Record<string, number>>; readonly requestKeys: number; readonly bytes: number };
  /** Sync phase per endpoint. */
  phases(): ReadonlyMap<string, string>;
  /** Prediction errors since the last call. */
  drainPredictionErrors(): number[];
}

export interface TokenSourceMetricsSource {
  readonly name: string;
  readonly backend: string;
  readonly requests: number;
  readonly failures: number;
  /** Backend `local`: requests tokenized locally, and parity checks against render by result. */
  readonly localRequests: number;
  readonly parityPasses: number;
  readonly parityFailures: number;
  /** Latencies (seconds) since the last call. */
  drainLatencies(): number[];
}

export interface PluginMetrics {
  prefixIndex(source: PrefixIndexMetricsSource): void;
  precisePrefix(source: PrecisePrefixMetricsSource): void;
  tokenSource(source: TokenSourceMetricsSource): void;
}
