/**
 * Evidence for each event-loop stall beyond the main thread's schedstat split (stalls.ts): what the machine did
 * in the stall's window, and what the benchmark's own code was running. A stall's cause should be read off the
 * figure, not guessed afterwards, so every stall carries:
 *
 * - **Machine counters** read at every sampler tick (≈ 9 µs of reads per tick on the project's VM: `/proc/stat`
 *   4 µs, the thread's `stat` 2.6 µs, `/proc/softirqs` 1.9 µs; one `pread` each into a reused buffer, parsed
 *   without allocating):
 *   - **steal** per CPU (`/proc/stat`, 8th column, in USER_HZ ticks of 10 ms): time the hypervisor ran
 *     something else while this VM's vCPU wanted to run. On a kernel with `CONFIG_PARAVIRT_TIME_ACCOUNTING`
 *     (this VM's), stolen time is taken out of the scheduler's task clock: a thread that was running when its
 *     vCPU was stolen is charged neither CPU time nor run-queue wait for it, so in stalls.ts's split it lands in
 *     "asleep" (the window's time the two counters do not cover). The counter only moves in whole 10 ms ticks
 *     (the kernel floors its nanosecond total when it prints), so a few ms of steal shows as a tick now and then:
 *     evidence over many stalls, not an exact figure for one.
 *   - **softirqs** per CPU (`/proc/softirqs`, counts summed over kinds): without `CONFIG_IRQ_TIME_ACCOUNTING`
 *     (this VM's), interrupt and softirq work (network receive for every process on the machine, block I/O
 *     completions, RCU) is charged to whichever thread it interrupted, as that thread's on-CPU time.
 *   - **page faults** of the main thread (`/proc/self/task/<tid>/stat`: minor and major): the kernel's work
 *     mapping memory (a heap growing, fresh pages) is on-CPU time too, and costly in a VM whose page tables the
 *     hypervisor shadows; and the CPU the thread last ran on (the one whose steal and softirqs matter).
 * - **Activity spans** (`SpanLog`): the benchmark times its own work (routed requests, the index's apply and
 *   snapshot calls, …) with `performance.now()` around each call, so a stall's non-GC on-CPU time splits into
 *   those activities and "other" (timers, the transport, V8's own work, kernel time on the thread's behalf).
 *
 * `describeStall` joins these with the collections (`GcEvent`s) into one record per stall and `formatStall`
 * prints it on one line.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { GcEvent, Stall, StallCause } from './stalls.ts';

/** What the machine did between two sampler ticks (the stall's window). */
export interface MachineDelta {
  readonly minorFaults: number;
  readonly majorFaults: number;
  /** The CPU the main thread last ran on when the late tick fired. */
  readonly cpu: number;
  /** Per CPU: steal ticks (10 ms each) and softirqs counted in the window. */
  readonly stealTicks: readonly number[];
  readonly softirqs: readonly number[];
}

/** Counter layout: [minor faults, major faults, cpu, steal ticks × ncpu, softirqs × ncpu]. */
export const COUNTER_HEAD = 3;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/** The numbers of one line, filled by `lineNumbers` (at most 64; a module-level scratch: nothing allocated). */
const nums = new Float64Array(64);
/** Where the line `lineNumbers` read ended (the index of its newline, or `n`). */
let lineEnd = 0;

/** Reads the decimal numbers of the line starting at `i` into `nums`; returns how many (digits inside words count). */
function lineNumbers(buf: Uint8Array, i: number, n: number): number {
  let count = 0;
  let v = 0;
  let inNum = false;
  for (; i < n && buf[i] !== 10; i++) {
    const c = buf[i] as number;
    if (isDigit(c)) {
      v = v * 10 + (c - 48);
      inNum = true;
    } else if (inNum) {
      if (count < nums.length) nums[count++] = v;
      v = 0;
      inNum = false;
    }
  }
  if (inNum && count < nums.length) nums[count++] = v;
  lineEnd = i;
  return count;
}

/**
 * The per-CPU steal column of `/proc/stat` (text in `buf[0, n)`) into `out[at + cpu]`; returns the number of CPU
 * lines read (the aggregate `cpu ` line is skipped).
 */
