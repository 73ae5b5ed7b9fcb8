/**
 * Periodic scheduling for collectors, injectable so tests drive time themselves (house style: "the data layer
 * takes a clock and a ticker"; no wall-clock sleeps in tests).
 */

export interface TickerHandle {
  /** Stops further ticks. Idempotent. A tick already running is not interrupted. */
  stop(): void;
}

export interface Ticker {
  /**
   * Calls `onTick` every `intervalMs` milliseconds until the handle is stopped. The first call happens one
   * interval after `every` (callers that want an immediate first run call their function themselves).
   * `onTick` may return a promise; the ticker does not wait for it and does not prevent overlap: callers that
   * must not overlap (collectors) skip a tick while their previous run is pending.
   */
  every(intervalMs: number, onTick: () => unknown): TickerHandle;
}

/** One unref'd `setInterval` per registration (the former default; kept for comparison in bench/scrape.bench.ts). */
export class IntervalTicker implements Ticker {
  every(intervalMs: number, onTick: () => unknown): TickerHandle {
    const timer = setInterval(() => {
      onTick();
    }, intervalMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
}

/**
 * Production ticker (the default): one unref'd timer per distinct interval, shared by every registration with
 * that interval, which staggers them over `slots` phases. At 50 ms a registration lands in one of 5 slots
 * 10 ms apart (the least-filled one), and each 10 ms timer run ticks only that slot's registrations. So 100
 * collectors cost 100 timer runs/s instead of 2000, and their polls are spread over the interval rather
 * than bunched (a burst of 100 polls at once would stall the request path for milliseconds). The slot count
 * is the largest divisor of the interval that is ≤ 10 and leaves slots ≥ MIN_SLOT_MS apart (1 for odd
 * intervals), so the period stays exact. A registration's first tick comes within one interval of `every`.
 */
export class SharedTicker implements Ticker {
  readonly #groups = new Map<number, TickGroup>();
  readonly #timers: TimerApi;

  /** `timers` is for tests; the default uses `performance.now` and unref'd `setInterval`. */
  constructor(timers: TimerApi = REAL_TIMERS) {
    this.#timers = timers;
  }

  every(intervalMs: number, onTick: () => unknown): TickerHandle {
    let g = this.#groups.get(intervalMs);
    if (g === undefined) {
      g = new TickGroup(intervalMs, this.#timers, () => this.#groups.delete(intervalMs));
      this.#groups.set(intervalMs, g);
    }
    return g.add(onTick);
  }

  /** Live registrations (for tests and stats). */
  get size(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.size;
    return n;
  }
}

/** The clock and repeating timer `SharedTicker` runs on. */
export interface TimerApi {
  /** Monotonic ms. */
  now(): number;
  /** Calls `fn` every `ms` until the returned function is called; must not keep the process alive. */
  repeat(fn: () => void, ms: number): () => void;
}

const REAL_TIMERS: TimerApi = {
  now: () => performance.now(),
  repeat(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

interface Registration {
  readonly onTick: () => unknown;
  live: boolean;
}

/**
 * Minimum spacing of slots. Fewer, fuller slots cost less CPU (fewer timer runs and event-loop wakeups: on
 * the scrape benchmark, 100 endpoints at 50 ms, 10 slots ≈ 11.8 %, 5 ≈ 10.9 %, 2 ≈ 10.0 %, 1 ≈ 10.1 % of a
 * core, medians of 3 runs) but burstier polling: each slot's polls and responses occupy the event loop back
 * to back (~25–50 µs each on that VM), delaying requests that arrive meanwhile. 10 ms keeps bursts to about
 * 20 polls (≤ 1 ms) at 100 endpoints × 50 ms.
 */
const MIN_SLOT_MS = 10;

/** Number of slots for an interval (see SharedTicker). */
export function slotsFor(intervalMs: number): number {
  if (!Number.isInteger(intervalMs)) return 1;
  for (let n = Math.min(10, Math.floor(intervalMs / MIN_SLOT_MS)); n > 1; n--) if (intervalMs % n === 0) return n;
  return 1;
}

class TickGroup {
  /** Copy-on-write arrays, so a registration stopped or added during a run does not disturb the iteration. */
  readonly #slots: Registration[][];
  readonly #periodMs: number;
  readonly #timers: TimerApi;
  readonly #onEmpty: () => void;
  #stopTimer: (() => void) | undefined;
  #phase = 0;
  /** Slot runs due since `#t0` vs done: a late timer catches up, so the long-run rate stays exact. */
  #t0 = 0;
  #runs = 0;
  size = 0;

  constructor(intervalMs: number, timers: TimerApi, onEmpty: () => void) {
    const n = slotsFor(intervalMs);
    this.#slots = Array.from({ length: n }, () => []);
    this.#periodMs = intervalMs / n;
    this.#timers = timers;
    this.#onEmpty = onEmpty;
  }

  add(onTick: () => unknown): TickerHandle {
    let best = 0;
    for (let i = 1; i < this.#slots.length; i++) if ((this.#slots[i] as Registration[]).length < (this.#slots[best] as Registration[]).length) best = i;
    const reg: Registration = { onTick, live: true };
    this.#slots[best] = [...(this.#slots[best] as Registration[]), reg];
    this.size++;
    if (this.#stopTimer === undefined) {
      this.#t0 = this.#timers.now();
      this.#runs = 0;
      this.#stopTimer = this.#timers.repeat(() => this.#onTimer(), this.#periodMs);
    }
    return {
      stop: () => {
        if (!reg.live) return;
        reg.live = false;
        this.#slots[best] = (this.#slots[best] as Registration[]).filter((r) => r !== reg);
        if (--this.size === 0) {
          this.#stopTimer?.();
          this.#stopTimer = undefined;
          this.#onEmpty();
        }
      },
    };
  }

  #onTimer(): void {
    // Node reschedules an interval from when its callback ran, so periods drift late (~4 % at 5 ms under
    // load). Run every slot that is due by the clock instead (rounded: a timer may fire a hair early), at most
    // one full round after a long stall.
    const due = Math.floor((this.#timers.now() - this.#t0) / this.#periodMs + 0.5);
    if (due - this.#runs > this.#slots.length) this.#runs = due - this.#slots.length;
    while (this.#runs < due) {
      this.#runs++;
      this.#run();
    }
  }

  #run(): void {
    const slot = this.#slots[this.#phase] as Registration[];
    this.#phase = (this.#phase + 1) % this.#slots.length;
    for (let i = 0; i < slot.length; i++) {
      const r = slot[i] as Registration;
      if (r.live) r.onTick();
    }
  }
}
