/**
 * A CPU profile of chosen time windows (e.g. the event-loop stalls of a round) instead of a whole run: V8's
 * sampling profiler runs through `node:inspector` for the round, and `stacksIn` keeps only the samples inside
 * the windows, counted per stack (the innermost frames, innermost first). A whole-run `--cpu-prof` drowns a few
 * 3 ms stalls in seconds of ordinary work; this shows what ran during them. The profiler itself costs time
 * (a sample every `intervalUs`), so a profiled run is for finding causes, not for the figures.
 *
 * Sample times are V8's monotonic clock in µs; `performance.now()` is the same clock from another origin, so
 * the offset is taken once when the profiler starts.
 */
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { frameLabel, stacksOf, type CpuProfile } from './cpuprofile.ts';

export interface Samples {
  /** performance.now() time of each sample, ms. */
  readonly times: readonly number[];
  /** The stack of each sample, innermost frame first, as "function file:line" strings. */
  readonly stacks: readonly (readonly string[])[];
  readonly intervalMs: number;
}

/** Starts V8's sampling profiler; `stop()` returns every sample with its time and stack. */
export async function startProfiler(intervalUs = 200): Promise<{ stop: () => Promise<Samples> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  const offsetMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  return {
    stop: async () => {
      const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
      await session.post('Profiler.disable');
      session.disconnect();
      const stackOf = stacksOf(profile);
      const names = new Map<number, string[]>();
      const namesOf = (id: number): string[] => {
        let s = names.get(id);
        if (s === undefined) {
          s = stackOf(id).filter((n) => n.callFrame.functionName !== '(root)').map((n) => frameLabel(n.callFrame));
          names.set(id, s);
        }
        return s;
      };
      const times: number[] = [];
      const stacks: string[][] = [];
      let t = profile.startTime;
      for (let i = 0; i < profile.samples.length; i++) {
        t += profile.timeDeltas[i] as number;
        times.push(t / 1000 - offsetMs);
        stacks.push(namesOf(profile.samples[i] as number));
      }
      return { times, stacks, intervalMs: intervalUs / 1000 };
    },
  };
}

/**
 * Samples inside any of `windows` ([from, to] in performance.now() ms), counted per stack of at most `depth`
 * innermost frames, most frequent first. Idle samples ("(idle)", "(program)") are left out.
 */
export function stacksIn(samples: Samples, windows: readonly (readonly [number, number])[], depth = 4): Array<{ stack: string; samples: number }> {
  const counts = new Map<string, number>();
  for (let i = 0; i < samples.times.length; i++) {
    const t = samples.times[i] as number;
    if (!windows.some(([from, to]) => t >= from && t <= to)) continue;
    const stack = samples.stacks[i] as readonly string[];
    if (stack.length === 0 || stack[0]?.startsWith('(idle)') || stack[0]?.startsWith('(program)')) continue;
    const key = stack.slice(0, depth).join(' ← ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([stack, n]) => ({ stack, samples: n })).sort((a, b) => b.samples - a.samples);
}
