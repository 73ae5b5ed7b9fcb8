/**
 * Event-loop stalls and what they were made of, for benchmarks whose criterion is "no stall over N ms". A
 * histogram of event-loop delay (`monitorEventLoopDelay`) says how long the loop was late, not when or why, so it
 * cannot tell a stall the code under test caused from a collection, or from the machine giving the core to
 * another process. Here:
 *
 * - `startStallSampler` runs a timer every `intervalMs` and records each tick that came more than
 *   `thresholdMs` late (delay = gap − interval, as `monitorEventLoopDelay` counts it) with its time window, and,
 *   on Linux, what the main thread did during that window: at every tick it reads the thread's scheduler
 *   counters from `/proc/self/task/<pid>/schedstat` (ns on the CPU, ns waiting on a run queue while runnable,
 *   timeslices; one `pread` into a reused buffer, ≈ 1 µs), so the window's time splits into on-CPU,
 *   descheduled (runnable, but the core was running something else) and asleep (neither: waiting in the poll
 *   phase or on a lock). Where the file does not exist (not Linux, or a kernel without schedstats) the sampler
 *   says so in `schedstat` and records windows and delays only;
 * - `startGcRecorder` records every collection (`PerformanceObserver` 'gc' entries: start, duration, kind);
 * - `classifyStalls` gives each stall one cause by taking its components away in a fixed order and stopping
 *   once the delay left is no longer over the threshold ("it would not have been a stall without …"):
 *   1. **descheduled** — the run-queue wait in the window (the machine, not the process);
 *   2. **GC** — the collections' time inside the window;
 *   3. **asleep** — off the CPU and not runnable for longer than the timer interval (the tick itself late);
 *   4. **on-CPU** — what is left: the main thread ran code that was not a collection (the process's own work).
 *   Each component is a whole-window total and the window also holds the interval before the tick was due, so
 *   the order decides only mixed stalls; in both directions the label is sound: a stall labelled on-CPU had
 *   more than `thresholdMs` of non-GC on-CPU time in its window, and every stall with more than
 *   `thresholdMs + intervalMs` of it is labelled on-CPU (`worstOnCpuMs` reports the largest, so a borderline
 *   run is visible). Without schedstat, only the GC split is made (`withGc` / `beyondGc`).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { constants, PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';
import { COUNTER_HEAD, machineDelta, openMachineCounters, type MachineDelta } from './stall-evidence.ts';

/** One late tick: the loop could not run timers from `start` to `end` (ms, performance.now). */
export interface Stall {
  readonly start: number;
  readonly end: number;
  readonly delayMs: number;
  /**
   * The main thread during the whole window between the previous tick and this one (ms; absent without
   * schedstat): on the CPU, and waiting on a run queue while runnable.
   */
  readonly thread?: { readonly cpuMs: number; readonly waitMs: number };
  /** What the machine did in the same window (steal, softirqs, the thread's page faults; stall-evidence.ts). */
  readonly machine?: MachineDelta;
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
  /** The cause of each stall (see the module comment); undefined when the stalls carry no thread times. */
  readonly causes?: {
    readonly descheduled: number;
    readonly gc: number;
    readonly asleep: number;
    readonly onCpu: number;
    /** Largest non-GC on-CPU time (ms) in any stall's window (0 when none). */
    readonly worstOnCpuMs: number;
    /** Totals over all stalls' windows (ms): run-queue wait, collections, non-GC on-CPU time. */
    readonly descheduledMs: number;
    readonly gcMs: number;
    readonly onCpuMs: number;
  };
}

export type StallCause = 'descheduled' | 'gc' | 'asleep' | 'on-cpu';

/** The cause of one stall given its GC time in the window (module comment, `classifyStalls`). */
export function stallCause(stall: Stall, gcMs: number, thresholdMs: number, intervalMs: number): StallCause | undefined {
  const t = stall.thread;
  if (t === undefined) return undefined;
  const windowMs = stall.end - stall.start + intervalMs;
  const asleepBeyondInterval = Math.max(0, windowMs - t.cpuMs - t.waitMs - intervalMs);
  let left = stall.delayMs - t.waitMs;
  if (left <= thresholdMs) return 'descheduled';
  left -= gcMs;
  if (left <= thresholdMs) return 'gc';
  left -= asleepBeyondInterval;
  if (left <= thresholdMs) return 'asleep';
  return 'on-cpu';
}

/**
 * The collections' time inside a stall: in its late part (from when the tick was due) and in the whole window
 * its thread times cover (from the previous tick, one interval before `start`).
 */
export function gcInStall(s: Stall, gcs: readonly GcEvent[], intervalMs = 1): { lateMs: number; windowMs: number } {
  let lateMs = 0;
  let windowMs = 0;
  for (const g of gcs) {
    const end = Math.min(s.end, g.start + g.durationMs);
    const late = end - Math.max(s.start, g.start);
    if (late > 0) lateMs += late;
    const whole = end - Math.max(s.start - intervalMs, g.start);
    if (whole > 0) windowMs += whole;
  }
  return { lateMs, windowMs };
}

