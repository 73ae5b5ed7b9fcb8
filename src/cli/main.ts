/**
 * The `epp` command line. Flags are named and parsed as upstream's Go flags, so arguments copied from upstream
 * manifests work: `--flag=value` and `--flag value`, single or double dash, booleans as `--secure-serving=false`.
 * Unknown flags are errors that name the flag.
 */
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import { Command, CommanderError, Option } from 'commander';
import { EppConfigError } from '../framework/errors.ts';
import { tracingEnabled } from '../observability/tracing-env.ts';
import { createLogger } from '../observability/logger.ts';
import type { DiscoveryOptions, EppOptions } from '../server/bootstrap-options.ts';
import {
  DEFAULT_EXT_PROC_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_REQUEST_BODY_BYTES,
  DEFAULT_MAX_REQUEST_BODY_BYTES_IN_FLIGHT,
  DEFAULT_METRICS_STALENESS_MS,
  DEFAULT_POOL_METRICS_REFRESH_MS,
  DEFAULT_SHUTDOWN_GRACE_MS,
} from '../server/defaults.ts';
import { DEFAULT_RESPONSE_CHUNK_HOOKS, DEFAULT_RESPONSE_HOOK_TIMEOUT_MS, DEFAULT_RESPONSE_QUEUE_LIMIT, DEFAULT_RESPONSE_QUEUE_OVERFLOW } from '../runtime/defaults.ts';
import { formatDuration } from '../util/duration.ts';
import { DEFAULT_REFRESH_INTERVAL_MS } from '../datalayer/defaults.ts';
import { DEFAULT_GATEWAY_LIMITS } from '../server/gateway/limits.ts';
import { DEFAULT_MAX_EXTRA_MODEL_LABELS } from '../observability/label-bound.ts';
import type { Logger } from '../framework/plugin.ts';
import type { MetricsDataSourceDefaults } from '../plugins/datalayer/source/metrics-data-source/index.ts';
import { addDemoCommand } from './demo.ts';
import { addBenchCommand } from './bench.ts';
import { parseGoDuration } from '../util/duration.ts';
import { registerSimCommand } from '../sim/index.ts';
import { portInUse, portInUseMessage } from './port-in-use.ts';

/** Go's flag package accepts `-name` as well as `--name`; commander wants `--name` for long options. */
export function normalizeGoFlags(argv: readonly string[]): string[] {
  return argv.map((a) => (/^-[a-zA-Z][a-zA-Z0-9-]*(=.*)?$/.test(a) && !a.startsWith('--') ? `-${a}` : a));
}

function bool(flag: string) {
  return (value: string | undefined): boolean => {
    if (value === undefined || value === '' || value === 'true' || value === '1' || value === 't' || value === 'T' || value === 'TRUE' || value === 'True') return true;
    if (value === 'false' || value === '0' || value === 'f' || value === 'F' || value === 'FALSE' || value === 'False') return false;
    throw new EppConfigError(`--${flag}: invalid boolean value '${value}'`, `use --${flag}=true or --${flag}=false`);
  };
}

function int(flag: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new EppConfigError(`--${flag}: '${value}' is not an integer in [${min}, ${max}]`, `pass e.g. --${flag}=${min}`);
    return n;
  };
}

