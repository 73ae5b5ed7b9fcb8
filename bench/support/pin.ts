/**
 * CPU pinning for benchmarks (Linux, `taskset` from util-linux): the measured server on its own core, the load
 * generator on the other, so the figure shows what the server does rather than how the OS shares two cores
 * between it and its client. `BENCH_PIN=<server cpus>/<client cpus>` (e.g. `1/0`) turns it on; every child
 * forked by bench/support/child.ts is moved, all its threads, to the server cpus, and the benchmark process to
 * the client cpus. Without `taskset`, or with a CPU list this machine lacks, pinning is refused with a message
 * and the run goes on unpinned (the run-info line says which).
 *
 * `pinning()` is the finer cut for a benchmark whose measured replica runs inside the benchmark process
 * (bench:replicas-path): the process's main thread alone on the last core, and everything else the benchmark
 * runs — the process's other threads (V8's collector helpers, libuv's pool), its child processes (redis-server)
 * — on the others. Processes the benchmark did not start keep the kernel's placement: without `isolcpus` the
 * measured core is still shared with them, so a pinned run's run-queue wait is what is left of the machine, not
 * zero. It checks what it needs and returns the reason instead when pinning cannot work here (not Linux, one
 * core, no `taskset`); `pin()` / `unpin()` can be called between rounds, so pinned and unpinned rounds can
 * alternate in one run. Threads the main thread creates later inherit its core.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

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
    tasksetOrThrow(['-a', '-p', '-c', cpus, String(pid)]);
    return true;
  } catch (err) {
    process.stderr.write(`bench: could not pin pid ${pid} to cpus ${cpus} (${(err as Error).message}); running unpinned\n`);
    return false;
  }
}

export interface Pinning {
  /** e.g. "main thread on CPU 1; its other threads and 1 child process on CPU 0". */
  readonly description: string;
  pin(): void;
  unpin(): void;
}

function tasksetOrThrow(args: readonly string[]): void {
  const r = spawnSync('taskset', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`taskset ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`taskset ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
}

/**
 * Pinning of this process's main thread against `children` (pids of processes the benchmark started), or why it
 * is not possible on this machine.
 */
export function pinning(children: () => readonly number[] = () => []): Pinning | { unavailable: string } {
  if (process.platform !== 'linux') return { unavailable: `pinning needs Linux's taskset (platform ${process.platform})` };
  const cores = availableParallelism();
  if (cores < 2) return { unavailable: 'pinning needs at least 2 cores' };
  const probe = spawnSync('taskset', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { unavailable: `no usable taskset (${probe.error?.message ?? `exit ${probe.status}`}; Debian: util-linux)` };
  const measured = String(cores - 1);
  const others = cores === 2 ? '0' : `0-${cores - 2}`;
  const all = `0-${cores - 1}`;
  const pid = String(process.pid);
  return {
    get description() {
      return `main thread on CPU ${measured}; its other threads and ${children().length} child process(es) on CPU ${others}`;
    },
    pin: () => {
      tasksetOrThrow(['-a', '-p', '-c', others, pid]);
      tasksetOrThrow(['-p', '-c', measured, pid]);
      for (const c of children()) tasksetOrThrow(['-a', '-p', '-c', others, String(c)]);
    },
    unpin: () => {
      tasksetOrThrow(['-a', '-p', '-c', all, pid]);
      for (const c of children()) tasksetOrThrow(['-a', '-p', '-c', all, String(c)]);
    },
  };
}
