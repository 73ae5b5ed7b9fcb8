/**
 * Startup: assembles a running EPP from its options and tears it down. Plugin registry (./plugin-modules.ts) →
 * config planned (src/config) and compiled (src/runtime/compile-config.ts) → endpoint store → admission and
 * director → the adapters: ext_proc (+ gRPC health, TLS), the embedded gateway, the admin server. The CLI
 * (`epp serve`, `epp gateway`) and the tests both start the EPP through here; what it takes and returns is
 * declared in ./bootstrap-options.ts.
 */
import { readFileSync } from 'node:fs';
import type { Endpoint, EndpointStore } from '../framework/datalayer.ts';
import { startDataLayer, type DataLayer } from '../datalayer/index.ts';
import { EppConfigError } from '../framework/errors.ts';
import type { Plugin, PluginHandle } from '../framework/plugin.ts';
import { defaultConfigSource, planConfig, type ConfigSource } from '../config/loader.ts';
import { compileConfig } from '../runtime/compile-config.ts';
import { EppMetrics } from '../observability/metrics.ts';
import { Director } from '../runtime/director.ts';
import { randomEndpoint } from '../runtime/candidates.ts';
import { PrecisePrefixCacheProducer } from '../plugins/requestcontrol/precise-prefix-cache-producer/index.ts';
import { DEFAULT_RESPONSE_PATH_OPTIONS } from '../runtime/response-path.ts';
import { Scheduler } from '../runtime/scheduler.ts';
import { systemClock } from '../util/clock.ts';
import { createRandomSource } from '../util/random.ts';
import { ExtProcServer } from './extproc/server.ts';
import { Gateway } from './gateway/gateway.ts';
import { DEFAULT_GATEWAY_LIMITS } from './gateway/limits.ts';
import { BodyBudget } from './body-budget.ts';
import { Reachability } from '../runtime/reachability.ts';
import { startHealthServer } from './extproc/health.ts';
import type { CertificateReloader, TlsMaterial } from './extproc/tls.ts';
import { KubernetesAuthorizer, StaticTokenAuthorizer, startObservability, type MetricsAuthorizer } from './admin/index.ts';
import type { RequestTracer } from '../observability/tracing.ts';
import type { Server } from '@grpc/grpc-js';
import type { Datastore } from '../datalayer/datastore.ts';
import { startResourceSources } from '../datalayer/resources/index.ts';
import { setupAdmission } from '../runtime/admission.ts';
import { InFlightTracker } from '../runtime/inflight.ts';
import { PluginMetricSources } from '../runtime/plugin-metrics.ts';
import { realTimers } from '../util/timers.ts';
import { InferenceResources } from '../runtime/objectives.ts';
import { createCrossReplicaSync, type SyncEngine } from '../datalayer/sync/index.ts';
import { RedisCrossReplicaSyncer, REDIS_CROSS_REPLICA_SYNCER_TYPE } from '../plugins/datalayer/syncer/redis-cross-replica-syncer/index.ts';
import type { EppOptions, RunningEpp } from './bootstrap-options.ts';
import { builtinRegistry, loadPluginModules } from './plugin-modules.ts';
import { DEFAULT_EXT_PROC_IDLE_TIMEOUT_MS, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_REQUEST_BODY_BYTES_IN_FLIGHT, DEFAULT_SHUTDOWN_GRACE_MS } from './defaults.ts';

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
  const inflight = new InFlightTracker();
  const pluginMetrics = new PluginMetricSources();
  const pluginHandle = (lookup: (name: string) => Plugin | undefined): PluginHandle => ({
    logger: o.logger,
    clock,
    random,
    plugin: lookup,
    endpoints: storeRef,
    inflight,
    metrics: pluginMetrics,
  });
  const config = compileConfig(planConfig(o.config ?? defaultConfigSource()), { registry, handle: pluginHandle });
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
    tracker: inflight,
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
    const { generateSelfSignedCertificate, loadCertificate, CertificateReloader } = await import('./extproc/tls.ts');
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
    pickUnscheduled: () => randomEndpoint(readyStore, random),
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
      store,
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
    pluginMetrics,
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
    store,
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
        const grace = o.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
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
