/**
 * Core isolation for benchmarks that measure one thread's latency (Linux, `taskset` from util-linux): the
 * measured process's main thread alone on the last core, and everything else the benchmark runs — the process's
 * other threads (V8's collector helpers, libuv's pool), its child processes (redis-server, a peer) — on the
 * others. Processes the benchmark did not start keep the kernel's placement: without `isolcpus` the measured
 * core is still shared with them, so a pinned run's run-queue wait is what is left of the machine, not zero.
 *
 * `pinning()` checks what it needs and returns the reason instead when pinning cannot work here (not Linux,
 * one core, no `taskset`); `pin()` / `unpin()` can be called between rounds, so pinned and unpinned rounds can
 * alternate in one run. Threads the main thread creates later inherit its core, so a benchmark pins after its
 * set-up has started what it needs.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface Pinning {
  /** e.g. "main thread on CPU 1; its other threads and 1 child process on CPU 0". */
  readonly description: string;
  pin(): void;
  unpin(): void;
}

function taskset(args: readonly string[]): void {
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
      taskset(['-a', '-p', '-c', others, pid]);
      taskset(['-p', '-c', measured, pid]);
      for (const c of children()) taskset(['-a', '-p', '-c', others, String(c)]);
    },
    unpin: () => {
      taskset(['-a', '-p', '-c', all, pid]);
      for (const c of children()) taskset(['-a', '-p', '-c', all, String(c)]);
    },
  };
}