function duration(flag: string) {
  return (value: string): number => {
    try {
      return parseGoDuration(value);
    } catch (err) {
      throw new EppConfigError(`--${flag}: ${(err as Error).message}`, `pass e.g. --${flag}=50ms`);
    }
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Upstream flags we accept for compatibility but do not act on yet; setting one logs a warning. */
const ACCEPTED_NOT_IMPLEMENTED = [
  ['enable-pprof', 'bool'],
  ['ha-enable-leader-election', 'bool'],
  ['zap-devel', 'bool'],
  ['zap-encoder', 'string'],
  ['zap-log-level', 'string'],
  ['zap-stacktrace-level', 'string'],
  ['zap-time-encoding', 'string'],
] as const;

/** Deprecated upstream flags whose use is a startup error (epp-spec §4.5). */
const REMOVED_METRIC_FLAGS = [
  'total-queued-requests-metric',
  'total-running-requests-metric',
  'kv-cache-usage-percentage-metric',
  'lora-info-metric',
  'cache-info-metric',
];

/** Options every command that runs the director shares: config, discovery, plugins, response path, logging. */
function addCoreOptions(cmd: Command): Command {
  cmd
    .addOption(new Option('--config-file <path>', 'EndpointPickerConfig YAML file'))
    .addOption(new Option('--config-text <yaml>', 'EndpointPickerConfig inline'))
    .addOption(new Option('--endpoints <list>', 'static pool: ip:port[,ip:port...]'))
    .addOption(new Option('--endpoints-file <path>', 'watched YAML/JSON endpoints file (see docs/datalayer.md)'))
    .addOption(new Option('--pool-name <name>', 'InferencePool to watch (Kubernetes)'))
    .addOption(new Option('--pool-namespace <ns>', 'namespace of the pool (default: $NAMESPACE, else default)'))
    .addOption(new Option('--pool-group <group>', 'InferencePool API group').default('inference.networking.k8s.io'))
    .addOption(new Option('--endpoint-selector <k=v,...>', 'standalone Kubernetes mode: pod label selector'))
    .addOption(new Option('--endpoint-target-ports <ports>', 'standalone mode: target ports, comma-separated (1-8)'))
    .addOption(new Option('--kubeconfig <path>', 'kubeconfig (default: in-cluster, $KUBECONFIG, ~/.kube/config)'))
    .addOption(new Option('--model-server-metrics-port <port>', 'deprecated: metrics port when the pool has one target port').argParser(int('model-server-metrics-port', 0, 65535)))
    .addOption(new Option('--model-server-metrics-scheme <scheme>', 'deprecated: default `scheme` of metrics-data-source').choices(['http', 'https']))
    .addOption(new Option('--model-server-metrics-path <path>', 'deprecated: default `path` of metrics-data-source'))
    .addOption(new Option('--model-server-metrics-https-insecure-skip-verify [bool]', 'deprecated: default `insecureSkipVerify` of metrics-data-source').argParser(bool('model-server-metrics-https-insecure-skip-verify')))
    .addOption(new Option('--refresh-metrics-interval <duration>', 'scrape interval per endpoint').default(DEFAULT_REFRESH_INTERVAL_MS, formatDuration(DEFAULT_REFRESH_INTERVAL_MS)).argParser(duration('refresh-metrics-interval')))
    .addOption(new Option('--resources-file <path>', 'watched InferenceObjective/InferenceModelRewrite manifests (multi-document YAML; see docs/flow-control.md)'))
    .addOption(new Option('--disable-endpoint-subset-filter [bool]', 'ignore the envoy.lb.subset_hint endpoint subset').default(false).argParser(bool('disable-endpoint-subset-filter')))
    .addOption(new Option('--plugin-module <path>', 'load a module that registers plugin types (repeatable)').argParser(collect))
    .addOption(new Option('--response-hook-timeout <duration>', 'timeout of one async response hook call').default(DEFAULT_RESPONSE_HOOK_TIMEOUT_MS, formatDuration(DEFAULT_RESPONSE_HOOK_TIMEOUT_MS)).argParser(duration('response-hook-timeout')))
    .addOption(new Option('--response-queue-limit <n>', 'pending chunk-hook items per stream').default(DEFAULT_RESPONSE_QUEUE_LIMIT).argParser(int('response-queue-limit', 1, 1 << 20)))
    .addOption(new Option('--response-queue-overflow <policy>', 'when a stream queue is full: drop (skip those chunks\' hooks) or block (the reply waits)').choices(['drop', 'block']).default(DEFAULT_RESPONSE_QUEUE_OVERFLOW))
    .addOption(new Option('--response-chunk-hooks <mode>', 'async: chunk hooks off the critical path; inline: each reply waits for them').choices(['async', 'inline']).default(DEFAULT_RESPONSE_CHUNK_HOOKS))
    .addOption(new Option('--max-request-body-bytes <n>', 'larger request bodies get 413').default(DEFAULT_MAX_REQUEST_BODY_BYTES).argParser(int('max-request-body-bytes', 1, 2 ** 31)))
    .addOption(new Option('--shutdown-grace-period <duration>', 'on SIGTERM, how long open requests may finish').default(DEFAULT_SHUTDOWN_GRACE_MS, formatDuration(DEFAULT_SHUTDOWN_GRACE_MS)).argParser(duration('shutdown-grace-period')))
    .addOption(new Option('--refresh-prometheus-metrics-interval <duration>', 'how often the inference_pool_* gauges are recomputed').default(DEFAULT_POOL_METRICS_REFRESH_MS, formatDuration(DEFAULT_POOL_METRICS_REFRESH_MS)).argParser(duration('refresh-prometheus-metrics-interval')))
    .addOption(new Option('--metrics-staleness-threshold <duration>', 'endpoint metrics older than this do not count in the pool gauges').default(DEFAULT_METRICS_STALENESS_MS, formatDuration(DEFAULT_METRICS_STALENESS_MS)).argParser(duration('metrics-staleness-threshold')))
    .addOption(new Option('--ha-redis-url <url>', 'share prefix placements and in-flight load with the other replicas over this Redis (redis:// or rediss://; see docs/replicas.md)'))
    .addOption(new Option('--tracing [bool]', 'OpenTelemetry request spans (default: on only when OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT is set)').argParser(bool('tracing')))
    .addOption(new Option('-v, --v <level>', 'log verbosity: 2 default, 3 verbose, 4 debug, 5 trace').default(2).argParser(int('v', -100, 100)));
  addLimitOptions(cmd);
  for (const [name, kind] of ACCEPTED_NOT_IMPLEMENTED) {
    const opt = kind === 'bool' ? new Option(`--${name} [bool]`).argParser(bool(name)) : new Option(`--${name} <value>`);
    cmd.addOption(opt.hideHelp());
  }
  for (const name of REMOVED_METRIC_FLAGS) cmd.addOption(new Option(`--${name} <value>`).hideHelp());
  return cmd;
}

/** Limits against hostile clients and broken upstreams (docs/operations.md, "Limits"). */
function addLimitOptions(cmd: Command): void {
  const d = DEFAULT_GATEWAY_LIMITS;
  const ms = (flag: string, text: string, def: number) => new Option(`--${flag} <duration>`, text).default(def, def === 0 ? '0' : formatDuration(def)).argParser(duration(flag));
  cmd
    .addOption(new Option('--max-request-body-bytes-in-flight <n>', 'request-body bytes held at once across all requests; beyond → 429 (0 = unlimited)').default(DEFAULT_MAX_REQUEST_BODY_BYTES_IN_FLIGHT).argParser(int('max-request-body-bytes-in-flight', 0, 2 ** 40)))
    .addOption(new Option('--max-buffered-response-bytes <n>', 'non-streaming responses are buffered for the hooks up to this size; beyond, passed through (usage unknown)').default(d.maxBufferedResponseBytes).argParser(int('max-buffered-response-bytes', 0, 2 ** 31)))
    .addOption(new Option('--metrics-max-model-labels <n>', 'model names kept as metric labels beyond the known ones (served, rewrites); the rest are "other"').default(DEFAULT_MAX_EXTRA_MODEL_LABELS).argParser(int('metrics-max-model-labels', 0, 100_000)))
    .addOption(ms('gateway-headers-timeout', 'gateway: time a client has to send its request headers (also for a connection that sends nothing)', d.headersTimeoutMs))
    .addOption(ms('gateway-body-idle-timeout', 'gateway: a request body that receives nothing for this long gets 408', d.bodyIdleTimeoutMs))
    .addOption(ms('gateway-keep-alive-timeout', 'gateway: idle keep-alive connections are closed after this long', d.keepAliveTimeoutMs))
    .addOption(new Option('--gateway-max-connections <n>', 'gateway: concurrent client connections (0 = unlimited)').default(d.maxConnections).argParser(int('gateway-max-connections', 0, 1 << 20)))
    .addOption(new Option('--gateway-max-header-bytes <n>', 'gateway: request line + headers size; larger gets 431').default(d.maxHeaderBytes).argParser(int('gateway-max-header-bytes', 1024, 1 << 20)))
    .addOption(new Option('--gateway-allowed-paths <list>', 'gateway: POST paths proxied upstream, comma-separated (model-server admin paths only when listed)').default(d.allowedPaths.join(','), 'the OpenAI inference paths'))
    .addOption(ms('upstream-connect-timeout', 'gateway: connecting to the model server (→ 504)', d.upstreamConnectTimeoutMs))
    .addOption(ms('upstream-headers-timeout', 'gateway: from sending the request to the response headers (→ 504)', d.upstreamHeadersTimeoutMs))
    .addOption(ms('upstream-idle-timeout', 'gateway: a response that receives nothing for this long is ended (0 = never)', d.upstreamIdleTimeoutMs))
    .addOption(new Option('--metrics-endpoint-auth [bool]', '/metrics needs a bearer token: Kubernetes TokenReview + SubjectAccessReview, or --metrics-auth-token-file').default(false).argParser(bool('metrics-endpoint-auth')))
    .addOption(new Option('--metrics-auth-token-file <path>', 'with --metrics-endpoint-auth: accept the bearer token(s) in this file (one per line) instead of asking Kubernetes'))
    .addOption(ms('request-deadline', 'gateway: whole-request deadline (0 = none)', d.requestDeadlineMs));
}

function limitOptions(opts: Record<string, unknown>): Pick<EppOptions, 'maxRequestBodyBytesInFlight' | 'maxBufferedResponseBytes' | 'maxExtraModelLabels' | 'gatewayLimits' | 'metricsAuth'> {
  const tokenFile = typeof opts.metricsAuthTokenFile === 'string' && opts.metricsAuthTokenFile !== '' ? opts.metricsAuthTokenFile : undefined;
  if (tokenFile !== undefined && opts.metricsEndpointAuth !== true) {
    throw new EppConfigError('--metrics-auth-token-file is set but --metrics-endpoint-auth is off', 'add --metrics-endpoint-auth=true (or drop the token file)');
  }
  const kubeconfig = typeof opts.kubeconfig === 'string' && opts.kubeconfig !== '' ? opts.kubeconfig : undefined;
  const paths = String(opts.gatewayAllowedPaths)
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  for (const p of paths) {
    if (!p.startsWith('/')) throw new EppConfigError(`--gateway-allowed-paths: '${p}' is not a path`, 'list absolute paths, e.g. --gateway-allowed-paths=/v1/chat/completions,/v1/completions');
  }
  return {
    maxRequestBodyBytesInFlight: opts.maxRequestBodyBytesInFlight as number,
    maxBufferedResponseBytes: opts.maxBufferedResponseBytes as number,
    maxExtraModelLabels: opts.metricsMaxModelLabels as number,
    ...(opts.metricsEndpointAuth === true ? { metricsAuth: { ...(tokenFile ? { tokenFile } : {}), ...(kubeconfig ? { kubeconfig } : {}) } } : {}),
    gatewayLimits: {
      headersTimeoutMs: opts.gatewayHeadersTimeout as number,
      bodyIdleTimeoutMs: opts.gatewayBodyIdleTimeout as number,
      keepAliveTimeoutMs: opts.gatewayKeepAliveTimeout as number,
      maxConnections: opts.gatewayMaxConnections as number,
      maxHeaderBytes: opts.gatewayMaxHeaderBytes as number,
      allowedPaths: paths,
      upstreamConnectTimeoutMs: opts.upstreamConnectTimeout as number,
      upstreamHeadersTimeoutMs: opts.upstreamHeadersTimeout as number,
      upstreamIdleTimeoutMs: opts.upstreamIdleTimeout as number,
      requestDeadlineMs: opts.requestDeadline as number,
    },
  };
}

/** Checks removed/ignored flags and builds the options shared by serve and gateway. */
type ServerModule = typeof import('../server/bootstrap.ts');

/** The servers, plugins and config loader load when serve or gateway runs, not for `epp --help` or `epp sim`. */
function loadServer(): Promise<ServerModule> {
  return import('../server/bootstrap.ts');
}

function coreOptions(opts: Record<string, unknown>, logger: Logger, server: Pick<ServerModule, 'configSourceFrom'>): Omit<EppOptions, 'grpcPort' | 'grpcHealthPort' | 'secureServing'> {
  for (const name of REMOVED_METRIC_FLAGS) {
    if (opts[camel(name)] !== undefined) {
      throw new EppConfigError(`--${name} is no longer supported`, 'configure metric names with core-metrics-extractor engineConfigs in the EndpointPickerConfig');
    }
  }
  for (const [name] of ACCEPTED_NOT_IMPLEMENTED) {
    if (opts[camel(name)] !== undefined) logger.warn({ flag: `--${name}` }, 'flag accepted for compatibility with upstream; it has no effect yet');
  }
  return {
    config: server.configSourceFrom(opts.configFile as string | undefined, opts.configText as string | undefined),
    discovery: discoveryFromFlags(opts),
    admission: {
      ...(typeof opts.resourcesFile === 'string' && opts.resourcesFile !== '' ? { resourcesFile: opts.resourcesFile } : {}),
      disableEndpointSubsetFilter: opts.disableEndpointSubsetFilter as boolean,
    },
    pluginModules: (opts.pluginModule as string[] | undefined) ?? [],
    metricsDataSourceDefaults: metricsDataSourceDefaultsFromFlags(opts),
    responsePath: {
      hookTimeoutMs: opts.responseHookTimeout as number,
      queueLimit: opts.responseQueueLimit as number,
      overflowPolicy: opts.responseQueueOverflow as 'drop' | 'block',
      chunkHookMode: opts.responseChunkHooks as 'async' | 'inline',
    },
    maxRequestBodyBytes: opts.maxRequestBodyBytes as number,
    ...limitOptions(opts),
    shutdownGraceMs: opts.shutdownGracePeriod as number,
    poolMetricsRefreshMs: opts.refreshPrometheusMetricsInterval as number,
    metricsStalenessMs: opts.metricsStalenessThreshold as number,
    ...(tracingEnabled(opts.tracing as boolean | undefined) ? { tracing: {} } : {}),
    ...(typeof opts.haRedisUrl === 'string' && opts.haRedisUrl !== '' ? { haRedisUrl: opts.haRedisUrl } : {}),
    logger,
  };
}

/** Closes `running` on SIGTERM/SIGINT, then exits. */
function closeOnSignal(close: () => Promise<void>, logger: Logger): void {
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down: no new requests; open ones may finish');
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

function addServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('Serve Envoy ext_proc: pick an endpoint for every request (upstream flags accepted)')
    .addOption(new Option('--grpc-port <port>', 'ext_proc gRPC port').default(9002).argParser(int('grpc-port', 0, 65535)))
    .addOption(new Option('--grpc-health-port <port>', 'grpc.health.v1 port (plaintext)').default(9003).argParser(int('grpc-health-port', 0, 65535)))
    .addOption(new Option('--metrics-port <port>', 'Prometheus /metrics port').default(9090).argParser(int('metrics-port', 0, 65535)))
    .addOption(new Option('--secure-serving [bool]', 'serve ext_proc over TLS (self-signed unless --cert-path)').default(true).argParser(bool('secure-serving')))
    .addOption(new Option('--cert-path <dir>', 'directory holding tls.crt and tls.key'))
    .addOption(new Option('--enable-cert-reload [bool]', 'reload --cert-path when its files change (open streams are kept)').default(false).argParser(bool('enable-cert-reload')))
    .addOption(new Option('--health-checking [bool]', 'also serve grpc.health.v1 on the ext_proc port').default(false).argParser(bool('health-checking')))
    .addOption(new Option('--gateway-port <port>', 'also run the embedded OpenAI-compatible gateway on this port').argParser(int('gateway-port', 0, 65535)))
    .addOption(new Option('--gateway-host <host>', 'listen address of the embedded gateway').default('127.0.0.1'))
    .addOption(new Option('--ext-proc-idle-timeout <duration>', 'an ext_proc stream that receives no message for this long is ended (0 = never)').default(DEFAULT_EXT_PROC_IDLE_TIMEOUT_MS, formatDuration(DEFAULT_EXT_PROC_IDLE_TIMEOUT_MS)).argParser(duration('ext-proc-idle-timeout')));
  addCoreOptions(cmd).action(async (opts: Record<string, unknown>) => {
    const logger = createLogger({ verbosity: opts.v as number });
    const server = await loadServer();
    const epp = await server.startEpp({
      ...coreOptions(opts, logger, server),
      grpcPort: opts.grpcPort as number,
      grpcHealthPort: opts.grpcHealthPort as number,
      secureServing: opts.secureServing as boolean,
      certPath: opts.certPath as string | undefined,
      certReload: opts.enableCertReload as boolean,
      metricsPort: opts.metricsPort as number,
      healthChecking: opts.healthChecking as boolean,
      extProcIdleTimeoutMs: opts.extProcIdleTimeout as number,
      ...(typeof opts.gatewayPort === 'number' ? { gateway: { port: opts.gatewayPort, host: opts.gatewayHost as string } } : {}),
    });
    closeOnSignal(() => epp.close(), logger);
  });
}

function addGatewayCommand(program: Command): void {
  const cmd = program
    .command('gateway')
    .description('Run the embedded OpenAI-compatible gateway: the EPP proxies requests to the picked endpoint itself (no Envoy)')
    .addOption(new Option('--port <port>', 'listen port').default(8080).argParser(int('port', 0, 65535)))
    .addOption(new Option('--host <host>', 'listen address').default('127.0.0.1'))
    .addOption(new Option('--metrics-port <port>', 'also serve /metrics, /healthz, /readyz on this port').argParser(int('metrics-port', 0, 65535)));
  addCoreOptions(cmd).action(async (opts: Record<string, unknown>) => {
    const logger = createLogger({ verbosity: opts.v as number });
    const server = await loadServer();
    const epp = await server.startEpp({
      ...coreOptions(opts, logger, server),
      extProc: false,
      grpcPort: 0,
      grpcHealthPort: -1,
      secureServing: false,
      gateway: { port: opts.port as number, host: opts.host as string },
      // The admin server (/metrics) binds where the gateway does: loopback unless --host says otherwise.
      host: opts.host as string,
      ...(typeof opts.metricsPort === 'number' ? { metricsPort: opts.metricsPort } : {}),
    });
    process.stdout.write(`gateway listening on http://${opts.host as string}:${epp.gatewayPort}/v1\n`);
    closeOnSignal(() => epp.close(), logger);
  });
}

/**
 * The deprecated `--model-server-metrics-scheme/-path/-https-insecure-skip-verify` flags, when set, as defaults
 * of the `metrics-data-source` parameters (a parameter written in the config still wins; epp-spec §4.5).
 */
export function metricsDataSourceDefaultsFromFlags(opts: Record<string, unknown>): MetricsDataSourceDefaults {
  const scheme = opts.modelServerMetricsScheme;
  const path = opts.modelServerMetricsPath;
  const insecure = opts.modelServerMetricsHttpsInsecureSkipVerify;
  if (typeof path === 'string' && !path.startsWith('/')) {
    throw new EppConfigError(`--model-server-metrics-path: '${path}' must start with "/"`, 'pass e.g. --model-server-metrics-path=/metrics');
  }
  return {
    ...(scheme === 'http' || scheme === 'https' ? { scheme } : {}),
    ...(typeof path === 'string' ? { path } : {}),
    ...(typeof insecure === 'boolean' ? { insecureSkipVerify: insecure } : {}),
  };
}

/** Exactly one discovery mode from the flags (upstream: "either pool-name or endpoint-selector must be set"). */
export function discoveryFromFlags(opts: Record<string, unknown>): DiscoveryOptions {
  const str = (k: string): string | undefined => (typeof opts[k] === 'string' && opts[k] !== '' ? (opts[k] as string) : undefined);
  // `--endpoints=` (explicitly empty) is an empty static pool, not "no discovery".
  const endpoints = typeof opts.endpoints === 'string' ? opts.endpoints : undefined;
  const endpointsFile = str('endpointsFile');
  const poolName = str('poolName');
  const selector = str('endpointSelector');
  const modes = [endpoints, endpointsFile, poolName, selector].filter((x) => x !== undefined).length;
  if (modes !== 1) {
    throw new EppConfigError(
      modes === 0 ? 'no endpoint discovery configured' : 'more than one endpoint discovery mode configured',
      'pass exactly one of --endpoints, --endpoints-file, --pool-name or --endpoint-selector (with --endpoint-target-ports)',
    );
  }
  const namespace = str('poolNamespace') ?? process.env.NAMESPACE ?? 'default';
  const refreshIntervalMs = opts.refreshMetricsInterval as number;
  if (endpoints !== undefined) return { endpoints: endpoints.split(','), namespace, refreshIntervalMs };
  if (endpointsFile !== undefined) return { endpointsFile, namespace, refreshIntervalMs };
  let targetPorts: number[] | undefined;
  if (selector !== undefined) {
    const raw = str('endpointTargetPorts');
    if (raw === undefined) throw new EppConfigError('--endpoint-target-ports is required with --endpoint-selector', 'pass e.g. --endpoint-target-ports=8000');
    targetPorts = [...new Set(raw.split(',').map((p) => int('endpoint-target-ports', 0, 65535)(p.trim())))];
    if (targetPorts.length < 1 || targetPorts.length > 8) throw new EppConfigError('--endpoint-target-ports: 1 to 8 ports', 'list between one and eight ports');
  }
  return {
    namespace,
    refreshIntervalMs,
    kubernetes: {
      poolNamespace: namespace,
      ...(poolName !== undefined ? { poolName } : {}),
      ...(str('poolGroup') !== undefined ? { poolGroup: str('poolGroup') as string } : {}),
      ...(selector !== undefined ? { endpointSelector: selector, targetPorts } : {}),
      ...(str('kubeconfig') !== undefined ? { kubeconfig: str('kubeconfig') as string } : {}),
      ...(typeof opts.modelServerMetricsPort === 'number' ? { metricsPortOverride: opts.modelServerMetricsPort } : {}),
    },
  };
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function buildProgram(): Command {
  const program = new Command('epp')
    .description('Endpoint Picker for LLM inference gateways (Envoy ext_proc)')
    .showHelpAfterError()
    .exitOverride();
  addServeCommand(program);
  addGatewayCommand(program);
  addDemoCommand(program);
  addBenchCommand(program);
  registerSimCommand(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  let running: Command | undefined;
  program.hook('preAction', (_program, action) => {
    running = action;
  });
  // grpc-js logs its own line for a failed bind; the busy port is reported once, below.
  setGrpcLogger({ error: (...args: unknown[]) => void (String(args[0]).includes('No address added out of total') ? undefined : console.error(...args)) });
  try {
    await program.parseAsync(normalizeGoFlags(argv), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    if (err instanceof EppConfigError) {
      process.stderr.write(`epp: ${err.message}\n`);
      process.exit(2);
    }
    const port = portInUse(err);
    if (port !== undefined) {
      process.stderr.write(`${portInUseMessage(port, running)}\n`);
      process.exit(1);
    }
    throw err;
  }
}

// bin/epp.js imports this module and calls main(); running the module itself (tsx src/cli/main.ts) also works.
if (process.argv[1] && /cli[\\/]main\.[jt]s$/.test(process.argv[1])) {
  await main(process.argv.slice(2));
}
