/**
 * Assembles a running EPP from its options: plugin registry → config → endpoint store → director →
 * ext_proc server (+ gRPC health). The CLI (`epp serve`) and the tests both start the EPP through here.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { Endpoint, EndpointStore } from '../framework/datalayer.ts';
import { EMPTY_METRICS, joinHostPort } from '../framework/datalayer.ts';
import { EppConfigError } from '../framework/errors.ts';
import type { Clock, Logger, Plugin, PluginHandle, RandomSource } from '../framework/plugin.ts';
import { loadConfig, defaultConfigSource, type ConfigSource, type LoadedConfig } from '../config/loader.ts';
import { EppMetrics } from '../observability/metrics.ts';
import { Director } from '../runtime/director.ts';
import { PluginRegistry } from '../runtime/plugin-registry.ts';
import { DEFAULT_RESPONSE_PATH_OPTIONS, type ResponsePathOptions } from '../runtime/response-stream.ts';
import { Scheduler } from '../runtime/scheduler.ts';
import { systemClock } from '../util/clock.ts';
import { createRandomSource } from '../util/random.ts';
import { ExtProcServer } from './extproc/server.ts';
import { startHealthServer } from './health.ts';
import type { TlsMaterial } from './tls.ts';
import type { Server } from '@grpc/grpc-js';

export interface EppOptions {
  readonly grpcPort: number;
  /** 0 = ephemeral; -1 = do not start the health server. */
  readonly grpcHealthPort: number;
  readonly host?: string;
  readonly secureServing: boolean;
  readonly certPath?: string;
  readonly healthChecking?: boolean;
  readonly config?: ConfigSource;
  /** Static endpoints `ip:port` (the data layer adds discovery and metrics). */
  readonly endpoints?: readonly string[];
  /** An endpoint store to use instead of `endpoints` (tests, embedders). */
  readonly store?: EndpointStore;
  /** Files whose default export (or `register` export) registers plugin types: `(registry) => void`. */
  readonly pluginModules?: readonly string[];
  /** Registers extra plugin types before the config loads (tests, embedders). */
  readonly registerPlugins?: (registry: PluginRegistry) => void;
  readonly responsePath?: Partial<ResponsePathOptions>;
  readonly maxRequestBodyBytes?: number;
  readonly shutdownGraceMs?: number;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  readonly metrics?: EppMetrics;
}

export interface RunningEpp {
  readonly grpcPort: number;
  readonly healthPort: number | undefined;
  readonly director: Director;
  readonly config: LoadedConfig;
  readonly metrics: EppMetrics;
  readonly server: ExtProcServer;
  /** Stops accepting, drains open streams up to the grace period, then closes everything. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_REQUEST_BODY_BYTES = 64 * 1024 * 1024;

/** Parses `ip:port[,ip:port...]` into endpoints with empty metrics (they are stale until scraped). */
export function staticEndpoints(list: readonly string[]): Endpoint[] {
  return list.map((item, i) => {
    const s = item.trim();
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(s);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port > 0 && port < 65536)) {
      throw new EppConfigError(`--endpoints: entry ${i} '${s}' is not ip:port`, 'list endpoints as ip:port[,ip:port...], e.g. 10.0.0.5:8000');
    }
    const address = m[1] as string;
    const hostPort = joinHostPort(address, port);
    return {
      metadata: { name: hostPort, namespace: '', podName: hostPort, address, port, metricsHost: hostPort, labels: {} },
      metrics: EMPTY_METRICS,
      hostPort,
    };
  });
}

class FixedStore implements EndpointStore {
  constructor(readonly list: readonly Endpoint[]) {}
  endpoints(): readonly Endpoint[] {
    return this.list;
  }
  poolKnown(): boolean {
    return true;
  }
}

async function loadPluginModules(registry: PluginRegistry, files: readonly string[]): Promise<void> {
  for (const file of files) {
    const mod = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown; register?: unknown };
    const register = typeof mod.register === 'function' ? mod.register : mod.default;
    if (typeof register !== 'function') {
      throw new EppConfigError(`--plugin-module ${file}: exports no register function`, 'export `register(registry)` (or a default function) that calls registry.register(type, factory)');
    }
    await (register as (r: PluginRegistry) => unknown)(registry);
  }
}

export async function startEpp(o: EppOptions): Promise<RunningEpp> {
  const clock = o.clock ?? systemClock;
  const random = o.random ?? createRandomSource();
  const metrics = o.metrics ?? new EppMetrics();
  metrics.info.set({ commit: process.env.EPP_COMMIT ?? 'dev', build_ref: process.env.EPP_BUILD_REF ?? 'dev' }, 1);
  const registry = PluginRegistry.withBuiltins();
  o.registerPlugins?.(registry);
  await loadPluginModules(registry, o.pluginModules ?? []);
  registry.freeze();

  let store: EndpointStore | undefined = o.store;
  const storeRef = (): readonly Endpoint[] => store?.endpoints() ?? [];
  const config = loadConfig(o.config ?? defaultConfigSource(), {
    registry,
    handle: (lookup): PluginHandle => ({
      logger: o.logger,
      clock,
      random,
      plugin: lookup,
      endpoints: storeRef,
    }),
  });
  store ??= new FixedStore(staticEndpoints(o.endpoints ?? []));

  const now = () => clock.now();
  const director = new Director({
    store,
    parser: config.parser,
    scheduler: new Scheduler(config.profileHandler, config.profiles, metrics),
    hooks: config.hooks,
    metrics,
    logger: o.logger,
    random,
    now,
    responsePath: { ...DEFAULT_RESPONSE_PATH_OPTIONS, ...o.responsePath },
  });

  let tls: TlsMaterial | undefined;
  if (o.secureServing) {
    // Loaded on demand: the X.509 tooling is only needed when TLS is on.
    const { generateSelfSignedCertificate, loadCertificate } = await import('./tls.ts');
    tls = o.certPath ? loadCertificate(o.certPath) : await generateSelfSignedCertificate();
  }
  const readyStore = store;
  const server = new ExtProcServer({
    director,
    metrics,
    logger: o.logger,
    now,
    maxRequestBodyBytes: o.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES,
    tls,
    healthChecking: o.healthChecking ?? false,
    isServing: () => readyStore.poolKnown(),
  });
  const host = o.host ?? '0.0.0.0';
  const grpcPort = await server.listen(o.grpcPort, host);
  let health: { server: Server; port: number } | undefined;
  if (o.grpcHealthPort >= 0) health = await startHealthServer(o.grpcHealthPort, host, () => readyStore.poolKnown());
  o.logger.info(
    { grpcPort, healthPort: health?.port, tls: tls ? (o.certPath ? 'cert-path' : 'self-signed') : 'off', config: config.origin, plugins: config.plugins.map((p: Plugin) => `${p.typedName.name}/${p.typedName.type}`) },
    'EPP ext_proc server listening',
  );

  let closing: Promise<void> | undefined;
  return {
    grpcPort,
    healthPort: health?.port,
    director,
    config,
    metrics,
    server,
    close() {
      closing ??= (async () => {
        await server.shutdown(o.shutdownGraceMs ?? 30_000);
        health?.server.forceShutdown();
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
