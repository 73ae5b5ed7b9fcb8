/**
 * Event-loop stalls and the garbage collections behind them, for benchmarks whose criterion is "no stall over
 * N ms". A histogram of event-loop delay (`monitorEventLoopDelay`) says how long the loop was late, not when,
 * so it cannot tell a stall caused by the code under test from one caused by a collection that would have
 * happened anyway. Here:
 *
 * - `startStallSampler` runs a timer every `intervalMs` and records each tick that came more than
 *   `thresholdMs` late (delay = gap − interval, as `monitorEventLoopDelay` counts it) with its time window;
 * - `startGcRecorder` records every collection (`PerformanceObserver` 'gc' entries: start, duration, kind);
 * - `classifyStalls` matches them: a stall "coincides with a GC" when a collection overlaps its window, and is
 *   "beyond GC" when what remains of its delay after subtracting the collections' time inside the window still
 *   exceeds the threshold — the part no collector explains.
 */
import { constants, PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';

/** One late tick: the loop could not run timers from `start` to `end` (ms, performance.now). */
export interface Stall {
  readonly start: number;
  readonly end: number;
  readonly delayMs: number;
}

export interface GcEvent {
  readonly start: number;
  readonly durationMs: number;
  readonly kind: 'minor' | 'major' | 'incremental' | 'weakcb';
}

export interface StallClassification {
  readonly stalls: number;
  /** Stalls overlapped by at least one collection. */
  readonly withGc: number;
  /** Stalls whose delay minus the collections' time inside them still exceeds the threshold. */
  readonly beyondGc: number;
  /** Longest delay minus in-window GC time (ms), over all stalls (0 when none). */
  readonly worstBeyondGcMs: number;
}

export function classifyStalls(stalls: readonly Stall[], gcs: readonly GcEvent[], thresholdMs: number): StallClassification {
  let withGc = 0;
  let beyondGc = 0;
  let worst = 0;
  for (const s of stalls) {
    let inGc = 0;
    for (const g of gcs) {
      const overlap = Math.min(s.end, g.start + g.durationMs) - Math.max(s.start, g.start);
      if (overlap > 0) inGc += overlap;
    }
    if (inGc > 0) withGc++;
    const rest = s.delayMs - Math.min(inGc, s.delayMs);
    if (rest > thresholdMs) beyondGc++;
    if (rest > worst) worst = rest;
  }
  return { stalls: stalls.length, withGc, beyondGc, worstBeyondGcMs: worst };
}

/** Starts sampling; `stop()` returns the stalls seen. */
export function startStallSampler(thresholdMs: number, intervalMs = 1, now: () => number = () => performance.now()): { stop: () => Stall[] } {
  const stalls: Stall[] = [];
  let last = now();
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const t = now();
    const delay = t - last - intervalMs;
    if (delay > thresholdMs) stalls.push({ start: last + intervalMs, end: t, delayMs: delay });
    last = t;
    timer = setTimeout(tick, intervalMs);
  };
  timer = setTimeout(tick, intervalMs);
  return {
    stop: () => {
      clearTimeout(timer);
      return stalls;
    },
  };
}

const KINDS: Record<number, GcEvent['kind']> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Starts recording collections; `stop()` returns them (entries still buffered in the observer included). */
export function startGcRecorder(): { stop: () => GcEvent[] } {
  const events: GcEvent[] = [];
  const take = (list: readonly PerformanceEntry[]): void => {
    for (const e of list) {
      const kind = KINDS[(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'minor';
      events.push({ start: e.startTime, durationMs: e.duration, kind });
    }
  };
  const observer = new PerformanceObserver((list) => take(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop: () => {
      take(observer.takeRecords());
      observer.disconnect();
      return events;
    },
  };
}