export function parseProcStatSteal(buf: Uint8Array, n: number, out: Float64Array, at: number): number {
  let cpus = 0;
  for (let i = 0; i < n; i = lineEnd + 1) {
    // A line "cpuN user nice system idle iowait irq softirq steal ...": N is the first number, steal the ninth.
    const cpuLine = buf[i] === 99 && buf[i + 1] === 112 && buf[i + 2] === 117 && isDigit(buf[i + 3] as number);
    const count = lineNumbers(buf, i, n);
    const cpu = nums[0] as number;
    if (cpuLine && count >= 9 && at + cpu < out.length) {
      out[at + cpu] = nums[8] as number;
      cpus = Math.max(cpus, cpu + 1);
    }
  }
  return cpus;
}

/** `/proc/softirqs` (text in `buf[0, n)`): each CPU column summed over the kinds, into `out[at + cpu]`. */
export function parseSoftirqs(buf: Uint8Array, n: number, out: Float64Array, at: number, cpus: number): void {
  for (let c = 0; c < cpus; c++) out[at + c] = 0;
  let i = 0;
  while (i < n && buf[i] !== 10) i++; // header "CPU0 CPU1 ..."
  for (i++; i < n; i = lineEnd + 1) {
    while (i < n && buf[i] !== 58 && buf[i] !== 10) i++; // past "NAME:" (names hold no digits; skipped anyway)
    const count = lineNumbers(buf, i, n);
    for (let c = 0; c < Math.min(count, cpus); c++) out[at + c] = (out[at + c] as number) + (nums[c] as number);
  }
}

/**
 * A thread's `stat` (text in `buf[0, n)`): minor faults, major faults and the CPU it last ran on into
 * `out[0..2]`. Fields count from after the command's closing parenthesis (the name may hold spaces). False when
 * the text is cut short.
 */
export function parseThreadStat(buf: Uint8Array, n: number, out: Float64Array): boolean {
  let i = n - 1;
  while (i >= 0 && buf[i] !== 41) i--; // the last ')'
  if (i < 0) return false;
  // After ')': field 3 (state) is the first. minflt = 10, majflt = 12, processor = 39.
  let field = 2;
  let v = 0;
  let inTok = false;
  let got = 0;
  for (i++; i < n; i++) {
    const c = buf[i] as number;
    if (c === 32 || c === 10) {
      if (!inTok) continue;
      inTok = false;
      if (field === 10) {
        out[0] = v;
        got++;
      } else if (field === 12) {
        out[1] = v;
        got++;
      } else if (field === 39) {
        out[2] = v;
        return got === 2;
      }
      continue;
    }
    if (!inTok) {
      field++;
      v = 0;
      inTok = true;
    }
    if (isDigit(c)) v = v * 10 + (c - 48);
  }
  if (inTok && field === 39) {
    out[2] = v;
    return got === 2;
  }
  return false;
}

export interface MachineCounters {
  readonly cpus: number;
  /** Fills `out` (length `COUNTER_HEAD + 2 × cpus`); false when a file could not be read. */
  read(out: Float64Array): boolean;
  close(): void;
}

