/**
 * The one hook runner of both paths (request path: the director; response path: the response stream).
 *
 * What it guarantees, whatever the extension point:
 * - A hook that returns synchronously costs no timer and no promise: hooks run back to back and the caller gets
 *   `undefined` (or the value) back. Only a hook that returns a thenable is awaited (house style, "do not await
 *   a hook that is not async").
 * - Timeouts use one coarse shared timer wheel (`TimerWheel`, util/timer-wheel.ts), not a `setTimeout` per call: at most one native
 *   timer is armed per wheel, whatever the number of pending hook calls. A timeout fires no earlier than asked
 *   and at most one wheel tick (`resolutionMs`) later.
 * - Every call gets an AbortSignal from its `HookScope`, linked to the client's abort (the scope's `client`
 *   signal, or `scope.abort()`), and fired when that call times out. After a timeout the scope hands later calls
 *   a fresh signal. The signal is created lazily, once per scope, not per call — and only for a hook that
 *   declares the signal parameter (`takesSignal`: the method's `length` reaches it, or is 0 as with a rest
 *   parameter). A hook that does not name it cannot read it, so none is made for it (an AbortController is
 *   ≈ 2 µs and an EventTarget for the GC; most hooks never look at their signal). Such a hook is called with
 *   `undefined` in that position, which only `arguments` could see.
 * - Per-plugin duration (`inference_extension_plugin_duration_seconds`, upstream's name) is observed at every
 *   extension point; failures and timeouts are reported to the scope's policy (the request path fails the
 *   request, the response path counts, logs and carries on).
 *
 * What it does not decide: whether a failure fails the request. That is the caller's policy (`HookPolicy`).
 */
import { EppError } from '../framework/errors.ts';
import type { Plugin } from '../framework/plugin.ts';
import type { EppMetrics } from '../observability/metrics.ts';
import { isThenable } from '../util/deferred.ts';
import type { TimerWheel } from '../util/timer-wheel.ts';
import { RequestAbort } from './request-abort.ts';

// ------------------------------------------------------------------ scopes and policies

/** Extension-point names as metric labels (upstream's where upstream has them). */
export type ExtensionPoint =
  | 'PrepareData'
  | 'Admit'
  | 'PreRequest'
  | 'ResponseReceived'
  | 'ResponseStreaming'
  | 'ResponseComplete';

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
          client.onAbort(this.#onClientAbort);
          this.#linked = true;
        }
      }
    }
    return c.signal;
  }

  readonly #onClientAbort = (): void => {
    this.#linked = false;
    this.#controller?.abort(this.#client?.reason);
  };

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
      this.#client?.offAbort(this.#onClientAbort);
    }
  }
}

/** What happens when a hook of a `runAll` call fails or times out: the caller's policy. */
export interface HookPolicy {
  failed(hook: Plugin, point: ExtensionPoint, err: unknown, scope: HookScope): void;
  timedOut(hook: Plugin, point: ExtensionPoint, timeoutMs: number, scope: HookScope): void;
}

export interface HookRunnerOptions {
  readonly wheel: TimerWheel;
  readonly metrics: EppMetrics;
  /** Milliseconds, for durations. */
  readonly now: () => number;
}

type Histo = { observe(value: number): void };

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
const NO_SIGNAL = undefined as unknown as AbortSignal;

/** What the runner resolves once per (extension point, hook): its duration child and whether it takes the signal. */
interface HookEntry {
  readonly duration: Histo;
  readonly takesSignal: boolean;
}

export class HookRunner {
  readonly wheel: TimerWheel;
  readonly #metrics: EppMetrics;
  readonly #now: () => number;
  /** Per-(point, plugin) duration child and signal parameter, resolved once (no label hashing per call). */
  readonly #entries = new Map<ExtensionPoint, Map<Plugin, HookEntry>>();
  /** Invariant violations seen (also counted in `epp_lifecycle_invariant_violations_total`). */
  violations = 0;

  constructor(options: HookRunnerOptions) {
    this.wheel = options.wheel;
    this.#metrics = options.metrics;
    this.#now = options.now;
  }

  /** A lifecycle invariant was broken (a chunk after the final one, a second completion, …): counted, not thrown. */
  violation(invariant: string): void {
    this.violations++;
    this.#metrics.invariantViolations.inc({ invariant });
  }

  /** Records one call's duration, from `started` (this runner's clock, ms) to now. */
  #observe(entry: HookEntry, started: number): void {
    entry.duration.observe((this.#now() - started) / 1000);
  }

  #entry(point: ExtensionPoint, hook: Plugin): HookEntry {
    let byPlugin = this.#entries.get(point);
    if (byPlugin === undefined) this.#entries.set(point, (byPlugin = new Map()));
    let e = byPlugin.get(hook);
    if (e === undefined) {
      const duration = this.#metrics.pluginDuration.labels({ extension_point: point, plugin_type: hook.typedName.type, plugin_name: hook.typedName.name });
      e = { duration, takesSignal: takesSignal(point, hook) };
      byPlugin.set(hook, e);
    }
    return e;
  }

