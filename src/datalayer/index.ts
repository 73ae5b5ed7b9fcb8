/**
 * The data layer's single entry point: discovery (static list, endpoints file, or Kubernetes) feeding a
 * copy-on-write endpoint store, plus one metrics collector per endpoint. See docs/datalayer.md.
 */
import type { EndpointStore } from '../framework/datalayer.ts';
import {
  isDataSource,
  isExtractor,
  isNotificationExtractor,
  isNotificationSource,
  type DataSource,
  type EndpointEvent,
  type Extractor,
  type NotificationExtractor,
  type NotificationSource,
} from '../framework/datasource.ts';
import { EppConfigError } from '../framework/errors.ts';
import { typedNameString, type Clock, type Logger, type Plugin } from '../framework/plugin.ts';
import { CollectorSet, type CollectorStats, type SourceBinding } from './collector.ts';
import { Datastore, type EndpointChangeListener } from './datastore.ts';
import { EndpointsFileDiscovery } from './discovery/file.ts';
import type { KubernetesDiscoveryOptions } from './discovery/kubernetes.ts';
import { parseStaticEndpoints } from './discovery/static.ts';
import { SharedTicker, type Ticker } from './ticker.ts';

export { Datastore, type EndpointChange, type EndpointChangeListener } from './datastore.ts';
export { IntervalTicker, SharedTicker, type Ticker, type TickerHandle } from './ticker.ts';
export type { CollectorStats } from './collector.ts';
export type { KubernetesDiscoveryOptions } from './discovery/kubernetes.ts';
export { parseEndpointsFile } from './discovery/file.ts';
export { parseStaticEndpoints, parseHostPort } from './discovery/static.ts';

import { DEFAULT_REFRESH_INTERVAL_MS } from './defaults.ts';

const DEFAULT_POLL_TIMEOUT_MS = 1000;

export interface DataLayerOptions {
  /** Static endpoints, `ip:port` (entries may be comma lists). */
  readonly static?: readonly string[];
  /** Path of a watched YAML/JSON endpoints file. */
  readonly endpointsFile?: string;
  /** InferencePool mode (`poolName`) or standalone selector mode (`endpointSelector` + `targetPorts`). */
  readonly kubernetes?: KubernetesDiscoveryOptions;
  /** Namespace recorded on static/file endpoints; default `default`. (Kubernetes mode uses `poolNamespace`.) */
  readonly namespace?: string;
  /** Scrape interval per endpoint (`--refresh-metrics-interval`); ≤ 0 or absent → 50 ms. */
  readonly refreshIntervalMs?: number;
  /** Upper bound of one poll; default 1000 ms (upstream's collector timeout). */
  readonly pollTimeoutMs?: number;
  /** Data sources with their extractors, as instantiated from `dataLayer.sources` (config order). */
  readonly sources: ReadonlyArray<{ readonly source: Plugin; readonly extractors: readonly Plugin[] }>;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Defaults to `SharedTicker` (one staggered timer per interval). Tests pass `ManualTicker`. */
  readonly ticker?: Ticker;
}

export interface DataLayer {
  /** The pool as the director and plugins read it. */
  readonly store: EndpointStore;
  /**
   * Resolves the first time the pool is known (static list parsed, file loaded, pods of the InferencePool
   * listed). Rejects if the data layer is closed first. Later changes of readiness: `store.poolKnown()`.
   */
  whenReady(): Promise<void>;
  /** Subscribes to endpoint membership/metadata changes (not metrics). Returns the unsubscribe function. */
  onEndpointsChanged(listener: EndpointChangeListener): () => void;
  /** Aggregate collector counters. */
  stats(): Readonly<CollectorStats>;
  /** Resolves when every collection running right now has finished (tests, shutdown). */
  settled(): Promise<void>;
  /** Stops discovery and collectors and closes the sources. Idempotent. */
  close(): Promise<void>;
}

