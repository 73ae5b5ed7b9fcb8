// A fleet of simulated servers in this process, each with its own engine, KV cache, metrics, faults and port.

import { RealClock } from './clock.ts';
import type { SimClock } from './clock.ts';
import type { SimServerOptions } from './config.ts';
import { EventLoopLagMonitor } from './event-loop-lag.ts';
import { SimHttpServer } from './http/sim-http-server.ts';
import type { LagSnapshot } from './metrics/server-metrics.ts';
import { SimServer } from './sim-server.ts';
import type { SchedulerState } from './engine.ts';

export interface FleetOptions {
  /** Number of servers (default 4). */
  readonly servers?: number;
  /** Server i listens on `basePort + i`; 0 gives every server an ephemeral port (default 8000). */
  readonly basePort?: number;
  /** Listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Every simulated duration lasts `timeScale` times longer in real time (default 1). */
  readonly timeScale?: number;
  /** Options shared by every server. `seed` is offset by the server index. */
  readonly serverOptions?: Partial<SimServerOptions>;
  /** Per-server overrides on top of `serverOptions`, e.g. `(i) => i === 0 ? { speedFactor: 2 } : {}`. */
  readonly perServerOptions?: (index: number) => Partial<SimServerOptions>;
  /** Server i is named `${namePrefix}-${i}` (default "sim"). */
  readonly namePrefix?: string;
  /** Clock shared by the servers; defaults to a `RealClock` with `timeScale`. */
  readonly clock?: SimClock;
  /** Event-loop lag reporting window in real ms (default 1000). */
  readonly lagWindowMs?: number;
}

export interface FleetServer {
  /** Also the `x-inference-pod` header value. */
  readonly name: string;
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  readonly sim: SimServer;
  /** Changes runtime knobs (faults, latency parameters); same names and rules as `POST /admin/config`. */
  setFaults(patch: Readonly<Record<string, unknown>>): void;
  /** Stops the server's engine for `durationMs` of simulated time. */
  stall(durationMs: number): void;
  state(): SchedulerState;
  /** Bound ZeroMQ addresses of its KV event PUB and replay ROUTER ("" when off). */
  readonly kvEventsEndpoint: string;
  readonly kvEventsReplayEndpoint: string;
  /** Current subscriptions to its KV events (0 when off). */
  kvEventsSubscriptions(): number;
  /** Kills this one server (stops listening, drops connections), e.g. to test failover. Idempotent. */
  close(): Promise<void>;
}

export interface Fleet {
  readonly servers: readonly FleetServer[];
  /** Event-loop lag of this process over the last window. */
  lag(): LagSnapshot;
  /** Aborts in-flight requests and closes every server. Idempotent. */
  close(): Promise<void>;
}

/** Starts the servers; rejects (closing whatever started) if a port cannot be bound or options are invalid. */
export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const count = options.servers ?? 4;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`servers must be a positive integer, got ${count}`);
  const basePort = options.basePort ?? 8000;
  const host = options.host ?? '127.0.0.1';
  const realClock = options.clock === undefined ? new RealClock(options.timeScale ?? 1) : null;
  const clock: SimClock = options.clock ?? (realClock as RealClock);
  const monitor = new EventLoopLagMonitor(options.lagWindowMs ?? 1000, () => realClock?.takeMaxLatenessMs() ?? 0);
  const lag = (): LagSnapshot => monitor.snapshot();
  const prefix = options.namePrefix ?? 'sim';
  const https: SimHttpServer[] = [];
  const servers: FleetServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const shared = options.serverOptions ?? {};
      const own = options.perServerOptions?.(i) ?? {};
      const seed = (own.seed ?? shared.seed ?? 42) + (own.seed === undefined ? i : 0);
      // A fixed KV-event port is offset by the server index (as vLLM offsets data-parallel ranks), so a fleet
      // sharing one address does not collide; `*` ports are picked by the OS anyway.
      const kv = (addr: string | undefined): string | undefined =>
        addr === undefined || own.kvEventsEndpoint !== undefined ? addr : addr.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) + i}`);
      const kvOptions = {
        ...(shared.kvEventsEndpoint !== undefined ? { kvEventsEndpoint: kv(shared.kvEventsEndpoint) } : {}),
        ...(shared.kvEventsReplayEndpoint !== undefined && own.kvEventsReplayEndpoint === undefined ? { kvEventsReplayEndpoint: kv(shared.kvEventsReplayEndpoint) } : {}),
      };
      const sim = new SimServer({ id: `${prefix}-${i}`, clock, lag, options: { ...shared, ...kvOptions, ...own, seed } });
      const http = new SimHttpServer(sim);
      https.push(http);
      const port = await http.listen(basePort === 0 ? 0 : basePort + i, host);
      const urlHost = host.includes(':') ? `[${host}]` : host;
      servers.push({
        name: sim.id,
        port,
        url: `http://${urlHost}:${port}`,
        sim,
        setFaults: (patch) => sim.updateConfig(patch),
        stall: (ms) => sim.stall(ms),
        state: () => sim.state(),
        kvEventsEndpoint: http.kvPublisher?.endpoint ?? '',
        kvEventsReplayEndpoint: http.kvPublisher?.replayEndpoint ?? '',
        kvEventsSubscriptions: () => http.kvPublisher?.subscriptions ?? 0,
        close: () => http.close(),
      });
    }
  } catch (err) {
    await Promise.all(https.map((h) => h.close()));
    monitor.stop();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    servers,
    lag,
    close: () => {
      closing ??= Promise.all(https.map((h) => h.close())).then(() => monitor.stop());
      return closing;
    },
  };
}
