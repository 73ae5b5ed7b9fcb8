/** A simulated fleet plus an EPP running the embedded gateway in front of it, all on loopback. */
import { silentLogger } from '../../src/observability/logger.ts';
import { startEpp } from '../../src/server/bootstrap.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { startFleet, type Fleet, type SimServerOptions } from '../../src/sim/index.ts';
import { waitUntil } from './wait.ts';

export interface GatewayRig {
  readonly fleet: Fleet;
  readonly epp: RunningEpp;
  readonly baseURL: string;
  close(): Promise<void>;
}

export async function startGatewayRig(
  options: { servers?: number; configText?: string; serverOptions?: Partial<SimServerOptions>; maxRequestBodyBytes?: number; resourcesFile?: string } = {},
): Promise<GatewayRig> {
  const fleet = await startFleet({ servers: options.servers ?? 2, basePort: 0, serverOptions: { ...options.serverOptions } });
  const epp = await startEpp({
    grpcPort: 0,
    extProc: false,
    grpcHealthPort: -1,
    host: '127.0.0.1',
    secureServing: false,
    gateway: { port: 0 },
    discovery: { endpoints: fleet.servers.map((s) => `127.0.0.1:${s.port}`), refreshIntervalMs: 20 },
    logger: silentLogger(),
    shutdownGraceMs: 200,
    ...(options.maxRequestBodyBytes !== undefined ? { maxRequestBodyBytes: options.maxRequestBodyBytes } : {}),
    ...(options.configText ? { config: { text: options.configText, origin: 'test' } } : {}),
    ...(options.resourcesFile ? { admission: { resourcesFile: options.resourcesFile } } : {}),
  });
  const store = epp.store;
  await waitUntil(() => store.endpoints().length > 0 && store.endpoints().every((e) => e.metrics.updateTime > 0), 'first scrape');
  await epp.gateway?.refreshModels(); // the model catalog loaded: an unknown model is a 404 from the first request
  return {
    fleet,
    epp,
    baseURL: `http://127.0.0.1:${epp.gatewayPort}/v1`,
    async close() {
      await epp.close();
      await fleet.close();
    },
  };
}
