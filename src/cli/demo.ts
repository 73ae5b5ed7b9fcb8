/**
 * `epp demo` (what `npm start` runs): a simulated vLLM fleet plus the embedded gateway with the default config
 * (`epp-default`: load-bounded prefix affinity over the precise prefix index), ready in one command. The simulators publish
 * their KV-cache events over ZeroMQ on ports the OS picks (nothing to collide with); the demo writes each server's
 * event address into an endpoints file's labels, as a user would, and the EPP follows them. `--endpoints` or
 * `--config-file` point it at real servers instead (tokens then come from the engines' render endpoints).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { kvEventsLabels } from '../framework/datalayer.ts';
import { EppConfigError } from '../framework/errors.ts';
import type { Logger } from '../framework/plugin.ts';
import { createLogger } from '../observability/logger.ts';
import type { RunningEpp } from '../server/bootstrap-options.ts';
import type { Fleet } from '../sim/index.ts';
import { DEFAULT_MODEL_NAME } from '../sim/config.ts';

function port(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new EppConfigError(`--${flag}: '${v}' is not a port`, `pass e.g. --${flag}=8080`);
    return n;
  };
}

export interface DemoOptions {
  readonly servers: number;
  /** First simulated server port (0 = ephemeral). */
  readonly basePort: number;
  /** Gateway port (0 = ephemeral). */
  readonly port: number;
  /** Real servers `ip:port,...` instead of a simulated fleet. */
  readonly endpoints?: string;
  readonly configFile?: string;
  readonly logger: Logger;
}

export interface RunningDemo {
  readonly epp: RunningEpp;
  /** The simulated fleet (undefined with `endpoints`). */
  readonly fleet: Fleet | undefined;
  /** The endpoints file the demo wrote for its fleet (removed by `close`); undefined with `endpoints`. */
  readonly endpointsFile: string | undefined;
  /** What the demo prints once ready: the gateway, the servers and their KV-event addresses, a request to try. */
  banner(): string;
  /** Stops the EPP, then the fleet, and removes the endpoints file. Idempotent. */
  close(): Promise<void>;
}

/** The demo's endpoints file: every server with its KV-event PUB and replay ROUTER as labels (`--endpoints-file`). */
function endpointsFileOf(fleet: Fleet): string {
  return JSON.stringify({
    endpoints: fleet.servers.map((s) => ({
      address: '127.0.0.1',
      port: s.port,
      name: s.name,
      labels: kvEventsLabels(s),
    })),
  });
}

/**
 * Starts the demo: the fleet (each server publishing KV events on an OS-picked loopback port, with a replay
 * socket), its endpoints file, and the EPP's gateway on `port`. On failure (a busy port, a bad config) whatever
 * started is stopped before the error is rethrown.
 */
export async function startDemo(o: DemoOptions): Promise<RunningDemo> {
  // Loaded when the demo runs, not for `epp --help`.
  const [{ configSourceFrom, startEpp }, { startFleet }, { eppDefaultConfigText }] = await Promise.all([
    import('../server/bootstrap.ts'),
    import('../sim/index.ts'),
    import('../config/presets.ts'),
  ]);
  let fleet: Fleet | undefined;
  let dir: string | undefined;
  let endpointsFile: string | undefined;
  let epp: RunningEpp | undefined;
  const cleanUp = async (): Promise<void> => {
    await epp?.close();
    await fleet?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };
  try {
    let discovery: { endpoints: string[] } | { endpointsFile: string };
    if (o.endpoints) {
      discovery = { endpoints: o.endpoints.split(',').filter((s) => s.trim() !== '') };
    } else {
      fleet = await startFleet({
        servers: o.servers,
        basePort: o.basePort,
        serverOptions: { kvEventsEndpoint: 'tcp://127.0.0.1:*', kvEventsReplayEndpoint: 'tcp://127.0.0.1:*' },
      });
      dir = mkdtempSync(join(tmpdir(), 'epp-demo-'));
      endpointsFile = join(dir, 'endpoints.json');
      writeFileSync(endpointsFile, endpointsFileOf(fleet));
      discovery = { endpointsFile };
    }
    // The simulated fleet tokenizes as the simulator does (`backend: sim`); real servers tokenize with their
    // model, so against them the token ids come from the engines' render endpoints.
    const config = configSourceFrom(o.configFile, undefined) ?? {
      text: eppDefaultConfigText(fleet ? 'sim' : 'render'),
      origin: fleet ? 'epp-default' : 'epp-default (token-producer backend: render)',
    };
    epp = await startEpp({
      extProc: false,
      grpcPort: 0,
      grpcHealthPort: -1,
      secureServing: false,
      gateway: { port: o.port, host: '127.0.0.1' },
      config,
      discovery,
      logger: o.logger,
      shutdownGraceMs: 2000,
    });
    await epp.dataLayer?.whenReady();
    const deadline = Date.now() + 10_000;
    const store = epp.store;
    while (!store.endpoints().some((e) => e.metrics.updateTime > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  } catch (err) {
    await cleanUp();
    throw err;
  }
  const running = epp;
  const servers = fleet?.servers ?? [];
  const count = fleet ? servers.length : running.store.endpoints().length;
  let closing: Promise<void> | undefined;
  return {
    epp: running,
    fleet,
    endpointsFile,
    banner: () => {
      const url = `http://127.0.0.1:${running.gatewayPort}/v1`;
      const model = fleet ? DEFAULT_MODEL_NAME : 'YOUR-MODEL';
      return [
        '',
        `endpoint-picker demo: ${fleet ? `${count} simulated vLLM servers` : `${count} servers`} behind the gateway`,
        `  gateway   ${url}   (OpenAI-compatible; GET ${url}/models)`,
        ...servers.map((s) => `  server    ${s.url}   (${s.name}; /metrics; KV events ${s.kvEventsEndpoint})`),
        '',
        'Try a streaming chat request:',
        `  curl -N ${url}/chat/completions -H 'content-type: application/json' \\`,
        `    -d '{"model":"${model}","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`,
        '',
        'The x-inference-pod response header (curl -i) names the server that answered. Ctrl-C stops everything.',
        '',
      ].join('\n');
    },
    close: () => (closing ??= cleanUp()),
  };
}

export function addDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('One-command demo: a simulated vLLM fleet behind the embedded OpenAI-compatible gateway (what `npm start` runs)')
    .addOption(new Option('--servers <n>', 'simulated model servers').default(4).argParser((v) => Number(v)))
    .addOption(new Option('--base-port <port>', 'first simulated server port (0 = ephemeral)').default(8001).argParser(port('base-port')))
    .addOption(new Option('--port <port>', 'gateway port').default(8080).argParser(port('port')))
    .addOption(new Option('--endpoints <list>', 'use these real servers (ip:port,...) instead of a simulated fleet'))
    .addOption(new Option('--config-file <path>', 'EndpointPickerConfig (default: epp-default)'))
    .addOption(new Option('-v, --v <level>', 'log verbosity (demo default: warnings only)').argParser((v) => Number(v)))
    .action(async (opts: { servers: number; basePort: number; port: number; endpoints?: string; configFile?: string; v?: number }) => {
      const logger = opts.v === undefined ? createLogger({ level: 'warn' }) : createLogger({ verbosity: opts.v });
      const demo = await startDemo({ ...opts, logger });
      process.stdout.write(demo.banner());
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        process.stdout.write('stopping…\n');
        void demo.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
