/**
 * The idle limit of one ext_proc stream (docs/operations.md): `onIdle` runs once when `ms` pass without a
 * `touch()`. Contract: one timer per stream, never re-armed per message — when it fires it re-arms for the time
 * still left since the last touch, and calls `onIdle` only once that much time passed without one. The timer
 * does not keep the process alive; `stop()` ends it for good.
 */
export class IdleTimer {
  #timer: NodeJS.Timeout;
  /** When the last message arrived (performance.now()). */
  #lastAt: number;

  constructor(ms: number, onIdle: () => void) {
    this.#lastAt = performance.now();
    const check = (): void => {
      const left = ms - (performance.now() - this.#lastAt);
      if (left > 0) {
        this.#timer = setTimeout(check, Math.ceil(left));
        this.#timer.unref();
        return;
      }
      onIdle();
    };
    this.#timer = setTimeout(check, ms);
    this.#timer.unref();
  }

  /** A message arrived. */
  touch(): void {
    this.#lastAt = performance.now();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
