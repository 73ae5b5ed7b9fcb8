/**
 * CPU pinning for benchmarks (Linux, `taskset` from util-linux): the measured server on its own core, the load
 * generator on the other, so the figure shows what the server does rather than how the OS shares two cores
 * between it and its client. `BENCH_PIN=<server cpus>/<client cpus>` (e.g. `1/0`) turns it on; every child
 * forked by bench/support/child.ts is moved, all its threads, to the server cpus, and the benchmark process to
 * the client cpus. Without `taskset`, or with a CPU list this machine lacks, pinning is refused with a message
 * and the run goes on unpinned (the run-info line says which).
 */
import { execFileSync } from 'node:child_process';

export interface PinPlan {
  readonly server: string;
  readonly client: string;
}

/** The plan from `BENCH_PIN`, or undefined when unset. Throws on a malformed value, naming the fix. */
export function pinPlanFromEnv(env: NodeJS.ProcessEnv = process.env): PinPlan | undefined {
  const raw = env.BENCH_PIN;
  if (raw === undefined || raw === '') return undefined;
  const m = /^([0-9,-]+)\/([0-9,-]+)$/.exec(raw);
  if (!m) throw new Error(`BENCH_PIN=${raw}: expected <server cpus>/<client cpus>, e.g. BENCH_PIN=1/0`);
  return { server: m[1] as string, client: m[2] as string };
}

/** Moves every thread of `pid` to `cpus`; false (with a warning on stderr) when taskset is missing or refuses. */
export function pin(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch (err) {
    process.stderr.write(`bench: could not pin pid ${pid} to cpus ${cpus} (${(err as Error).message}); running unpinned\n`);
    return false;
  }
}
