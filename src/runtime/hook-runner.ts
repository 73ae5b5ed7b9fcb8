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
 *   a fresh signal. The signal is created lazily, once per scope, not per call, and only for a hook whose method
 *   declares the parameter (hook-signal.ts: an AbortController is ≈ 2 µs and an EventTarget for the GC).
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
import { NO_SIGNAL, takesSignal, type HookScope } from './hook-scope.ts';

// ------------------------------------------------------------------ policies

/** Extension-point names as metric labels (upstream's where upstream has them). */
export type ExtensionPoint =
  | 'PrepareData'
  | 'Admit'
  | 'PreRequest'
  | 'ResponseReceived'
  | 'ResponseStreaming'
  | 'ResponseComplete';

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
