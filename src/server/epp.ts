/**
 * Assembles a running EPP from its options: plugin registry → config → endpoint store → director →
 * ext_proc server (+ gRPC health). The CLI (`epp serve`) and the tests both start the EPP through here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Endpoint, EndpointStore } from '../framework/datalayer.ts';
import { startDataLayer, type DataLayer, type KubernetesDiscoveryOptions } from '../datalayer/index.ts';
import { EppConfigError } from '../framework/errors.ts';
import type { Clock, Logger, Plugin, PluginHandle, RandomSource } from '../framework/plugin.ts';
import { loadConfig, defaultConfigSource, type ConfigSource, type LoadedConfig } from '../config/loader.ts';
import { EppMetrics } from '../observability/metrics.ts';
import { Director } from '../runtime/director.ts';
import { PluginRegistry } from '../runtime/plugin-registry.ts';
import { registerBuiltins } from '../plugins/register.ts';
import {
  METRICS_DATA_SOURCE_TYPE,
  metricsDataSourceFactoryWithDefaults,
  type MetricsDataSourceDefaults,
} from '../plugins/datalayer/source/metrics-data-source/index.ts';
import { PrecisePrefixCacheProducer } from '../plugins/requestcontrol/precise-prefix-cache-producer/index.ts';
import { DEFAULT_RESPONSE_PATH_OPTIONS, type ResponsePathOptions } from '../runtime/response-stream.ts';
import { Scheduler } from '../runtime/scheduler.ts';
import { systemClock } from '../util/clock.ts';
import { createRandomSource } from '../util/random.ts';
import { ExtProcServer } from './extproc/server.ts';
import { Gateway } from './gateway/gateway.ts';
import { DEFAULT_GATEWAY_LIMITS, type GatewayLimits } from './gateway/limits.ts';
import { BodyBudget } from './body-budget.ts';
import { Reachability } from '../runtime/reachability.ts';
import { startHealthServer } from './health.ts';
import type { CertificateReloader, TlsMaterial } from './tls.ts';
import { KubernetesAuthorizer, StaticTokenAuthorizer, startObservability, type MetricsAuthorizer, type RunningObservability } from './admin/index.ts';
import type { RequestTracer, TracerOptions } from '../observability/tracing.ts';
import type { Server } from '@grpc/grpc-js';
import type { Datastore } from '../datalayer/datastore.ts';
import { startResourceSources, type ResourceSources } from '../datalayer/resources/index.ts';
import { setupAdmission, type AdmissionSetup } from '../runtime/admission.ts';
import { realTimers, type Timers } from '../util/timers.ts';
import { InferenceResources } from '../runtime/objectives.ts';
import { createCrossReplicaSync, type SyncEngine, type SyncSettings, type SyncTransport } from '../datalayer/sync/index.ts';
import { RedisCrossReplicaSyncer, REDIS_CROSS_REPLICA_SYNCER_TYPE } from '../plugins/datalayer/syncer/redis-cross-replica-syncer/index.ts';
import { DEFAULT_EXT_PROC_IDLE_TIMEOUT_MS, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_REQUEST_BODY_BYTES_IN_FLIGHT } from './defaults.ts';

export interface EppOptions {
  /** ext_proc port (0 = ephemeral). */
  readonly grpcPort: number;
  /** Serve ext_proc at all (default true; `epp gateway` runs without it). */
  readonly extProc?: boolean;
  /** Also run the embedded OpenAI-compatible gateway on this port/host. */
  readonly gateway?: { readonly port: number; readonly host?: string };
  /** 0 = ephemeral; -1 = do not start the health server. */
  readonly grpcHealthPort: number;
  readonly host?: string;
  readonly secureServing: boolean;
  readonly certPath?: string;
  readonly healthChecking?: boolean;
  readonly config?: ConfigSource;
  /** Endpoint discovery (exactly one mode) and metrics scraping; ignored when `store` is given. */
  readonly discovery?: DiscoveryOptions;
  /** An endpoint store to use instead of discovery (tests, embedders): no data layer is started. */
  readonly store?: EndpointStore;
  /** Files whose default export (or `register` export) registers plugin types: `(registry) => void`. */
  readonly pluginModules?: readonly string[];
  /** Registers extra plugin types before the config loads (tests, embedders). */
  readonly registerPlugins?: (registry: PluginRegistry) => void;
  /**
   * Defaults for `metrics-data-source` parameters the config leaves unset: the deprecated
   * `--model-server-metrics-scheme/-path/-https-insecure-skip-verify` flags (epp-spec §4.5).
   */
  readonly metricsDataSourceDefaults?: MetricsDataSourceDefaults;
  readonly responsePath?: Partial<ResponsePathOptions>;
  /** Timeout of one request-path hook call (admit, preRequest); 1 s by default. */
  readonly requestHookTimeoutMs?: number;
  readonly maxRequestBodyBytes?: number;
  /** Request-body bytes held at once across all requests (both data planes); beyond → 429. 0 = unlimited. */
  readonly maxRequestBodyBytesInFlight?: number;
  /** Embedded gateway limits (timeouts, sizes, allowed paths); unset fields take the defaults. */
  readonly gatewayLimits?: Partial<GatewayLimits>;
  /** ext_proc: a stream that receives no message for this long is ended (0 = never). */
  readonly extProcIdleTimeoutMs?: number;
  /** ext_proc: non-streaming response bodies are buffered up to this size; beyond, passed through. */
  readonly maxBufferedResponseBytes?: number;
  /**
   * `--metrics-endpoint-auth`: `/metrics` needs a bearer token — compared with `tokenFile`'s when given, else
   * reviewed by the Kubernetes API (TokenReview + SubjectAccessReview, as upstream).
   */
  readonly metricsAuth?: { readonly tokenFile?: string; readonly kubeconfig?: string; readonly cacheTtlMs?: number };
  /** Model names kept as metric labels beyond the known ones (served, rewrites) before `other`. */
  readonly maxExtraModelLabels?: number;
  readonly shutdownGraceMs?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  readonly metrics?: EppMetrics;
  /** Admission, flow control, objectives and model rewrites (see docs/flow-control.md). */
  readonly admission?: AdmissionServeOptions;
  /** Admin HTTP server (/metrics, /healthz, /readyz): port (0 = ephemeral); absent or -1 = not started. */
  readonly metricsPort?: number;
  /** `name` label of the `inference_pool_*` gauges; default the InferencePool name, else `default`. */
  readonly poolName?: string;
  /** Pool gauge refresh (`--refresh-prometheus-metrics-interval`), default 5 s. */
  readonly poolMetricsRefreshMs?: number;
  /** Freshness window of endpoint metrics for the pool gauges (`--metrics-staleness-threshold`), default 2 s. */
  readonly metricsStalenessMs?: number;
  /** Reload `certPath` when it changes (`--enable-cert-reload`); `pollIntervalMs` is the fallback poll. */
  readonly certReload?: boolean | { readonly pollIntervalMs: number };
  /** OpenTelemetry tracing; absent = off (see observability/tracing.ts for when the CLI turns it on). */
  readonly tracing?: Omit<TracerOptions, 'logger'>;
  /** `--ha-redis-url`: cross-replica sync over this Redis with default settings (docs/replicas.md). */
  readonly haRedisUrl?: string;
  /** Cross-replica sync overrides (tests, benchmarks): a transport instead of Redis, engine settings, timers. */
  readonly crossReplica?: { readonly transport?: SyncTransport; readonly settings?: Partial<SyncSettings>; readonly timers?: Timers };
}