/** Opens the three files once; the reason instead where one is missing (not Linux). */
export function openMachineCounters(tid: number = process.pid): MachineCounters | { unavailable: string } {
  const paths = ['/proc/stat', '/proc/softirqs', `/proc/self/task/${tid}/stat`] as const;
  const fds: number[] = [];
  try {
    for (const p of paths) fds.push(openSync(p, 'r'));
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    return { unavailable: `${paths[fds.length]}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const [statFd, softFd, taskFd] = fds as [number, number, number];
  const buf = Buffer.alloc(16_384);
  const probe = new Float64Array(COUNTER_HEAD + 256);
  const cpus = parseProcStatSteal(buf, readSync(statFd, buf, 0, buf.length, 0), probe, COUNTER_HEAD);
  return {
    cpus,
    read: (out) => {
      parseProcStatSteal(buf, readSync(statFd, buf, 0, buf.length, 0), out, COUNTER_HEAD);
      parseSoftirqs(buf, readSync(softFd, buf, 0, buf.length, 0), out, COUNTER_HEAD + cpus, cpus);
      return parseThreadStat(buf, readSync(taskFd, buf, 0, buf.length, 0), out);
    },
    close: () => {
      for (const fd of fds) closeSync(fd);
    },
  };
}

/** The counters' change from `prev` to `cur` (both in the `COUNTER_HEAD` layout). */
export function machineDelta(prev: Float64Array, cur: Float64Array, cpus: number): MachineDelta {
  const stealTicks: number[] = [];
  const softirqs: number[] = [];
  for (let c = 0; c < cpus; c++) {
    stealTicks.push((cur[COUNTER_HEAD + c] as number) - (prev[COUNTER_HEAD + c] as number));
    softirqs.push((cur[COUNTER_HEAD + cpus + c] as number) - (prev[COUNTER_HEAD + cpus + c] as number));
  }
  return { minorFaults: (cur[0] as number) - (prev[0] as number), majorFaults: (cur[1] as number) - (prev[1] as number), cpu: cur[2] as number, stealTicks, softirqs };
}

/**
 * Time spans of the benchmark's own activities (kinds fixed at construction), appended in time order: a ring
 * of typed arrays, so recording is two clock reads and three stores. Spans do not nest (the process has one
 * JavaScript thread and each kind wraps a separate call).
 */
export class SpanLog {
  readonly kinds: readonly string[];
  #start: Float64Array;
  #end: Float64Array;
  #kind: Uint8Array;
  #n = 0;

  constructor(kinds: readonly string[], capacity = 1 << 16) {
    if (kinds.length > 255) throw new Error('SpanLog: at most 255 kinds');
    this.kinds = kinds;
    this.#start = new Float64Array(capacity);
    this.#end = new Float64Array(capacity);
    this.#kind = new Uint8Array(capacity);
  }

  record(kind: number, start: number, end: number): void {
    const i = this.#n++ % this.#start.length;
    this.#start[i] = start;
    this.#end[i] = end;
    this.#kind[i] = kind;
  }

  /** Wraps `fn` so each call is recorded as a span of `kind`. */
  wrap<A extends unknown[], R>(kind: number, now: () => number, fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const t0 = now();
      try {
        return fn(...args);
      } finally {
        this.record(kind, t0, now());
      }
    };
  }

  clear(): void {
    this.#n = 0;
  }

  /** Per kind: the time of its spans inside [from, to] (ms) and how many spans touched the window. */
  within(from: number, to: number): Array<{ kind: string; ms: number; count: number }> {
    const ms = new Float64Array(this.kinds.length);
    const count = new Uint32Array(this.kinds.length);
    const cap = this.#start.length;
    for (let j = this.#n - 1; j >= 0 && j >= this.#n - cap; j--) {
      const i = j % cap;
      const s = this.#start[i] as number;
      const e = this.#end[i] as number;
      if (e < from) break; // appended in time order: everything older ended earlier
      const overlap = Math.min(e, to) - Math.max(s, from);
      if (overlap > 0 || (s >= from && s <= to)) {
        const k = this.#kind[i] as number;
        ms[k] = (ms[k] as number) + Math.max(0, overlap);
        count[k] = (count[k] as number) + 1;
      }
    }
    return this.kinds.map((kind, k) => ({ kind, ms: ms[k] as number, count: count[k] as number }));
  }
}

/** Everything known about one stall, for its one-line report. */
export interface StallEvidence {
  /** Start of the late part, ms from the round's start. */
  readonly atMs: number;
  readonly delayMs: number;
  readonly cause: StallCause | undefined;
  /** The window the thread times cover (the late part plus the interval before it), ms. */
  readonly windowMs: number;
  readonly cpuMs?: number;
  readonly waitMs?: number;
  /** Window time neither on the CPU nor on a run queue, beyond the interval (steal, or sleep), ms. */
  readonly unaccountedMs?: number;
  /** Collections inside the window, with kind and the part of each inside it. */
  readonly gcs: ReadonlyArray<{ kind: GcEvent['kind']; ms: number }>;
  /** The benchmark's activities in the window (kinds with a span only). */
  readonly spans: ReadonlyArray<{ kind: string; ms: number; count: number }>;
  /** Non-GC on-CPU time no recorded activity covers, ms (undefined without thread times). */
  readonly otherMs?: number;
  readonly machine?: MachineDelta;
  /** The most-sampled stack inside the window, when profiling. */
  readonly topStack?: string;
}

export function describeStall(s: Stall, roundStart: number, cause: StallCause | undefined, gcs: readonly GcEvent[], spans: SpanLog | undefined, intervalMs = 1, topStack?: string): StallEvidence {
  const from = s.start - intervalMs;
  const windowMs = s.end - from;
  const inWindow: Array<{ kind: GcEvent['kind']; ms: number }> = [];
  let gcMs = 0;
  for (const g of gcs) {
    const ms = Math.min(s.end, g.start + g.durationMs) - Math.max(from, g.start);
    if (ms > 0) {
      inWindow.push({ kind: g.kind, ms });
      gcMs += ms;
    }
  }
  const active = spans === undefined ? [] : spans.within(from, s.end).filter((x) => x.count > 0);
  const spanMs = active.reduce((t, x) => t + x.ms, 0);
  const t = s.thread;
  return {
    atMs: s.start - roundStart,
    delayMs: s.delayMs,
    cause,
    windowMs,
    ...(t !== undefined ? { cpuMs: t.cpuMs, waitMs: t.waitMs, unaccountedMs: Math.max(0, windowMs - t.cpuMs - t.waitMs - intervalMs), otherMs: Math.max(0, t.cpuMs - gcMs - spanMs) } : {}),
    gcs: inWindow,
    spans: active,
    ...(s.machine !== undefined ? { machine: s.machine } : {}),
    ...(topStack !== undefined ? { topStack } : {}),
  };
}

const ms = (x: number): string => x.toFixed(x < 10 ? 1 : 0);

/**
 * One line: `t=812 ms, 3.4 ms late [on-cpu]: window 4.4 ms = on-CPU 3.9 (route 2.1 ×4, apply 0.4 ×3,
 * other 1.4), GC 0, wait 0.1, unaccounted 0.2; cpu1: steal 0 ticks, 41 softirqs, 12 faults`.
 */
export function formatStall(e: StallEvidence): string {
  const parts: string[] = [];
  if (e.cpuMs !== undefined) {
    const inner = [...e.spans.map((x) => `${x.kind} ${ms(x.ms)} ×${x.count}`), `other ${ms(e.otherMs ?? 0)}`];
    parts.push(`on-CPU ${ms(e.cpuMs)} (${inner.join(', ')})`);
  } else if (e.spans.length > 0) parts.push(e.spans.map((x) => `${x.kind} ${ms(x.ms)} ×${x.count}`).join(', '));
  parts.push(e.gcs.length === 0 ? 'GC 0' : `GC ${e.gcs.map((g) => `${g.kind} ${ms(g.ms)}`).join(' + ')}`);
  if (e.waitMs !== undefined) parts.push(`wait ${ms(e.waitMs)}`, `unaccounted ${ms(e.unaccountedMs ?? 0)}`);
  let line = `t=${e.atMs.toFixed(0)} ms, ${ms(e.delayMs)} ms late [${e.cause ?? 'no thread times'}]: window ${ms(e.windowMs)} ms = ${parts.join(', ')}`;
  const m = e.machine;
  if (m !== undefined) {
    const steal = m.stealTicks.map((x, c) => `${x}${c === m.cpu ? '*' : ''}`).join('/');
    const soft = m.softirqs[m.cpu] ?? 0;
    line += `; steal ticks ${steal} (cpu${m.cpu}*), ${soft} softirqs on cpu${m.cpu}, ${m.minorFaults} faults${m.majorFaults > 0 ? ` (${m.majorFaults} major)` : ''}`;
  }
  if (e.topStack !== undefined) line += `; top stack: ${e.topStack}`;
  return line;
}
