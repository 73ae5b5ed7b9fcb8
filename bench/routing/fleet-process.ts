/**
 * The simulated fleet of one benchmark run, in its own process (sim-spec §6.3 layout: all simulated servers in
 * one process, the router and the load generator in theirs). The parent forks this file with
 * `--fleet-child`, sends `{type:'start', …}`, gets `{type:'ready', ports}`, and sends `{type:'close'}` at the end.
 */
import { startFleet, type Fleet, type SimServerOptions } from '../../src/sim/index.ts';

export interface FleetStart {
  readonly type: 'start';
  readonly servers: number;
  readonly timeScale: number;
  readonly serverOptions: Partial<SimServerOptions>;
  readonly perServer: Readonly<Record<number, Readonly<Record<string, unknown>>>>;
}

export type FleetReply =
  | { readonly type: 'ready'; readonly ports: number[]; readonly names: string[]; readonly kvEventsEndpoints: string[] }
  | { readonly type: 'closed' };

if (process.send !== undefined && process.argv.includes('--fleet-child')) {
  let fleet: Fleet | undefined;
  process.on('message', (m: FleetStart | { type: 'close' }) => {
    if (m.type === 'start') {
      void startFleet({
        servers: m.servers,
        basePort: 0,
        timeScale: m.timeScale,
        serverOptions: m.serverOptions,
        perServerOptions: (i) => (m.perServer[i] ?? {}) as Partial<SimServerOptions>,
      }).then((f) => {
        fleet = f;
        process.send?.({
          type: 'ready',
          ports: f.servers.map((s) => s.port),
          names: f.servers.map((s) => s.name),
          kvEventsEndpoints: f.servers.map((s) => s.kvEventsEndpoint),
        } satisfies FleetReply);
      });
    } else {
      void (fleet?.close() ?? Promise.resolve()).then(() => {
        process.send?.({ type: 'closed' } satisfies FleetReply);
        process.disconnect?.();
        process.exit(0);
      });
    }
  });
}