/** Validates and pairs sources with extractors. Throws EppConfigError. */
function bindSources(sources: DataLayerOptions['sources']): SourceBinding[] {
  // Upstream: "data layer enabled but no data sources configured" is a startup error.
  if (sources.length === 0) {
    throw new EppConfigError('data layer enabled but no data sources configured', 'add a metrics-data-source with a core-metrics-extractor to dataLayer.sources');
  }
  const seen = new Set<Plugin>();
  return sources.filter(({ source }) => !isNotificationSource(source)).map(({ source, extractors }) => {
    const sname = typedNameString(source.typedName);
    if (!isDataSource(source)) throw new EppConfigError(`dataLayer.sources: plugin '${sname}' is not a data source`, 'reference a data source plugin (e.g. metrics-data-source)');
    if (seen.has(source)) throw new EppConfigError(`dataLayer.sources: data source '${sname}' is listed twice`, 'list each source once');
    seen.add(source);
    const bound: Extractor[] = extractors.map((x) => {
      const xname = typedNameString(x.typedName);
      if (!isExtractor(x)) throw new EppConfigError(`dataLayer.sources[${sname}]: plugin '${xname}' is not an extractor`, 'reference an extractor plugin (e.g. core-metrics-extractor)');
      if (x.inputType !== source.outputType) {
        throw new EppConfigError(
          `dataLayer.sources[${sname}]: extractor '${xname}' expects '${x.inputType}' but the source produces '${source.outputType}'`,
          'pair the extractor with a source of the matching output type',
        );
      }
      return x;
    });
    (source as DataSource).bindExtractors?.(bound);
    return { source, extractors: bound };
  });
}

/** A notification source with its extractors (validated). */
export interface NotificationBinding {
  readonly source: NotificationSource;
  readonly extractors: readonly NotificationExtractor[];
}

/** Validates and pairs the notification sources (pushed events, not polled) with their extractors. */
export function bindNotificationSources(sources: DataLayerOptions['sources']): NotificationBinding[] {
  const seen = new Set<Plugin>();
  const keys = new Map<string, string>();
  return sources.flatMap(({ source, extractors }) => {
    if (!isNotificationSource(source)) return [];
    const sname = typedNameString(source.typedName);
    if (seen.has(source)) throw new EppConfigError(`dataLayer.sources: data source '${sname}' is listed twice`, 'list each source once');
    seen.add(source);
    if (source.uniqueKey !== undefined) {
      const other = keys.get(source.uniqueKey);
      if (other !== undefined) {
        throw new EppConfigError(`dataLayer.sources: '${sname}' and '${other}' both deliver ${source.uniqueKey}`, `keep one ${source.typedName.type} per ${source.uniqueKey}`);
      }
      keys.set(source.uniqueKey, sname);
    }
    const bound = extractors.map((x) => {
      const xname = typedNameString(x.typedName);
      if (!isNotificationExtractor(x) || x.inputType !== source.outputType) {
        throw new EppConfigError(
          `dataLayer.sources[${sname}]: plugin '${xname}' cannot take '${source.outputType}' events`,
          `pair ${source.typedName.type} with an extractor of its events${source.outputType === 'endpoint-events' ? ' (e.g. inflight-load-producer)' : ''}`,
        );
      }
      return x;
    });
    return [{ source, extractors: bound }];
  });
}

function endpointEvents(changes: Parameters<EndpointChangeListener>[0]): EndpointEvent[] {
  return changes.map((c) => ({ type: c.kind === 'removed' ? 'deleted' : c.kind, endpoint: c.endpoint.metadata }));
}

