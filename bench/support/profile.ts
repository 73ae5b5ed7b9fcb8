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

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

export interface Samples {
  /** performance.now() time of each sample, ms. */
  readonly times: readonly number[];
  /** The stack of each sample, innermost frame first, as "function file:line" strings. */
  readonly stacks: readonly (readonly string[])[];
  readonly intervalMs: number;
}

function frameName(n: ProfileNode): string {
  const f = n.callFrame;
  const file = f.url.replace(/^.*\/(src|bench|test|node_modules)\//, '$1/').replace(/^node:/, '');
  return `${f.functionName || '(anonymous)'}${file ? ` ${file}:${f.lineNumber + 1}` : ''}`;
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
      const { profile } = (await session.post('Profiler.stop')) as { profile: { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] } };
      await session.post('Profiler.disable');
      session.disconnect();
      const parent = new Map<number, ProfileNode>();
      const byId = new Map<number, ProfileNode>();
      for (const n of profile.nodes) {
        byId.set(n.id, n);
        for (const c of n.children ?? []) parent.set(c, n);
      }
      const stackCache = new Map<number, string[]>();
      const stackOf = (id: number): string[] => {
        let s = stackCache.get(id);
        if (s === undefined) {
          s = [];
          for (let n = byId.get(id); n !== undefined && n.callFrame.functionName !== '(root)'; n = parent.get(n.id)) s.push(frameName(n));
          stackCache.set(id, s);
        }
        return s;
      };
      const times: number[] = [];
      const stacks: string[][] = [];
      let t = profile.startTime;
      for (let i = 0; i < profile.samples.length; i++) {
        t += profile.timeDeltas[i] as number;
        times.push(t / 1000 - offsetMs);
        stacks.push(stackOf(profile.samples[i] as number));
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
