// `epp sim`: starts a fleet of simulated vLLM servers and runs until SIGINT/SIGTERM.

import type { Command } from 'commander';
import { KNOBS, defaultServerOptions, formatKnobValue, parseKnobValue } from './config.ts';
import type { SimServerOptions } from './config.ts';
import { startFleet } from './fleet.ts';
import type { Fleet } from './fleet.ts';

/** Hooks for embedding and tests. */
export interface SimCommandHooks {
  /** Called once every server listens. */
  onStarted?: (fleet: Fleet) => void;
  /** Where SIGINT/SIGTERM are awaited (default `process`). */
  signals?: Pick<NodeJS.EventEmitter, 'once' | 'off'>;
  /** Output lines (default: stdout). */
  log?: (line: string) => void;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `max-num-seqs` → `maxNumSeqs`, commander's attribute name for `--max-num-seqs`. */
function attributeName(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function parseIntOption(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name}: expected an integer ≥ ${min}, got ${value}`);
    return n;
  };
}

/**
 * Adds the `sim` subcommand to `program`. The action resolves after the fleet has shut down on SIGINT or
 * SIGTERM, so `await program.parseAsync(argv)` returns once the simulator stopped.
 */
export function registerSimCommand(program: Command, hooks: SimCommandHooks = {}): Command {
  const defaults = defaultServerOptions();
  const cmd = program
    .command('sim')
    .description('run a fleet of simulated vLLM model servers (OpenAI API, /metrics, KV events, faults)')
    .option('--servers <n>', 'number of simulated servers', parseIntOption('servers', 1), 4)
    .option('--base-port <port>', 'port of server 0; server i listens on base-port + i (0 = ephemeral ports)', parseIntOption('base-port', 0), 8000)
    .option('--host <address>', 'listen address', '127.0.0.1')
    .option('--model <name>', `served model name, repeatable; the first is displayed (default: ${defaults.servedModelNames[0]})`, collect, [])
    .option('--lora <name[=path]>', 'LoRA adapter registered at start-up, repeatable', collect, [])
    .option('--time-scale <k>', 'every simulated duration lasts k times longer in real time', '1')
    .option('--slow-server <i=factor>', 'speed-factor of one server, repeatable (e.g. 0=2)', collect, []);
  for (const knob of KNOBS) {
    cmd.option(`--${knob.name} <value>`, `${knob.description} (default: ${JSON.stringify(formatKnobValue(knob, defaults))})`);
  }
  cmd.addHelpText('after', '\nDurations accept us, ms, s suffixes (bare numbers are ms). Runtime knobs can be changed later with POST /admin/config on each server.');

  cmd.action(async () => {
    const log = hooks.log ?? ((line: string) => process.stdout.write(`${line}\n`));
    const opts = cmd.opts<Record<string, unknown>>();
    const serverOptions: Partial<SimServerOptions> = {};
    for (const knob of KNOBS) {
      const raw = opts[attributeName(knob.name)];
      if (raw !== undefined) Object.assign(serverOptions, { [knob.key]: parseKnobValue(knob, raw) });
    }
    const models = opts['model'] as string[];
    if (models.length > 0) serverOptions.servedModelNames = models;
    const loras: Record<string, string> = {};
    for (const spec of opts['lora'] as string[]) {
      const [name, path] = spec.split('=', 2);
      if (name === undefined || name === '') throw new RangeError(`--lora: expected name[=path], got ${spec}`);
      loras[name] = path ?? name;
    }
    serverOptions.loras = loras;
    const slow = new Map<number, number>();
    for (const spec of opts['slowServer'] as string[]) {
      const [index, factor] = spec.split('=', 2).map(Number);
      if (index === undefined || factor === undefined || !Number.isInteger(index) || !(factor > 0)) {
        throw new RangeError(`--slow-server: expected index=factor, got ${spec}`);
      }
      slow.set(index, factor);
    }
    const timeScale = Number(opts['timeScale']);
    if (!(timeScale > 0)) throw new RangeError(`--time-scale: expected a positive number, got ${String(opts['timeScale'])}`);

    const fleet = await startFleet({
      servers: opts['servers'] as number,
      basePort: opts['basePort'] as number,
      host: opts['host'] as string,
      timeScale,
      serverOptions,
      perServerOptions: (i) => (slow.has(i) ? { speedFactor: slow.get(i) as number } : {}),
    });
    const first = fleet.servers[0]?.sim;
    log(`epp sim: ${fleet.servers.length} server(s), model ${first?.baseModel ?? '?'}, latency model ${first?.options.latencyModel ?? '?'}, time-scale ${timeScale}`);
    for (const s of fleet.servers) log(`  ${s.name} ${s.url}`);
    hooks.onStarted?.(fleet);

    const signals = hooks.signals ?? process;
    const signal = await new Promise<string>((resolve) => {
      const onInt = (): void => finish('SIGINT');
      const onTerm = (): void => finish('SIGTERM');
      const finish = (name: string): void => {
        signals.off('SIGINT', onInt);
        signals.off('SIGTERM', onTerm);
        resolve(name);
      };
      signals.once('SIGINT', onInt);
      signals.once('SIGTERM', onTerm);
    });
    log(`epp sim: ${signal} received, shutting down`);
    await fleet.close();
  });
  return cmd;
}
