/**
 * The idle limit of one ext_proc stream (docs/operations.md): `onIdle` runs once when `ms` pass without a
 * `touch()`. Contract: one timer per stream, never re-armed per message — when it fires it re-arms for the time
 * still left since the last touch, and calls `onIdle` only once that much time passed without one. Timers come from
 * a `TimerSource` (Node's, unref'd, by default: the timer does not keep the process alive; the ext_proc server passes
 * its shared `TimerWheel`, so a stream adds a wheel entry instead of a native timer and `onIdle` runs up to one wheel
 * resolution late, server.ts `idleWheelResolutionMs`); `stop()` ends it for good.
 */
import { systemTimers, type TimerSource } from '../../util/timer-wheel.ts';

export class IdleTimer {
  readonly #timers: TimerSource;
  #timer: unknown;
  /** When the last message arrived (`timers.now()`). */
  #lastAt: number;

  constructor(ms: number, onIdle: () => void, timers: TimerSource = systemTimers) {
    this.#timers = timers;
    this.#lastAt = timers.now();
    const check = (): void => {
      const left = ms - (timers.now() - this.#lastAt);
      if (left > 0) {
        this.#timer = timers.setTimeout(check, Math.ceil(left));
        return;
      }
      onIdle();
    };
    this.#timer = timers.setTimeout(check, ms);
  }

  /** A message arrived. */
  touch(): void {
    this.#lastAt = this.#timers.now();
  }

  stop(): void {
    this.#timers.clearTimeout(this.#timer);
  }
}
