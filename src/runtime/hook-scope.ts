/**
 * The signals hook calls get (hook-runner.ts runs the calls): a `HookScope` per request or response stream, and
 * which hooks take a signal at all — only a method that declares the parameter, so none is made for a hook that
 * cannot read it. Contract (framework/requestcontrol.ts, docs/lifecycle.md): the method's `length` reaches the
 * signal's position, or is 0 (a rest parameter, or nothing declared: given the signal, to be safe).
 */
import type { Plugin } from '../framework/plugin.ts';
import type { ExtensionPoint } from './hook-runner.ts';
import { RequestAbort } from './request-abort.ts';

/**
 * The abort signals of one request (request path) or one response stream (response path). Hook calls share the
 * scope's current signal; it fires when the client goes away (`client`, or `abort()`), and when a call times
 * out (the scope then starts a fresh signal for later calls).
 */
export class HookScope {
  readonly #client: RequestAbort | undefined;
  #controller: AbortController | null = null;
  /** True while `#onClientAbort` is registered with the client. */
  #linked = false;
  #aborted = false;
  #abortReason: unknown = undefined;
  /** Chunk hooks skipped for the rest of this scope after a timeout (response path). */
  quarantined: Set<Plugin> | null = null;
  /** Plugins whose failure was already logged in this scope (failures are logged once per scope and plugin). */
  logged: Set<Plugin> | null = null;

  /**
   * `client`: the request's abort (runtime/request-abort.ts; an AbortSignal is adopted). Linking to it creates
   * nothing on its side: a lazily created request signal stays uncreated.
   */
  constructor(client?: RequestAbort | AbortSignal) {
    this.#client = client === undefined ? undefined : RequestAbort.of(client);
  }

  /**
   * True when the next call's signal would be born aborted (the client went away, or `abort()` ran, and no fresh
   * signal was started since). Reading it creates nothing.
   */
  get aborted(): boolean {
    const c = this.#controller;
    if (c !== null) return c.signal.aborted;
    return this.#aborted || this.#client?.aborted === true;
  }

  /** The signal for the next hook call (allocated on first use). */
  signal(): AbortSignal {
    let c = this.#controller;
    if (c === null) {
      c = new AbortController();
      this.#controller = c;
      const client = this.#client;
      if (this.#aborted) c.abort(this.#abortReason);
      else if (client !== undefined) {
        if (client.aborted) c.abort(client.reason);
        else if (!this.#linked) {
          client.onAbort((this.#onClientAbort ??= () => this.#clientAborted()));
          this.#linked = true;
        }
      }
    }
    return c.signal;
  }

  /** The listener linked to the client's abort: made on the first link (most scopes never create a signal). */
  #onClientAbort: (() => void) | null = null;

  #clientAborted(): void {
    this.#linked = false;
    this.#controller?.abort(this.#client?.reason);
  }

  /** The client went away: the current signal fires, later ones are born aborted. Idempotent (first reason wins). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  /** Later calls get a fresh, un-aborted signal (completion hooks run with one, whatever happened before). */
  fresh(): void {
    this.#unlink();
    this.#controller = null;
    this.#aborted = false;
    this.#abortReason = undefined;
  }

  /** A call timed out: its signal fires with `reason`; later calls get a fresh signal. */
  timedOut(reason: unknown): void {
    const c = this.#controller;
    this.#unlink();
    this.#controller = null;
    c?.abort(reason);
  }

  /** Unlinks from the client signal (the scope's request ended). */
  dispose(): void {
    this.#unlink();
  }

  #unlink(): void {
    if (this.#linked) {
      this.#linked = false;
      if (this.#onClientAbort !== null) this.#client?.offAbort(this.#onClientAbort);
    }
  }
}

/** Each extension point's hook method and the position of its `signal` parameter (framework/requestcontrol.ts). */
const SIGNAL_PARAMETER: Readonly<Record<ExtensionPoint, readonly [method: string, index: number]>> = {
  PrepareData: ['prepareData', 2],
  Admit: ['admit', 2],
  PreRequest: ['preRequest', 2],
  ResponseReceived: ['onResponseHeaders', 1],
  ResponseStreaming: ['onResponseChunk', 2],
  ResponseComplete: ['onResponseComplete', 2],
};

/**
 * Whether `hook`'s method for `point` declares its signal parameter: its `length` (the parameters before the first
 * one with a default or a rest parameter) reaches the signal's position, or is 0 (`(...args)`, or a function that
 * declares nothing: given the signal, to be safe). Only a hook that declares it can read it by name.
 */
export function takesSignal(point: ExtensionPoint, hook: Plugin): boolean {
  const [method, index] = SIGNAL_PARAMETER[point];
  const fn = (hook as unknown as Record<string, unknown>)[method];
  if (typeof fn !== 'function') return true;
  const n = fn.length;
  return n === 0 || n > index;
}


/** What a hook that does not declare its signal parameter gets in that position (see `takesSignal`). */
export const NO_SIGNAL = undefined as unknown as AbortSignal;