  /**
   * Response-path semantics: runs `hooks[from..]` in order; failures and timeouts go to `policy` and the next
   * hook runs. Returns undefined when every hook returned synchronously, else a promise that never rejects.
   * Hooks in `scope.quarantined` are skipped when `skipQuarantined`.
   */
  runAll<H extends Plugin>(
    scope: HookScope,
    point: ExtensionPoint,
    hooks: readonly H[],
    timeoutMs: number,
    policy: HookPolicy,
    call: (hook: H, signal: AbortSignal) => unknown,
    skipQuarantined = false,
    from = 0,
  ): Promise<void> | undefined {
    for (let i = from; i < hooks.length; i++) {
      const hook = hooks[i] as H;
      if (skipQuarantined && scope.quarantined !== null && scope.quarantined.has(hook)) continue;
      const entry = this.#entry(point, hook);
      const started = this.#now();
      let r: unknown;
      try {
        r = call(hook, entry.takesSignal ? scope.signal() : NO_SIGNAL);
      } catch (err) {
        this.#observe(entry, started);
        policy.failed(hook, point, err, scope);
        continue;
      }
      if (isThenable(r)) {
        return this.#settle(r, timeoutMs, scope, entry, hook, started).then((o) => {
          if (o.kind === 'timeout') policy.timedOut(hook, point, timeoutMs, scope);
          else if (o.kind === 'error') policy.failed(hook, point, o.error, scope);
          return this.runAll(scope, point, hooks, timeoutMs, policy, call, skipQuarantined, i + 1);
        });
      }
      this.#observe(entry, started);
    }
    return undefined;
  }

  /**
   * Request-path semantics: one call; a throw or rejection propagates; a timeout fires the call's signal and
   * rejects with an EppError (Internal) naming the plugin. Synchronous hooks return their value directly.
   */
  callOne<T>(scope: HookScope, point: ExtensionPoint, hook: Plugin, timeoutMs: number, call: (signal: AbortSignal) => T | PromiseLike<T>): T | Promise<T> {
    const entry = this.#entry(point, hook);
    const started = this.#now();
    let r: T | PromiseLike<T>;
    try {
      r = call(entry.takesSignal ? scope.signal() : NO_SIGNAL);
    } catch (err) {
      this.#observe(entry, started);
      throw err;
    }
    if (!isThenable(r)) {
      this.#observe(entry, started);
      return r;
    }
    return this.#settle<T>(r, timeoutMs, scope, entry, hook, started).then((o) => {
      if (o.kind === 'ok') return o.value;
      if (o.kind === 'error') throw o.error;
      throw o.timeoutError;
    });
  }

  /**
   * Runs `hooks` in order under one deadline for the whole chain (prepareData). Stops at the first failure
   * (reported to `onError`, the scope's signal fires) or at the deadline (`onTimeout`); never rejects.
   */
  runChain<H extends Plugin>(
    scope: HookScope,
    point: ExtensionPoint,
    hooks: readonly H[],
    deadlineMs: number,
    call: (hook: H, signal: AbortSignal) => unknown,
    onError: (err: unknown) => void,
    onTimeout: () => void,
  ): Promise<void> | undefined {
    const chainStart = this.#now();
    const step = (from: number): Promise<void> | undefined => {
      for (let i = from; i < hooks.length; i++) {
        if (scope.aborted) return undefined;
        const hook = hooks[i] as H;
        const entry = this.#entry(point, hook);
        const started = this.#now();
        let r: unknown;
        try {
          r = call(hook, entry.takesSignal ? scope.signal() : NO_SIGNAL);
        } catch (err) {
          this.#observe(entry, started);
          scope.timedOut(err);
          onError(err);
          return undefined;
        }
        if (isThenable(r)) {
          const left = deadlineMs - (this.#now() - chainStart);
          return this.#settle(r, left, scope, entry, hook, started, new Error(`${lowerFirst(point)} deadline exceeded`)).then((o) => {
            if (o.kind === 'timeout') return onTimeout();
            if (o.kind === 'error') {
              scope.timedOut(o.error);
              return onError(o.error);
            }
            return step(i + 1);
          });
        }
        this.#observe(entry, started);
      }
      return undefined;
    };
    return step(0);
  }

  /** Awaits one pending hook call under a wheel timeout. Never rejects. */
  #settle<T>(
    pending: PromiseLike<T>,
    timeoutMs: number,
    scope: HookScope,
    entry: HookEntry,
    hook: Plugin,
    started: number,
    timeoutReason?: Error,
  ): Promise<Settled<T>> {
    return new Promise<Settled<T>>((resolve) => {
      let settled = false;
      const timer = this.wheel.add(Math.max(0, timeoutMs), () => {
        if (settled) return;
        settled = true;
        this.#observe(entry, started);
        const timeoutError = new EppError('Internal', `plugin '${hook.typedName.name}' timed out after ${timeoutMs}ms`, { id: 'EPP_ERR_HOOK_TIMEOUT' });
        scope.timedOut(timeoutReason ?? timeoutError);
        resolve({ kind: 'timeout', timeoutError });
      });
      pending.then(
        (value) => {
          if (settled) return;
          settled = true;
          timer.cancel();
          this.#observe(entry, started);
          resolve({ kind: 'ok', value });
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          timer.cancel();
          this.#observe(entry, started);
          resolve({ kind: 'error', error: err });
        },
      );
    });
  }
}

type Settled<T> = { kind: 'ok'; value: T } | { kind: 'error'; error: unknown } | { kind: 'timeout'; timeoutError: EppError };

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
