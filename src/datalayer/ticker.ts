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

/** Production ticker: one unref'd `setInterval` per registration, so it never keeps the process alive. */
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
 * Test ticker: nothing happens until `tick()`, which runs every registered callback once (in registration
 * order) and resolves when the promises they returned have settled.
 */
export class ManualTicker implements Ticker {
  readonly #callbacks = new Set<() => unknown>();
  /** Intervals requested so far, in registration order (for assertions). */
  readonly intervals: number[] = [];

  every(intervalMs: number, onTick: () => unknown): TickerHandle {
    const cb = (): unknown => onTick();
    this.#callbacks.add(cb);
    this.intervals.push(intervalMs);
    return { stop: () => this.#callbacks.delete(cb) };
  }

  /** Number of live registrations. */
  get size(): number {
    return this.#callbacks.size;
  }

  async tick(): Promise<void> {
    const results = [...this.#callbacks].map((cb) => cb());
    await Promise.allSettled(results);
  }
}

/** Wall clock in ms since the epoch. */
export const systemClock = { now: (): number => Date.now() };
