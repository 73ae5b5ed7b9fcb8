/**
 * A port already in use is a newcomer's first failure (a second `npm start`, a leftover server): say which port
 * and which flag moves it, in one line, instead of a stack trace.
 */
import type { Command } from 'commander';

/** The port of an "address already in use" failure (Node's net error, or grpc-js's bind error), else undefined. */
export function portInUse(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; port?: unknown; message?: unknown };
  if (e.code === 'EADDRINUSE' && typeof e.port === 'number') return e.port;
  const m = typeof e.message === 'string' ? /EADDRINUSE: address already in use \S*:(\d+)/.exec(e.message) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * The one-line message: the port, and the flag of `command` that set it (the port flag whose value is that port;
 * else every port flag of the command, e.g. `--base-port` when the fleet's server i listens on base-port + i).
 */
export function portInUseMessage(port: number, command: Command | undefined): string {
  const flags: string[] = [];
  let exact: string | undefined;
  if (command) {
    const opts = command.opts<Record<string, unknown>>();
    for (const o of command.options) {
      if (!o.long || !/port$/.test(o.long)) continue;
      flags.push(o.long);
      if (opts[o.attributeName()] === port) exact ??= o.long;
    }
  }
  const how = exact ? `choose another with ${exact}` : flags.length > 0 ? `move it with ${flags.join(' / ')}` : 'stop what holds it';
  return `epp: port ${port} is already in use; ${how} (0 = any free port)`;
}