export interface DiscoveryOptions {
  /** Static endpoints `ip:port`. */
  readonly endpoints?: readonly string[];
  /** A watched YAML/JSON endpoints file. */
  readonly endpointsFile?: string;
  readonly kubernetes?: KubernetesDiscoveryOptions;
  /** Namespace recorded on static/file endpoints. */
  readonly namespace?: string;
  /** Scrape interval per endpoint; default 50 ms. */
  readonly refreshIntervalMs?: number;
}

export interface RunningEpp {
  readonly grpcPort: number;
  readonly healthPort: number | undefined;
  readonly director: Director;
  readonly config: LoadedConfig;
  readonly metrics: EppMetrics;
  readonly server: ExtProcServer;
  /** The embedded gateway's port, when it runs. */
  readonly gatewayPort: number | undefined;
  readonly gateway: Gateway | undefined;
  /** The data layer, when the EPP discovers endpoints itself (not when a store was injected). */
  readonly dataLayer: DataLayer | undefined;
  /** The admin HTTP port (/metrics, /healthz, /readyz), when it runs. */
  readonly metricsPort: number | undefined;
  readonly observability: RunningObservability;
  readonly tracer: RequestTracer | undefined;
  /** Watches `--cert-path` when `--enable-cert-reload` is on. */
  readonly certificates: CertificateReloader | undefined;
  /** Admission, flow control and in-flight accounting. */
  readonly admission: AdmissionSetup;
  /** Request-body bytes held in memory across both data planes (`--max-request-body-bytes-in-flight`). */
  readonly bodyBudget: BodyBudget;
  /** InferenceObjectives and InferenceModelRewrites in force, and their sources. */
  readonly resources: InferenceResources;
  readonly resourceSources: ResourceSources;
  /** Cross-replica sync, when configured (`dataLayer.crossReplicaSyncerPluginRef` or `--ha-redis-url`). */
  readonly sync: SyncEngine | undefined;
  /** Stops accepting, drains open streams up to the grace period, then closes everything. */
  close(): Promise<void>;
}

