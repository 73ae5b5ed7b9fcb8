/**
 * One coarse shared timer for many timeouts (the hook runner's: one native timer, whatever the number of pending
 * hook calls). See the `TimerWheel` comment for the trade.
 */
import { realTimers, type Timers } from './timers.ts';

/** Timers with a clock (milliseconds), injectable so tests can count and drive them. */
export interface TimerSource extends Timers {
  now(): number;
}

/** Node's timers (unref'd) with the monotonic clock. */
export const systemTimers: TimerSource = { now: () => performance.now(), setTimeout: realTimers.setTimeout, clearTimeout: realTimers.clearTimeout };

/** One pending timeout of the wheel. `cancel()` is idempotent. */
export interface WheelEntry {
  cancel(): void;
}

class Entry implements WheelEntry {
  constructor(
    readonly wheel: TimerWheel,
    readonly tick: number,
    readonly fire: () => void,
  ) {}
  cancel(): void {
    this.wheel.remove(this);
  }
}

/**
 * Coarse timeouts: entries are grouped by the wheel tick they expire in (`ceil(deadline / resolutionMs)`), and
 * one native timer is armed for the earliest non-empty tick. Adding and cancelling are O(1); firing a tick is
 * O(its entries). Timeouts are rare events guarding slow plugins, so a tick of tens of milliseconds is precise
 * enough and keeps the timer count at one (undici's fast timers make the same trade).
 */
export class TimerWheel {
  readonly resolutionMs: number;
  readonly #timers: TimerSource;
  readonly #buckets = new Map<number, Set<Entry>>();
  #armedTick = Infinity;
  #armed: unknown = undefined;
  #size = 0;
  /** Native timers armed so far (for tests and the "no timer when synchronous" check). */
  nativeTimersArmed = 0;

  constructor(resolutionMs = 25, timers: TimerSource = systemTimers) {
    if (!(resolutionMs > 0)) throw new RangeError('resolutionMs must be > 0');
    this.resolutionMs = resolutionMs;
    this.#timers = timers;
  }

  /** Pending entries. */
  get size(): number {
    return this.#size;
  }

  /**
   * This wheel as a `TimerSource`: `setTimeout` adds an entry (fires no earlier than asked, up to one resolution
   * later), `clearTimeout` cancels it. For many long timeouts that are mostly cancelled (one per stream).
   */
  asTimerSource(): TimerSource {
    return {
      now: () => this.#timers.now(),
      setTimeout: (fn, ms) => this.add(ms, fn),
      clearTimeout: (handle) => (handle as WheelEntry | undefined)?.cancel(),
    };
  }

  /** Calls `fire` once, no earlier than `delayMs` from now, unless cancelled first. */
  add(delayMs: number, fire: () => void): WheelEntry {
    const tick = Math.ceil((this.#timers.now() + delayMs) / this.resolutionMs);
    const entry = new Entry(this, tick, fire);
    let bucket = this.#buckets.get(tick);
    if (bucket === undefined) this.#buckets.set(tick, (bucket = new Set()));
    bucket.add(entry);
    this.#size++;
    if (tick < this.#armedTick) this.#arm(tick);
    return entry;
  }

  /** @internal (Entry.cancel) */
  remove(entry: Entry): void {
    const bucket = this.#buckets.get(entry.tick);
    if (bucket === undefined || !bucket.delete(entry)) return;
    this.#size--;
    if (bucket.size === 0) this.#buckets.delete(entry.tick);
    if (this.#size === 0) this.#disarm();
  }

  #arm(tick: number): void {
    this.#disarm();
    this.#armedTick = tick;
    this.nativeTimersArmed++;
    this.#armed = this.#timers.setTimeout(this.#onTimer, Math.max(0, tick * this.resolutionMs - this.#timers.now()));
  }

  #disarm(): void {
    if (this.#armed !== undefined) this.#timers.clearTimeout(this.#armed);
    this.#armed = undefined;
    this.#armedTick = Infinity;
  }

  readonly #onTimer = (): void => {
    this.#armed = undefined;
    this.#armedTick = Infinity;
    const nowTick = Math.floor(this.#timers.now() / this.resolutionMs);
    let next = Infinity;
    const due: Entry[] = [];
    for (const [tick, bucket] of this.#buckets) {
      if (tick <= nowTick) {
        for (const e of bucket) due.push(e);
        this.#buckets.delete(tick);
        this.#size -= bucket.size;
      } else if (tick < next) next = tick;
    }
    if (next !== Infinity) this.#arm(next);
    for (const e of due) e.fire();
  };
}
