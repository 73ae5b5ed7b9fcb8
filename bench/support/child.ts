/**
 * Server processes of the benchmarks: forked once per run and kept alive while the variants alternate, so A
 * and B are measured against the same processes (not a fresh, cold process per scenario). The parent reads
 * the child's CPU time over IPC (the child's `process.cpuUsage()`), so a per-operation CPU cost can be
 * computed for the server alone.
 *
 * It can also sample the child's own event-loop delay over a window (`perf_hooks.monitorEventLoopDelay`, 1 ms
 * resolution, on only between `loopDelayStart()` and `loopDelayStop()` so its timer costs nothing elsewhere):
 * how long the server's thread was unavailable, apart from what the client process adds (time the OS did not
 * schedule the child still counts).
 *
 * `BENCH_CHILD_NODE_ARGS` (space-separated node flags) is added to every child's node arguments, e.g.
 * `BENCH_CHILD_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'` profiles the servers (node refuses --cpu-prof in
 * NODE_OPTIONS); the profile is written when the child stops.
 *
 * `BENCH_PIN=<server cpus>/<client cpus>` pins every child to the server cpus and this process to the client cpus
 * (bench/support/pin.ts).
 *
 * Parent: `const s = await startChild(url, args)`, `await s.cpuMicros()`, `await s.stop()`.
 * Child:  `announce(port, close)` once listening.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { pin, pinPlanFromEnv } from './pin.ts';

interface Ready {
  readonly ready: true;
  readonly port: number;
}
interface Reply {
  readonly id: number;
  readonly cpu?: number;
  readonly loopDelay?: LoopDelay;
}
type Request = { readonly id: number } & ({ readonly cpu: true } | { readonly loopDelay: 'start' | 'stop' });

/** Event-loop delay of the child over a window, in microseconds. */
export interface LoopDelay {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface BenchChild {
  readonly port: number;
  readonly pid: number;
  /** The child's CPU time so far (user + system), in microseconds. */
  cpuMicros(): Promise<number>;
  loopDelayStart(): Promise<void>;
  /** The child's event-loop delay since `loopDelayStart()`. */
  loopDelayStop(): Promise<LoopDelay>;
  stop(): Promise<void>;
}

let parentPinned = false;

/** Forks `script` (TypeScript, run through tsx) with `args`; resolves once it announced its port. */
export async function startChild(script: URL, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<BenchChild> {
  const child: ChildProcess = fork(script.pathname, [...args], {
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')],
    env: { ...process.env, EPP_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script.pathname} exited (${code}) before announcing its port`)));
    const onMessage = (m: Ready): void => {
      if (m.ready) {
        child.off('message', onMessage);
        resolve(m.port);
      }
    };
    child.on('message', onMessage);
  });
  const plan = pinPlanFromEnv();
  if (plan) {
    // After the announcement every thread the child will run exists or is created by one that is pinned.
    pin(child.pid as number, plan.server);
    if (!parentPinned) parentPinned = pin(process.pid, plan.client);
  }
  let seq = 0;
  const ask = (body: { cpu: true } | { loopDelay: 'start' | 'stop' }): Promise<Reply> => {
    const id = ++seq;
    return new Promise((resolve) => {
      const onMessage = (m: Reply): void => {
        if (m.id === id) {
          child.off('message', onMessage);
          resolve(m);
        }
      };
      child.on('message', onMessage);
      child.send({ id, ...body } satisfies Request);
    });
  };
  return {
    port,
    pid: child.pid as number,
    async cpuMicros() {
      return (await ask({ cpu: true })).cpu as number;
    },
    async loopDelayStart() {
      await ask({ loopDelay: 'start' });
    },
    async loopDelayStop() {
      return (await ask({ loopDelay: 'stop' })).loopDelay as LoopDelay;
    },
    async stop() {
      if (child.exitCode === null) child.send({ stop: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** In the child: tells the parent the port, answers CPU-time queries, and stops on request or orphaning. */
export function announce(port: number, close: () => Promise<void>): void {
  const stop = (): void => void close().finally(() => process.exit(0));
  let histogram: IntervalHistogram | undefined;
  process.on('message', (m: Request | { stop: true }) => {
    if ('stop' in m) return stop();
    if ('cpu' in m) {
      const u = process.cpuUsage();
      process.send?.({ id: m.id, cpu: u.user + u.system } satisfies Reply);
    } else if (m.loopDelay === 'start') {
      histogram?.disable();
      histogram = monitorEventLoopDelay({ resolution: 1 });
      histogram.enable();
      process.send?.({ id: m.id } satisfies Reply);
    } else {
      const h = histogram;
      histogram = undefined;
      h?.disable();
      const us = (ns: number | undefined): number => (ns === undefined ? Number.NaN : ns / 1000);
      process.send?.({ id: m.id, loopDelay: { p50: us(h?.percentile(50)), p99: us(h?.percentile(99)), max: us(h?.max) } } satisfies Reply);
    }
  });
  process.on('disconnect', stop); // the parent finished or crashed
  process.send?.({ ready: true, port } satisfies Ready);
}