export interface AdmissionServeOptions {
  /** `--resources-file`: watched InferenceObjective / InferenceModelRewrite manifests. */
  readonly resourcesFile?: string;
  /** `--disable-endpoint-subset-filter`. */
  readonly disableEndpointSubsetFilter?: boolean;
  /**
   * The pool whose objects apply (`--pool-name`, namespace, group). Defaults to the watched InferencePool;
   * unset in standalone mode, where every object of the resources file applies.
   */
  readonly pool?: { readonly name: string; readonly namespace?: string; readonly group?: string };
  /** Watch the InferenceObjective / InferenceModelRewrite CRDs (default: when an InferencePool is watched). */
  readonly watchCrds?: boolean;
  /** Flow-control timers and dispatch cadence (tests). */
  readonly timers?: Timers;
  readonly dispatchIntervalMs?: number;
}


/**
 * What `--plugin-module X` imports: a file when X names an existing path (`./my-plugins.js`, `/opt/p.js`,
 * `plugins.js`), else X as a package specifier (`@acme/epp-plugins`, `epp-plugin-x/sub`), resolved like an
 * import from this package, i.e. from the node_modules the EPP is installed in.
 */
export function pluginModuleSpecifier(arg: string): string {
  const path = resolve(arg);
  if (existsSync(path) || /^(\.{1,2}[\\/]|[\\/]|[A-Za-z]:)/.test(arg) || !/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/.*)?$/i.test(arg)) return pathToFileURL(path).href;
  return arg;
}

async function loadPluginModules(registry: PluginRegistry, files: readonly string[]): Promise<void> {
  for (const file of files) {
    const specifier = pluginModuleSpecifier(file);
    let mod: { default?: unknown; register?: unknown };
    try {
      mod = (await import(specifier)) as typeof mod;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND' || !(err as Error).message.includes(specifier.startsWith('file:') ? resolve(file) : `'${file.split('/').slice(0, file.startsWith('@') ? 2 : 1).join('/')}'`)) throw err;
      throw new EppConfigError(
        `--plugin-module ${file}: no such file, and no installed package of that name`,
        'pass a path to the module (./my-plugins.js) or the name of a package installed next to the EPP (npm install <package>)',
      );
    }
    const register = typeof mod.register === 'function' ? mod.register : mod.default;
    if (typeof register !== 'function') {
      throw new EppConfigError(`--plugin-module ${file}: exports no register function`, 'export `register(registry)` (or a default function) that calls registry.register(type, factory)');
    }
    await (register as (r: PluginRegistry) => unknown)(registry);
  }
}