export async function startDataLayer(options: DataLayerOptions): Promise<DataLayer> {
  const modes = [options.static !== undefined, options.endpointsFile !== undefined, options.kubernetes !== undefined].filter(Boolean).length;
  if (modes !== 1) {
    throw new EppConfigError(
      `exactly one endpoint discovery mode must be configured, got ${modes}`,
      'pass one of --endpoints, --endpoints-file, --pool-name or --endpoint-selector',
    );
  }
  const refreshIntervalMs = options.refreshIntervalMs !== undefined && options.refreshIntervalMs > 0 ? options.refreshIntervalMs : DEFAULT_REFRESH_INTERVAL_MS;
  const pollTimeoutMs = options.pollTimeoutMs !== undefined && options.pollTimeoutMs > 0 ? options.pollTimeoutMs : DEFAULT_POLL_TIMEOUT_MS;
  const bindings = bindSources(options.sources);
  const notifications = bindNotificationSources(options.sources);
  const logger = options.logger.child({ component: 'datalayer' });
  const namespace = options.namespace ?? 'default';
  const store = new Datastore();

  let closed = false;
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => {}); // observed via whenReady(); avoid an unhandled rejection when nobody asks
  const offReady = store.onPoolKnown((known) => {
    if (known) resolveReady();
  });

  const collectors = new CollectorSet({
    refreshIntervalMs,
    pollTimeoutMs,
    bindings,
    store,
    clock: options.clock,
    ticker: options.ticker ?? new SharedTicker(),
    logger,
  });

  let stopDiscovery: () => void = () => {};
  try {
    if (options.static !== undefined) {
      const endpoints = parseStaticEndpoints(options.static, namespace);
      if (endpoints.length === 0) logger.warn({}, 'the static pool (--endpoints) is empty: requests get 503 (body-less ones 500) until endpoints are configured');
      store.replaceAll(endpoints);
      store.setPoolKnown(true);
    } else if (options.endpointsFile !== undefined) {
      const file = new EndpointsFileDiscovery({ path: options.endpointsFile, namespace, store, logger });
      await file.start();
      stopDiscovery = () => file.close();
    } else if (options.kubernetes !== undefined) {
      // Loaded only when a pool is watched: the Kubernetes client is the slowest module to load (~0.3 s).
      const { KubernetesDiscovery } = await import('./discovery/kubernetes.ts');
      const k8s = new KubernetesDiscovery(options.kubernetes, store, logger);
      k8s.start();
      stopDiscovery = () => k8s.close();
    }
  } catch (err) {
    collectors.close();
    await Promise.allSettled(bindings.map((b) => b.source.close?.()));
    throw err;
  }
  const stopNotifications: Array<() => void> = [];
  try {
    for (const n of notifications) {
      const sourceLogger = logger.child({ source: typedNameString(n.source.typedName) });
      stopNotifications.push(
        n.source.start({
          deliver: (event) => {
            for (const x of n.extractors) {
              try {
                x.notify(event);
              } catch (err) {
                sourceLogger.error({ extractor: typedNameString(x.typedName), err: (err as Error).message }, 'notification extractor failed');
              }
            }
          },
          onEndpointsChanged: (listener) => store.subscribe((changes) => listener(endpointEvents(changes))),
          endpoints: () => store.endpoints().map((e) => e.metadata),
          ...(options.kubernetes ? { kubernetes: { namespace: options.kubernetes.poolNamespace, ...(options.kubernetes.kubeconfig ? { kubeconfig: options.kubernetes.kubeconfig } : {}) } } : {}),
          logger: sourceLogger,
        }),
      );
    }
  } catch (err) {
    for (const stop of stopNotifications) stop();
    stopDiscovery();
    collectors.close();
    await Promise.allSettled(bindings.map((b) => b.source.close?.()));
    throw err;
  }
  logger.info(
    { refreshIntervalMs, pollTimeoutMs, sources: [...bindings, ...notifications].map((b) => typedNameString(b.source.typedName)) },
    'data layer started',
  );

  return {
    store,
    whenReady: () => ready,
    onEndpointsChanged: (listener) => store.subscribe(listener),
    stats: () => collectors.stats,
    settled: () => collectors.settled(),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const stop of stopNotifications) stop();
      stopDiscovery();
      offReady();
      rejectReady(new Error('data layer closed before the pool became known'));
      collectors.close();
      await collectors.settled();
      await Promise.allSettled(bindings.map((b) => b.source.close?.()));
    },
  };
}
