/**
 * Server processes of the benchmarks: forked once per run and kept alive while the variants alternate, so A
 * and B are measured against the same processes (not a fresh, cold process per scenario). The parent reads
 * the child's CPU time over IPC (the child's `process.cpuUsage()`), so a per-operation CPU cost can be
 * computed for the server alone.
 *
 * Parent: `const s = await startChild(url, args)`, `await s.cpuMicros()`, `await s.stop()`.
 * Child:  `announce({ port }, close)` once listening.
 */
import { fork, type ChildProcess } from 'node:child_process';

interface Ready {
  readonly ready: true;
  readonly port: number;
}
interface CpuReply {
  readonly cpu: number;
  readonly id: number;
}

export interface BenchChild {
  readonly port: number;
  readonly pid: number;
  /** The child's CPU time so far (user + system), in microseconds. */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

/** Forks `script` (TypeScript, run through tsx) with `args`; resolves once it announced its port. */
export async function startChild(script: URL, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<BenchChild> {
  const child: ChildProcess = fork(script.pathname, [...args], {
    execArgv: ['--import', 'tsx'],
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
  let seq = 0;
  return {
    port,
    pid: child.pid as number,
    cpuMicros() {
      const id = ++seq;
      return new Promise((resolve) => {
        const onMessage = (m: CpuReply): void => {
          if (m.id === id) {
            child.off('message', onMessage);
            resolve(m.cpu);
          }
        };
        child.on('message', onMessage);
        child.send({ cpu: id });
      });
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
  process.on('message', (m: { cpu?: number; stop?: boolean }) => {
    if (m.cpu !== undefined) {
      const u = process.cpuUsage();
      process.send?.({ id: m.cpu, cpu: u.user + u.system } satisfies CpuReply);
    } else if (m.stop) stop();
  });
  process.on('disconnect', stop); // the parent finished or crashed
  process.send?.({ ready: true, port } satisfies Ready);
}