/** The built-in plugin types; `metrics-data-source` with the flag defaults when any are given. */
function builtinRegistry(metricsDefaults: MetricsDataSourceDefaults | undefined): PluginRegistry {
  const registry = new PluginRegistry();
  registerBuiltins(registry);
  if (metricsDefaults !== undefined && Object.values(metricsDefaults).some((v) => v !== undefined)) {
    registry.replace(METRICS_DATA_SOURCE_TYPE, metricsDataSourceFactoryWithDefaults(metricsDefaults));
  }
  return registry;
}

export async function startEpp(o: EppOptions): Promise<RunningEpp> {
  const clock = o.clock ?? systemClock;
  const random = o.random ?? createRandomSource();
  const metrics = o.metrics ?? new EppMetrics();
  metrics.info.set({ commit: process.env.EPP_COMMIT ?? 'dev', build_ref: process.env.EPP_BUILD_REF ?? 'dev' }, 1);
  const registry = builtinRegistry(o.metricsDataSourceDefaults);
  o.registerPlugins?.(registry);
  await loadPluginModules(registry, o.pluginModules ?? []);
  registry.freeze();

  let store: EndpointStore | undefined = o.store;
  const storeRef = (): readonly Endpoint[] => store?.endpoints() ?? [];
  const pluginHandle = (lookup: (name: string) => Plugin | undefined): PluginHandle => ({
    logger: o.logger,
    clock,
    random,
    plugin: lookup,
    endpoints: storeRef,
  });
  const config = loadConfig(o.config ?? defaultConfigSource(), { registry, handle: pluginHandle });
  let crossReplica = config.crossReplica;
  if (o.haRedisUrl !== undefined) {
    if (crossReplica !== undefined) {
      throw new EppConfigError(`--ha-redis-url conflicts with ${config.origin}: dataLayer references cross-replica syncer '${crossReplica.syncer.typedName.name}'`, 'use one of them: the flag (defaults) or the config (full settings)');
    }
    const factory = registry.get(REDIS_CROSS_REPLICA_SYNCER_TYPE);
    if (!factory) throw new EppConfigError(`--ha-redis-url: plugin type ${REDIS_CROSS_REPLICA_SYNCER_TYPE} is not registered`, 'do not replace the built-in syncer type');
    let syncer;
    try {
      syncer = factory('ha-redis-url', { url: o.haRedisUrl }, pluginHandle(() => undefined));
    } catch (err) {
      throw new EppConfigError(`--ha-redis-url: ${(err as Error).message.replace(/^plugin 'ha-redis-url' \(type: [^)]*\) has invalid parameters: parameters\.url: /, '')}`, 'pass e.g. --ha-redis-url=redis://redis.inference.svc:6379');
    }
    crossReplica = { syncer: syncer as RedisCrossReplicaSyncer, syncIntervalMs: 50 };
  }
  let dataLayer: DataLayer | undefined;
  if (!store) {
    const d = o.discovery ?? {};
    dataLayer = await startDataLayer({
      ...(d.endpoints !== undefined ? { static: d.endpoints } : {}),
      ...(d.endpointsFile !== undefined ? { endpointsFile: d.endpointsFile } : {}),
      ...(d.kubernetes !== undefined ? { kubernetes: d.kubernetes } : {}),
      ...(d.namespace !== undefined ? { namespace: d.namespace } : {}),
      ...(d.refreshIntervalMs !== undefined ? { refreshIntervalMs: d.refreshIntervalMs } : {}),
      sources: config.dataLayer,
      logger: o.logger,
      clock,
    });
    store = dataLayer.store;
  }

  let sync: SyncEngine | undefined;
  if (crossReplica !== undefined) {
    const { syncer, syncIntervalMs } = crossReplica;
    if (!(syncer instanceof RedisCrossReplicaSyncer)) {
      throw new EppConfigError(`${config.origin}: dataLayer.crossReplicaSyncerPluginRef: plugin '${syncer.typedName.name}' (type: ${syncer.typedName.type}) cannot be run by this EPP`, `use type ${REDIS_CROSS_REPLICA_SYNCER_TYPE}`);
    }
    if (syncer.parameters.loadStaleMs < 2 * syncIntervalMs) {
      throw new EppConfigError(
        `${config.origin}: plugin '${syncer.typedName.name}' parameters.loadStaleMs (${syncer.parameters.loadStaleMs}) must be at least twice dataLayer.crossReplicaSyncInterval (${syncIntervalMs}ms)`,
        'raise loadStaleMs (default 500) or shorten the sync interval, or peers\' load would blink out between heartbeats',
      );
    }
    const k8sPool = o.discovery?.kubernetes;
    const namespace = k8sPool?.poolNamespace ?? o.discovery?.namespace ?? 'default';
    sync = await createCrossReplicaSync({
      syncer,
      syncIntervalMs,
      plugins: config.plugins,
      pool: `${namespace}/${o.poolName ?? k8sPool?.poolName ?? 'default'}`,
      logger: o.logger,
      clock,
      metrics,
      ...(o.crossReplica?.transport ? { transport: o.crossReplica.transport } : {}),
      ...(o.crossReplica?.settings ? { settings: o.crossReplica.settings } : {}),
      timers: o.crossReplica?.timers ?? realTimers,
    });
  }

  const now = () => clock.now();
  const reachability = o.gateway ? new Reachability(now) : undefined;

  // Admission, flow control, objectives and rewrites.
  const k8s = o.discovery?.kubernetes;
  const pool = o.admission?.pool ?? (k8s?.poolName ? { name: k8s.poolName, namespace: k8s.poolNamespace, ...(k8s.poolGroup ? { group: k8s.poolGroup } : {}) } : undefined);
  const admission = setupAdmission({
    store,
    plugins: config.plugins,
    detector: config.saturationDetector,
    flowControl: config.flowControl,
    clock,
    logger: o.logger,
    metrics,
    disableEndpointSubsetFilter: o.admission?.disableEndpointSubsetFilter ?? false,
    ...(pool ? { poolName: pool.name } : {}),
    ...(o.admission?.timers ? { timers: o.admission.timers } : {}),
    ...(o.admission?.dispatchIntervalMs !== undefined ? { dispatchIntervalMs: o.admission.dispatchIntervalMs } : {}),
  });
  const offMetrics = (store as Partial<Datastore>).onMetricsCommitted?.call(store, admission.metricsRefreshed);
  const resources = new InferenceResources((d, model) => metrics.modelRewriteDecisions.inc({ model_rewrite_name: d.rewriteName, model_name: metrics.modelLabel(model), target_model: metrics.modelLabel(d.targetModel) }));
  const watchCrds = o.admission?.watchCrds ?? (k8s?.poolName !== undefined && k8s.poolName !== '');
  const resourceSources = await startResourceSources({
    sink: resources,
    logger: o.logger,
    ...(o.admission?.resourcesFile !== undefined ? { file: o.admission.resourcesFile } : {}),
    ...(pool ? { fileFilter: { poolName: pool.name, ...(pool.namespace ? { poolNamespace: pool.namespace } : {}), ...(pool.group ? { poolGroup: pool.group } : {}) } } : {}),
    ...(watchCrds && pool
      ? { kubernetes: { namespace: pool.namespace ?? 'default', poolName: pool.name, ...(pool.group ? { poolGroup: pool.group } : {}), ...(k8s?.kubeconfig ? { kubeconfig: k8s.kubeconfig } : {}) } }
      : {}),
  });
  const director = new Director({
    ...(reachability ? { reachability } : {}),
    admission: admission.admission,
    locator: admission.locator,
    objectives: resources.objectives,
    rewrites: resources.rewrites,
    store,
    parser: config.parser,
    scheduler: new Scheduler(config.profileHandler, config.profiles, metrics),
    hooks: config.hooks,
    metrics,
    logger: o.logger,
    random,
    now,
    responsePath: { ...DEFAULT_RESPONSE_PATH_OPTIONS, ...o.responsePath },
    ...(o.requestHookTimeoutMs !== undefined ? { requestHookTimeoutMs: o.requestHookTimeoutMs } : {}),
  });

  let tls: TlsMaterial | undefined;
  let certificates: CertificateReloader | undefined;
  if (o.secureServing) {
    // Loaded on demand: the X.509 tooling is only needed when TLS is on.
    const { generateSelfSignedCertificate, loadCertificate, CertificateReloader } = await import('./tls.ts');
    if (o.certPath && o.certReload) {
      certificates = CertificateReloader.load(o.certPath, {
        logger: o.logger,
        ...(typeof o.certReload === 'object' ? { pollIntervalMs: o.certReload.pollIntervalMs } : {}),
        onReload: (result, cert) => {
          metrics.certificateReloads.inc({ result });
          if (cert) metrics.certificateExpiry.set({ source: 'cert-path' }, Date.parse(cert.validTo) / 1000);
        },
      });
      metrics.certificateExpiry.set({ source: 'cert-path' }, certificates.notAfter.getTime() / 1000);
      tls = certificates.material;
    } else {
      tls = o.certPath ? loadCertificate(o.certPath) : await generateSelfSignedCertificate();
    }
  }
  let tracer: RequestTracer | undefined;
  if (o.tracing) {
    const { createRequestTracer } = await import('../observability/tracing.ts');
    tracer = await createRequestTracer({
      commit: process.env.EPP_COMMIT ?? 'dev',
      buildRef: process.env.EPP_BUILD_REF ?? 'dev',
      ...o.tracing,
      logger: o.logger,
    });
  }
  // Built before any listener opens, so a bad setting fails the start cleanly.
  let authorizer: MetricsAuthorizer | undefined;
  if (o.metricsAuth && (o.metricsPort ?? -1) >= 0) {
    const a = o.metricsAuth;
    authorizer = a.tokenFile
      ? StaticTokenAuthorizer.fromFile(a.tokenFile)
      : await KubernetesAuthorizer.create({ ...(a.kubeconfig ? { kubeconfig: a.kubeconfig } : {}), ...(a.cacheTtlMs !== undefined ? { cacheTtlMs: a.cacheTtlMs } : {}) });
  }
  const readyStore = store;
  const bodyBudget = new BodyBudget(o.maxRequestBodyBytesInFlight ?? DEFAULT_MAX_REQUEST_BODY_BYTES_IN_FLIGHT);
  // Ready = the pool is known and cross-replica sync (if any) is warm or gave up waiting (bounded warm-up).
  const isReady = (): boolean => readyStore.poolKnown() && (sync?.isReady() ?? true);
  void sync?.start();
  const server = new ExtProcServer({
    director,
    metrics,
    logger: o.logger,
    now,
    maxRequestBodyBytes: o.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES,
    bodyBudget,
    idleTimeoutMs: o.extProcIdleTimeoutMs ?? DEFAULT_EXT_PROC_IDLE_TIMEOUT_MS,
    maxBufferedResponseBytes: o.maxBufferedResponseBytes ?? DEFAULT_GATEWAY_LIMITS.maxBufferedResponseBytes,
    tls,
    ...(certificates ? { certificates } : {}),
    tracer,
    healthChecking: o.healthChecking ?? false,
    isServing: isReady,
  });
  const host = o.host ?? '0.0.0.0';
  const extProc = o.extProc ?? true;
  const grpcPort = extProc ? await server.listen(o.grpcPort, host) : 0;
  certificates?.start();
  let health: { server: Server; port: number } | undefined;
  if (o.grpcHealthPort >= 0) health = await startHealthServer(o.grpcHealthPort, host, isReady);
  let gateway: Gateway | undefined;
  let gatewayPort: number | undefined;
  if (o.gateway) {
    gateway = new Gateway({
      director,
      metrics,
      logger: o.logger,
      now,
      maxRequestBodyBytes: o.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES,
      reachability,
      bodyBudget,
      limits: { ...o.gatewayLimits, ...(o.maxBufferedResponseBytes !== undefined ? { maxBufferedResponseBytes: o.maxBufferedResponseBytes } : {}) },
      isReady,
    });
    gatewayPort = await gateway.listen(o.gateway.port, o.gateway.host ?? '127.0.0.1');
  }
  // Model names become metric labels only when known (served, named by a rewrite) or among the first few others.
  const gw = gateway;
  const readyEndpoints = store;
  metrics.modelLabels.configure(
    (m) =>
      resources.rewrites.names(m) ||
      (gw?.servesModel(m) ?? false) ||
      readyEndpoints.endpoints().some((e) => e.metrics.activeModels.has(m) || e.metrics.waitingModels.has(m)),
    o.maxExtraModelLabels,
  );
  const observability = await startObservability({
    metrics,
    store,
    poolName: o.poolName ?? o.discovery?.kubernetes?.poolName ?? 'default',
    plugins: config.plugins,
    logger: o.logger,
    now,
    port: o.metricsPort ?? -1,
    host,
    isReady,
    ...(o.poolMetricsRefreshMs !== undefined ? { refreshIntervalMs: o.poolMetricsRefreshMs } : {}),
    ...(o.metricsStalenessMs !== undefined ? { stalenessMs: o.metricsStalenessMs } : {}),
    ...(authorizer ? { authorizer } : {}),
  });
  o.logger.info(
    { grpcPort: extProc ? grpcPort : undefined, gatewayPort, healthPort: health?.port, metricsPort: observability.port, tracing: tracer !== undefined, tls: tls ? (o.certPath ? 'cert-path' : 'self-signed') : 'off', config: config.origin, plugins: config.plugins.map((p: Plugin) => `${p.typedName.name}/${p.typedName.type}`) },
    'EPP listening',
  );

  let closing: Promise<void> | undefined;
  return {
    grpcPort,
    healthPort: health?.port,
    director,
    config,
    metrics,
    server,
    gateway,
    gatewayPort,
    dataLayer,
    metricsPort: observability.port,
    observability,
    tracer,
    certificates,
    admission,
    bodyBudget,
    resources,
    resourceSources,
    sync,
    close() {
      closing ??= (async () => {
        const grace = o.shutdownGraceMs ?? 30_000;
        await Promise.all([server.shutdown(grace), gateway?.close(grace)]);
        await sync?.stop();
        admission.close();
        offMetrics?.();
        resourceSources.close();
        health?.server.forceShutdown();
        certificates?.close();
        await observability.close();
        for (const p of config.plugins) if (p instanceof PrecisePrefixCacheProducer) p.close(); // its ZeroMQ sockets
        await tracer?.shutdown();
        await dataLayer?.close();
      })();
      return closing;
    },
  };
}

/** Reads `--config-file` or `--config-text` (mutually exclusive) into a config source. */
export function configSourceFrom(file: string | undefined, text: string | undefined): ConfigSource | undefined {
  if (file && text) throw new EppConfigError('--config-file and --config-text are mutually exclusive', 'pass only one of them');
  if (file) {
    try {
      return { text: readFileSync(file, 'utf8'), origin: file };
    } catch (err) {
      throw new EppConfigError(`--config-file ${file}: ${(err as Error).message}`, 'check the path');
    }
  }
  if (text) return { text, origin: '--config-text' };
  return undefined;
}
