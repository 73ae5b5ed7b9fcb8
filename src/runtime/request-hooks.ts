/**
 * The request path's hook calls, through the one hook runner (hook-runner.ts): the prepareData chain under one
 * deadline, the admit hooks, the preRequest hooks — each in config order, and what a failure of each means for the
 * request. Every method returns undefined when every hook it called was synchronous (no timer, no promise).
 *
 * - prepareData: a failure or the chain's deadline (upstream's 400 ms) ends the chain (its signal fires);
 *   scheduling goes on with partial data. Logged, never fails the request.
 * - admit: the first denial fails the request (500 "request cannot be admitted", EPP_ERR_ADMISSION_DENIED);
 *   a hook that throws, rejects or times out fails it naming the plugin (EPP_ERR_HOOK_FAILED / _TIMEOUT).
 * - preRequest: a failure or timeout fails the request naming the plugin.
 */
import { EppError, toError } from '../framework/errors.ts';
import type { Logger, Plugin } from '../framework/plugin.ts';
import type { InferenceRequest } from '../framework/request.ts';
import type { Candidate, SchedulingResult } from '../framework/scheduling.ts';
import type { HookRunner } from './hook-runner.ts';
import type { HookScope } from './hook-scope.ts';
import type { CompiledHooks } from './hooks.ts';
import { toEppError } from './response-relay.ts';

/** Upstream's overall deadline for the prepareData chain. */
export const PREPARE_DATA_TIMEOUT_MS = 400;

/** Default timeout of one request-path hook call (admit, preRequest). */
export const DEFAULT_REQUEST_HOOK_TIMEOUT_MS = 1000;

export class RequestHooks {
  readonly #runner: HookRunner;
  readonly #hooks: CompiledHooks;
  readonly #logger: Logger;
  readonly #hookTimeoutMs: number;

  constructor(runner: HookRunner, hooks: CompiledHooks, logger: Logger, hookTimeoutMs: number) {
    this.#runner = runner;
    this.#hooks = hooks;
    this.#logger = logger;
    this.#hookTimeoutMs = hookTimeoutMs;
  }

  /** Producers in order under one deadline for the chain. */
  prepareData(request: InferenceRequest, candidates: readonly Candidate[], scope: HookScope): Promise<void> | undefined {
    const logger = this.#logger;
    return this.#runner.runChain(
      scope,
      'PrepareData',
      this.#hooks.prepareData ?? [],
      PREPARE_DATA_TIMEOUT_MS,
      (p, signal) => p.prepareData(request, candidates, signal),
      (err) => logger.error({ requestId: request.requestId, err: toError(err) }, 'data producer failed; scheduling with partial data'),
      () => logger.warn({ requestId: request.requestId, timeoutMs: PREPARE_DATA_TIMEOUT_MS }, 'data producers exceeded their deadline; scheduling with partial data'),
    );
  }

  /** Admit hooks in order; the first denial fails the request. */
  admit(request: InferenceRequest, candidates: readonly Candidate[], scope: HookScope): Promise<void> | undefined {
    return this.#inOrder(
      scope,
      'Admit',
      this.#hooks.admit ?? [],
      0,
      (a, signal) => a.admit(request, candidates, signal),
      (a, denial) => this.#denied(request, a.typedName.name, denial),
      admitFailed,
    );
  }

  #denied(request: InferenceRequest, plugin: string, denial: string | undefined): void {
    if (denial === undefined) return;
    this.#logger.info({ requestId: request.requestId, plugin, reason: denial }, 'request denied by admission plugin');
    throw new EppError('Internal', 'request cannot be admitted', { id: 'EPP_ERR_ADMISSION_DENIED' });
  }

  /** preRequest hooks in order; a failure or timeout fails the request. */
  preRequest(request: InferenceRequest, result: SchedulingResult, scope: HookScope): Promise<void> | undefined {
    return this.#inOrder(scope, 'PreRequest', this.#hooks.preRequest ?? [], 0, (h, signal) => h.preRequest(request, result, signal), undefined, preRequestFailed);
  }

  /**
   * `hooks[from..]` in order through the runner, each under the request-hook timeout: synchronous ones back to
   * back; the first that returns a promise makes this return one that goes on with the rest once it settles.
   * `after` sees each result (and may throw to fail the request); a hook that throws, rejects or times out fails
   * the request with `failed(plugin, err)`.
   */
  #inOrder<H extends Plugin, R>(
    scope: HookScope,
    point: 'Admit' | 'PreRequest',
    hooks: readonly H[],
    from: number,
    call: (hook: H, signal: AbortSignal) => R | Promise<R>,
    after: ((hook: H, result: R) => void) | undefined,
    failed: (plugin: string, err: unknown) => EppError,
  ): Promise<void> | undefined {
    for (let i = from; i < hooks.length; i++) {
      const h = hooks[i]!;
      let r: R | Promise<R>;
      try {
        r = this.#runner.callOne(scope, point, h, this.#hookTimeoutMs, (signal) => call(h, signal));
      } catch (err) {
        throw failed(h.typedName.name, err);
      }
      if (r instanceof Promise) {
        return r.then(
          (result: R) => {
            after?.(h, result);
            return this.#inOrder(scope, point, hooks, i + 1, call, after, failed);
          },
          (err: unknown) => {
            throw failed(h.typedName.name, err);
          },
        );
      }
      after?.(h, r);
    }
    return undefined;
  }
}

function admitFailed(plugin: string, err: unknown): EppError {
  return toEppError(err, `admission plugin '${plugin}' failed`, 'EPP_ERR_HOOK_FAILED');
}

function preRequestFailed(plugin: string, err: unknown): EppError {
  return toEppError(err, `pre-request plugin '${plugin}' failed`, 'EPP_ERR_HOOK_FAILED');
}
