/** What startup (./bootstrap.ts `startEpp`) takes, and the running EPP it returns. */
import type { ConfigSource } from '../config/loader.ts';
import type { DataLayer, KubernetesDiscoveryOptions } from '../datalayer/index.ts';
import type { ResourceSources } from '../datalayer/resources/index.ts';
import type { SyncEngine, SyncSettings, SyncTransport } from '../datalayer/sync/index.ts';
import type { EndpointStore } from '../framework/datalayer.ts';
import type { Clock, Logger, RandomSource } from '../framework/plugin.ts';
import type { EppMetrics } from '../observability/metrics.ts';
import type { RequestTracer, TracerOptions } from '../observability/tracing.ts';
import type { MetricsDataSourceDefaults } from '../plugins/datalayer/source/metrics-data-source/index.ts';
import type { AdmissionSetup } from '../runtime/admission.ts';
import type { LoadedConfig } from '../runtime/compile-config.ts';
import type { Director } from '../runtime/director.ts';
import type { InferenceResources } from '../runtime/objectives.ts';
import type { PluginRegistry } from '../runtime/plugin-registry.ts';
import type { ResponsePathOptions } from '../runtime/response-path.ts';
import type { Timers } from '../util/timers.ts';
import type { RunningObservability } from './admin/index.ts';
import type { BodyBudget } from './body-budget.ts';
import type { ExtProcServer } from './extproc/server.ts';
import type { CertificateReloader } from './extproc/tls.ts';
import type { Gateway } from './gateway/gateway.ts';
import type { GatewayLimits } from './gateway/limits.ts';

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
  /** The endpoint store (injected, or the data layer's). */
  readonly store: EndpointStore;
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
