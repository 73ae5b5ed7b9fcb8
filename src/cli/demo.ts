/**
 * `epp demo` (what `npm start` runs): a simulated vLLM fleet plus the embedded gateway with the default
 * config, ready in one command. `--endpoints` or `--config-file` point it at real servers instead.
 */
import { Command, Option } from 'commander';
import { EppConfigError } from '../framework/errors.ts';
import { createLogger } from '../observability/logger.ts';
import type { Fleet } from '../sim/index.ts';
import { DEFAULT_MODEL_NAME } from '../sim/config.ts';

function port(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new EppConfigError(`--${flag}: '${v}' is not a port`, `pass e.g. --${flag}=8080`);
    return n;
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
      // Loaded when the demo runs, not for `epp --help`.
      const [{ configSourceFrom, startEpp }, { startFleet }, { EPP_DEFAULT_CONFIG_TEXT }] = await Promise.all([
        import('../server/bootstrap.ts'),
        import('../sim/index.ts'),
        import('../config/presets.ts'),
      ]);
      let fleet: Fleet | undefined;
      let endpoints: string[];
      if (opts.endpoints) {
        endpoints = opts.endpoints.split(',').filter((s) => s.trim() !== '');
      } else {
        fleet = await startFleet({ servers: opts.servers, basePort: opts.basePort });
        endpoints = fleet.servers.map((s) => `127.0.0.1:${s.port}`);
      }
      const epp = await startEpp({
        extProc: false,
        grpcPort: 0,
        grpcHealthPort: -1,
        secureServing: false,
        gateway: { port: opts.port, host: '127.0.0.1' },
        config: configSourceFrom(opts.configFile, undefined) ?? { text: EPP_DEFAULT_CONFIG_TEXT, origin: 'epp-default' },
        discovery: { endpoints },
        logger,
        shutdownGraceMs: 2000,
      });
      await epp.dataLayer?.whenReady();
      const deadline = Date.now() + 10_000;
      const store = epp.store;
      while (!store.endpoints().some((e) => e.metrics.updateTime > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const url = `http://127.0.0.1:${epp.gatewayPort}/v1`;
      const model = fleet ? DEFAULT_MODEL_NAME : 'YOUR-MODEL';
      process.stdout.write(
        [
          '',
          `endpoint-picker demo: ${fleet ? `${fleet.servers.length} simulated vLLM servers` : `${endpoints.length} servers`} behind the gateway`,
          `  gateway   ${url}   (OpenAI-compatible; GET ${url}/models)`,
          ...(fleet ? fleet.servers.map((s) => `  server    ${s.url}   (${s.name}; /metrics)`) : []),
          '',
          'Try a streaming chat request:',
          `  curl -N ${url}/chat/completions -H 'content-type: application/json' \\`,
          `    -d '{"model":"${model}","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`,
          '',
          'The x-inference-pod response header (curl -i) names the server that answered. Ctrl-C stops everything.',
          '',
        ].join('\n'),
      );
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        process.stdout.write('stopping…\n');
        void (async () => {
          await epp.close();
          await fleet?.close();
          process.exit(0);
        })();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
