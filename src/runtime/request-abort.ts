/**
 * The abort of one request: "the request ended abnormally" (client gone, stream error, shutdown), with its
 * `AbortSignal` created only when someone reads it. Most requests never abort and most never have their signal
 * read, so a data plane that creates a `RequestAbort` per request pays for one small object, not for an
 * `AbortController` and its `EventTarget`.
 *
 * Contract:
 * - `signal` is a real `AbortSignal` (fetch, `AbortSignal.any` and `instanceof` accept it), the same object on
 *   every read. Read after `abort()`, it is born aborted, with the first reason; read before, it fires when
 *   `abort()` runs. Either way a holder sees exactly what an eagerly created signal would show.
 * - `abort(reason)`: the first reason wins; later calls do nothing.
 * - `onAbort(listener)` / `offAbort(listener)`: plain callbacks for the engine's own links (the hook scopes),
 *   called once (no argument: read `reason`), in registration order, when `abort()` runs; never for a listener removed before. They do not
 *   create the signal. A listener added after the abort is not called: check `aborted` first.
 * - `new RequestAbort(signal)` adopts an existing signal (a data plane that already has one, tests): `signal` is
 *   that signal, `aborted` and `reason` are its own, `onAbort` listens to it, and `abort()` is not available.
 */
export class RequestAbort {
  readonly #adopted: AbortSignal | undefined;
  #controller: AbortController | null = null;
  #aborted = false;
  #reason: unknown = undefined;
  #listeners: Array<() => void> | null = null;

  constructor(adopt?: AbortSignal) {
    this.#adopted = adopt;
  }

  /** A `RequestAbort` for `signal`: the value itself when it is one, else one adopting the signal. */
  static of(signal: AbortSignal | RequestAbort): RequestAbort {
    return signal instanceof RequestAbort ? signal : new RequestAbort(signal);
  }

  get aborted(): boolean {
    return this.#adopted !== undefined ? this.#adopted.aborted : this.#aborted;
  }

  get reason(): unknown {
    return this.#adopted !== undefined ? this.#adopted.reason : this.#reason;
  }

  /** The request's signal, created on first read (born aborted when the request already ended abnormally). */
  get signal(): AbortSignal {
    if (this.#adopted !== undefined) return this.#adopted;
    let c = this.#controller;
    if (c === null) {
      c = this.#controller = new AbortController();
      if (this.#aborted) c.abort(this.#reason);
    }
    return c.signal;
  }

  /** The request ended abnormally: the signal (if created) fires and the listeners run. First reason wins. */
  abort(reason: unknown): void {
    if (this.#adopted !== undefined) throw new Error('RequestAbort: abort() on an adopted signal; abort its controller instead');
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = null;
    if (listeners !== null) for (const l of listeners) l();
  }

  onAbort(listener: () => void): void {
    if (this.#adopted !== undefined) this.#adopted.addEventListener('abort', listener, { once: true });
    else (this.#listeners ??= []).push(listener);
  }

  offAbort(listener: () => void): void {
    if (this.#adopted !== undefined) {
      this.#adopted.removeEventListener('abort', listener);
      return;
    }
    const ls = this.#listeners;
    if (ls === null) return;
    const i = ls.indexOf(listener);
    if (i >= 0) ls.splice(i, 1);
  }
}
