/**
 * Observability wiring of a running EPP: binds the pool and the prefix indexes to the metrics, refreshes the pool
 * gauges every `--refresh-prometheus-metrics-interval`, and serves the admin HTTP server on `--metrics-port`.
 */
import type { EndpointStore } from '../../framework/datalayer.ts';
import type { Logger, Plugin } from '../../framework/plugin.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import { ApproxPrefixCacheProducer } from '../../plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { registerPrecisePrefixMetrics } from '../../observability/precise-prefix-metrics.ts';
import { PrecisePrefixCacheProducer } from '../../plugins/requestcontrol/precise-prefix-cache-producer/index.ts';
import { TokenProducer } from '../../plugins/requestcontrol/token-producer/index.ts';
import { AdminServer } from './server.ts';
import type { MetricsAuthorizer } from './auth.ts';

export { AdminServer, type AdminServerOptions } from './server.ts';
export { KubernetesAuthorizer, StaticTokenAuthorizer, type MetricsAuthorizer } from './auth.ts';

/** Upstream `--refresh-prometheus-metrics-interval`. */
export const DEFAULT_POOL_METRICS_REFRESH_MS = 5_000;
/** Upstream `--metrics-staleness-threshold`. */
export const DEFAULT_METRICS_STALENESS_MS = 2_000;

export interface ObservabilityOptions {
  readonly metrics: EppMetrics;
  readonly store: EndpointStore;
  /** The `name` label of the `inference_pool_*` gauges. */
  readonly poolName: string;
  readonly plugins: readonly Plugin[];
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
  const producers = o.plugins.filter((p): p is ApproxPrefixCacheProducer => p instanceof ApproxPrefixCacheProducer);
  metrics.bindPrefixIndexers(producers.map((p) => p.index));
  const onMatch = (ratio: number, bytes: number): void => {
    metrics.prefixIndexerHitRatio.observe(ratio);
    metrics.prefixIndexerHitBytes.observe(bytes);
  };
  for (const p of producers) p.onPrefixMatch = onMatch;
  const precise = o.plugins.filter((p): p is PrecisePrefixCacheProducer => p instanceof PrecisePrefixCacheProducer);
  const tokenSources = o.plugins.filter((p): p is TokenProducer => p instanceof TokenProducer);
  if (precise.length > 0 || tokenSources.length > 0) {
    registerPrecisePrefixMetrics(metrics.registry, precise.map((p) => p.metricsSource()), tokenSources.map((p) => p.metricsSource()));
  }

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
      for (const p of producers) if (p.onPrefixMatch === onMatch) p.onPrefixMatch = undefined;
      await admin?.close();
    },
  };
}
