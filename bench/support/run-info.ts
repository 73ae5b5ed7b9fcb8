/**
 * "How it was run": printed at the top of every benchmark so a figure can be judged by the state of the
 * machine it was taken on (shared VMs are noisy; a load average near the core count means the figures are).
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { pinPlanFromEnv } from './pin.ts';

export interface RunInfo {
  readonly benchmark: string;
  readonly startedAt: string;
  readonly node: string;
  readonly cpus: string;
  /** 1, 5 and 15 minute load averages when the benchmark started. */
  readonly loadAverage: readonly [number, number, number];
  readonly memoryGiB: number;
  readonly args: readonly string[];
}

export function runInfo(benchmark: string): RunInfo {
  const c = cpus();
  const [l1, l5, l15] = loadavg() as [number, number, number];
  return {
    benchmark,
    startedAt: new Date().toISOString(),
    node: `${process.version} (V8 ${process.versions.v8})`,
    cpus: `${c.length} × ${c[0]?.model.trim() ?? 'unknown cpu'}`,
    loadAverage: [l1, l5, l15],
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    args: process.argv.slice(2),
  };
}

/** The run info as `# `-prefixed lines (comments in the Markdown-ish output every benchmark prints). */
export function formatRunInfo(info: RunInfo, extra: readonly string[] = []): string {
  const lines = [
    `${info.benchmark} — ${info.startedAt}`,
    `node ${info.node}; ${info.cpus}; ${info.memoryGiB} GiB`,
    `load average at start: ${info.loadAverage.map((x) => x.toFixed(2)).join(' / ')} (1/5/15 min; ${cpus().length} cores)`,
    `args: ${info.args.length ? info.args.join(' ') : '(defaults)'}`,
    ...pinLine(),
    ...extra,
  ];
  return lines.map((l) => `# ${l}`).join('\n');
}

function pinLine(): string[] {
  const plan = pinPlanFromEnv();
  return plan ? [`pinned (BENCH_PIN): server processes on cpus ${plan.server}, this process on cpus ${plan.client}`] : [];
}

/** Prints the run info and returns it (the benchmarks keep it for their JSON output, if any). */
export function printRunInfo(benchmark: string, extra: readonly string[] = []): RunInfo {
  const info = runInfo(benchmark);
  console.log(formatRunInfo(info, extra));
  return info;
}
