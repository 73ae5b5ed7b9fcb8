// Time source of the engines. Everything inside an engine is expressed in *simulated* milliseconds; the real clock
// maps them onto wall time through `time-scale`, the virtual clock lets tests jump through time without waiting.

/** A timer that has been scheduled; `cancel()` is idempotent. */
export interface TimerHandle {
  cancel(): void;
}

/** Clock and timer service driving an engine. */
export interface SimClock {
  /** Simulated milliseconds since an arbitrary origin. Monotonic. */
  nowMs(): number;
  /**
   * Runs `fn` once when simulated time reaches `atMs` (immediately-after if `atMs` is already past, never
   * synchronously inside this call). Timers due at the same time run in the order they were set.
   */
  setTimer(atMs: number, fn: () => void): TimerHandle;
  /** Unix time in milliseconds, for values exported as timestamps (e.g. `vllm:lora_requests_info`). */
  unixNowMs(): number;
}

/**
 * Wall-clock time divided by `timeScale`: with `timeScale` 2 every simulated millisecond lasts two real ones.
 * Records how late each timer fired (real lateness converted to simulated ms) so the fleet can export it.
 */
export class RealClock implements SimClock {
  readonly #originMs = performance.now();
  readonly #timeScale: number;
  /** Largest timer lateness seen since the last `takeMaxLatenessMs()`, in simulated ms. */
  #maxLatenessMs = 0;

  constructor(timeScale = 1) {
    if (!(timeScale > 0)) throw new RangeError(`timeScale must be > 0, got ${timeScale}`);
    this.#timeScale = timeScale;
  }

  nowMs(): number {
    return (performance.now() - this.#originMs) / this.#timeScale;
  }

  setTimer(atMs: number, fn: () => void): TimerHandle {
    const delayRealMs = Math.max(0, (atMs - this.nowMs()) * this.#timeScale);
    const timer = setTimeout(() => {
      const lateMs = this.nowMs() - atMs;
      if (lateMs > this.#maxLatenessMs) this.#maxLatenessMs = lateMs;
      fn();
    }, delayRealMs);
    return { cancel: () => clearTimeout(timer) };
  }

  unixNowMs(): number {
    return Date.now();
  }

  /** Returns and resets the largest timer lateness observed (simulated ms). */
  takeMaxLatenessMs(): number {
    const value = this.#maxLatenessMs;
    this.#maxLatenessMs = 0;
    return value;
  }
}

interface VirtualTimer {
  readonly atMs: number;
  readonly order: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * Manually advanced clock for tests and offline sweeps. Nothing happens until `advanceTo`/`advanceBy`/`runUntilIdle`
 * is called; timers then run in (time, insertion) order with `nowMs()` equal to their due time.
 */
export class VirtualClock implements SimClock {
  #nowMs: number;
  #order = 0;
  readonly #heap: VirtualTimer[] = [];
  readonly #unixOriginMs: number;

  constructor(startMs = 0, unixOriginMs = 1_767_225_600_000) {
    this.#nowMs = startMs;
    this.#unixOriginMs = unixOriginMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  unixNowMs(): number {
    return this.#unixOriginMs + this.#nowMs;
  }

  setTimer(atMs: number, fn: () => void): TimerHandle {
    const timer: VirtualTimer = { atMs: Math.max(atMs, this.#nowMs), order: this.#order++, fn, cancelled: false };
    this.#push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Number of timers still scheduled (cancelled ones excluded). */
  get pendingTimers(): number {
    return this.#heap.filter((t) => !t.cancelled).length;
  }

  /** Runs every timer due at or before `targetMs`, then sets the time to `targetMs`. */
  advanceTo(targetMs: number): void {
    for (;;) {
      const top = this.#heap[0];
      if (top === undefined || top.atMs > targetMs) break;
      this.#pop();
      if (top.cancelled) continue;
      this.#nowMs = top.atMs;
      top.fn();
    }
    if (targetMs > this.#nowMs) this.#nowMs = targetMs;
  }

  advanceBy(deltaMs: number): void {
    this.advanceTo(this.#nowMs + deltaMs);
  }

  /**
   * Runs timers until none is left or `maxTimers` have run (guards against a component that re-arms forever).
   * Returns the number of timers run.
   */
  runUntilIdle(maxTimers = 10_000_000): number {
    let ran = 0;
    while (ran < maxTimers) {
      const top = this.#heap[0];
      if (top === undefined) return ran;
      this.#pop();
      if (top.cancelled) continue;
      this.#nowMs = top.atMs;
      top.fn();
      ran++;
    }
    throw new Error(`VirtualClock.runUntilIdle: still busy after ${maxTimers} timers`);
  }

  #before(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order);
  }

  #push(timer: VirtualTimer): void {
    const heap = this.#heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as VirtualTimer;
      if (!this.#before(timer, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = timer;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      let child = left;
      if (right < heap.length && this.#before(heap[right] as VirtualTimer, heap[left] as VirtualTimer)) child = right;
      const c = heap[child] as VirtualTimer;
      if (!this.#before(c, last)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
  }
}
