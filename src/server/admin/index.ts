/**
 * Observability wiring of a running EPP: binds the pool and the prefix indexes to the metrics, refreshes the pool
 * gauges every `--refresh-prometheus-metrics-interval`, and serves the admin HTTP server on `--metrics-port`.
 */
import type { EndpointStore } from '../../framework/datalayer.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import { registerPrecisePrefixMetrics } from '../../observability/precise-prefix-metrics.ts';
import type { PluginMetricSources } from '../../runtime/plugin-metrics.ts';
import { AdminServer } from './server.ts';
import { DEFAULT_METRICS_STALENESS_MS, DEFAULT_POOL_METRICS_REFRESH_MS } from '../defaults.ts';
import type { MetricsAuthorizer } from './auth.ts';

export { AdminServer, type AdminServerOptions } from './server.ts';
export { KubernetesAuthorizer, StaticTokenAuthorizer, type MetricsAuthorizer } from './auth.ts';


export interface ObservabilityOptions {
  readonly metrics: EppMetrics;
  readonly store: EndpointStore;
  /** The `name` label of the `inference_pool_*` gauges. */
  readonly poolName: string;
  /** What the plugins exposed through their handle's `metrics`. */
  readonly pluginMetrics: PluginMetricSources;
  readonly logger: Logger;
  readonly now: () => number;
  /** HTTP port for /metrics, /healthz, /readyz; -1 = no admin server (tests that read the registry). */
  readonly port: number;
  readonly host: string;
  readonly refreshIntervalMs?: number;
  readonly stalenessMs?: number;
  /** `--metrics-endpoint-auth`: guards /metrics. */
  readonly authorizer?: MetricsAuthorizer;
  /** Readiness for /readyz (default: the pool is known). */
  readonly isReady?: () => boolean;
}

export interface RunningObservability {
  /** The bound admin port, or undefined when no admin server runs. */
  readonly port: number | undefined;
  /** Recomputes the pool gauges now (the timer does this every refresh interval). */
  refreshPoolGauges(): void;
  close(): Promise<void>;
}

export async function startObservability(o: ObservabilityOptions): Promise<RunningObservability> {
  const { metrics } = o;
  metrics.bindPool({ name: o.poolName, endpoints: () => o.store.endpoints() });
  const { prefixIndexes, precisePrefixes, tokenSources } = o.pluginMetrics;
  metrics.bindPrefixIndexers([...prefixIndexes]);
  const onMatch = (ratio: number, bytes: number): void => {
    metrics.prefixIndexerHitRatio.observe(ratio);
    metrics.prefixIndexerHitBytes.observe(bytes);
  };
  for (const p of prefixIndexes) p.observeMatches(onMatch);
  if (precisePrefixes.length > 0 || tokenSources.length > 0) registerPrecisePrefixMetrics(metrics.registry, [...precisePrefixes], [...tokenSources]);

  const stalenessMs = o.stalenessMs ?? DEFAULT_METRICS_STALENESS_MS;
  const refresh = (): void => metrics.refreshPoolGauges(o.now(), stalenessMs);
  refresh();
  const timer = setInterval(refresh, o.refreshIntervalMs ?? DEFAULT_POOL_METRICS_REFRESH_MS);
  timer.unref();

  let admin: AdminServer | undefined;
  if (o.port >= 0) {
    admin = new AdminServer({ metrics, isReady: o.isReady ?? (() => o.store.poolKnown()), logger: o.logger, ...(o.authorizer ? { authorizer: o.authorizer } : {}) });
    try {
      await admin.listen(o.port, o.host);
    } catch (err) {
      clearInterval(timer);
      throw err;
    }
  }
  return {
    port: admin?.port,
    refreshPoolGauges: refresh,
    async close() {
      clearInterval(timer);
      for (const p of prefixIndexes) p.observeMatches(undefined);
      await admin?.close();
    },
  };
}