export function classifyStalls(stalls: readonly Stall[], gcs: readonly GcEvent[], thresholdMs: number, intervalMs = 1): StallClassification {
  let withGc = 0;
  let beyondGc = 0;
  let worst = 0;
  const causes = { descheduled: 0, gc: 0, asleep: 0, onCpu: 0, worstOnCpuMs: 0, descheduledMs: 0, gcMs: 0, onCpuMs: 0 };
  let timed = stalls.length > 0;
  for (const s of stalls) {
    const { lateMs: inGc, windowMs: inWindowGc } = gcInStall(s, gcs, intervalMs);
    if (inGc > 0) withGc++;
    const rest = s.delayMs - Math.min(inGc, s.delayMs);
    if (rest > thresholdMs) beyondGc++;
    if (rest > worst) worst = rest;
    const cause = stallCause(s, inWindowGc, thresholdMs, intervalMs);
    if (cause === undefined || s.thread === undefined) {
      timed = false;
      continue;
    }
    const onCpu = Math.max(0, s.thread.cpuMs - inWindowGc);
    causes.worstOnCpuMs = Math.max(causes.worstOnCpuMs, onCpu);
    causes.descheduledMs += s.thread.waitMs;
    causes.gcMs += inWindowGc;
    causes.onCpuMs += onCpu;
    if (cause === 'descheduled') causes.descheduled++;
    else if (cause === 'gc') causes.gc++;
    else if (cause === 'asleep') causes.asleep++;
    else causes.onCpu++;
  }
  return { stalls: stalls.length, withGc, beyondGc, worstBeyondGcMs: worst, ...(timed || stalls.length === 0 ? { causes } : {}) };
}

/**
 * The calling thread's scheduler counters from Linux's schedstat, read without allocating: `read()` fills
 * `[on-CPU ns, run-queue wait ns, timeslices]`. `undefined` with the reason where the file cannot be opened.
 */
export function openSchedstat(tid: number = process.pid): { read: (out: Float64Array) => boolean; close: () => void } | { unavailable: string } {
  const path = `/proc/self/task/${tid}/schedstat`;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    return { unavailable: `no ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}): not Linux, or a kernel without schedstats` };
  }
  const buf = Buffer.alloc(96);
  return {
    read: (out) => {
      const n = readSync(fd, buf, 0, buf.length, 0);
      let field = 0;
      let v = 0;
      for (let i = 0; i < n && field < 3; i++) {
        const c = buf[i] as number;
        if (c >= 48 && c <= 57) v = v * 10 + (c - 48);
        else {
          out[field++] = v;
          v = 0;
        }
      }
      return field === 3;
    },
    close: () => closeSync(fd),
  };
}

export interface StallSamplerOptions {
  readonly intervalMs?: number;
  readonly now?: () => number;
  /** Read the main thread's schedstat at every tick (default true; falls back with a reason where absent). */
  readonly schedstat?: boolean;
  /**
   * Read the machine counters at every tick too (steal and softirqs per CPU, the thread's page faults;
   * stall-evidence.ts; default true; ≈ 9 µs per tick on the project's VM).
   */
  readonly machine?: boolean;
}

/** The machine counters over a whole sampling period (from start to stop). */
export interface MachineTotals extends MachineDelta {
  readonly seconds: number;
}

/**
 * Starts sampling; `stop()` returns the stalls seen. `schedstat` says whether stalls carry thread times, or why
 * not.
 */
export function startStallSampler(thresholdMs: number, options: StallSamplerOptions = {}): { readonly schedstat: string; readonly machine: string; stop: () => Stall[]; totals: () => MachineTotals | undefined } {
  const intervalMs = options.intervalMs ?? 1;
  const now = options.now ?? (() => performance.now());
  const stat = options.schedstat === false ? { unavailable: 'off' } : openSchedstat();
  const reader = 'read' in stat ? stat : undefined;
  const prev = new Float64Array(3);
  const cur = new Float64Array(3);
  let timesOk = reader?.read(prev) ?? false;
  const counters = options.machine === false ? { unavailable: 'off' } : openMachineCounters();
  const mc = 'read' in counters ? counters : undefined;
  const size = COUNTER_HEAD + 2 * (mc?.cpus ?? 0);
  const mPrev = new Float64Array(size);
  const mCur = new Float64Array(size);
  const mFirst = new Float64Array(size);
  let mOk = mc?.read(mPrev) ?? false;
  mFirst.set(mPrev);
  const stalls: Stall[] = [];
  const first = now();
  let last = first;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const t = now();
    const hasTimes = reader !== undefined && reader.read(cur) && timesOk;
    const hasMachine = mc !== undefined && mc.read(mCur) && mOk;
    const delay = t - last - intervalMs;
    if (delay > thresholdMs) {
      stalls.push({
        start: last + intervalMs,
        end: t,
        delayMs: delay,
        ...(hasTimes ? { thread: { cpuMs: ((cur[0] as number) - (prev[0] as number)) / 1e6, waitMs: ((cur[1] as number) - (prev[1] as number)) / 1e6 } } : {}),
        ...(hasMachine ? { machine: machineDelta(mPrev, mCur, mc.cpus) } : {}),
      });
    }
    if (reader !== undefined) {
      prev.set(cur);
      timesOk = true;
    }
    if (mc !== undefined) {
      mPrev.set(mCur);
      mOk = true;
    }
    last = t;
    timer = setTimeout(tick, intervalMs);
  };
  timer = setTimeout(tick, intervalMs);
  let totals: MachineTotals | undefined;
  return {
    schedstat: reader !== undefined ? `main thread's /proc/self/task/${process.pid}/schedstat read at every tick` : `unavailable: ${(stat as { unavailable: string }).unavailable}`,
    machine: mc !== undefined ? `steal and softirqs of ${mc.cpus} CPUs (/proc/stat, /proc/softirqs) and the main thread's page faults read at every tick` : `machine counters unavailable: ${(counters as { unavailable: string }).unavailable}`,
    stop: () => {
      clearTimeout(timer);
      reader?.close();
      if (mc !== undefined && mc.read(mCur)) totals = { ...machineDelta(mFirst, mCur, mc.cpus), seconds: (now() - first) / 1000 };
      mc?.close();
      return stalls;
    },
    totals: () => totals,
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
