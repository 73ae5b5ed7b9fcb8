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
import type { Logger } from '../framework/plugin.ts';
import type { InferenceRequest } from '../framework/request.ts';
import type { Candidate, SchedulingResult } from '../framework/scheduling.ts';
import type { HookRunner, HookScope } from './hook-runner.ts';
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
  admit(request: InferenceRequest, candidates: readonly Candidate[], scope: HookScope, from = 0): Promise<void> | undefined {
    const admitters = this.#hooks.admit ?? [];
    for (let i = from; i < admitters.length; i++) {
      const a = admitters[i]!;
      let r: string | undefined | Promise<string | undefined>;
      try {
        r = this.#runner.callOne(scope, 'Admit', a, this.#hookTimeoutMs, (signal) => a.admit(request, candidates, signal));
      } catch (err) {
        throw admitFailed(a.typedName.name, err);
      }
      if (r instanceof Promise) {
        return r.then(
          (denial) => {
            this.#denied(request, a.typedName.name, denial);
            return this.admit(request, candidates, scope, i + 1);
          },
          (err: unknown) => {
            throw admitFailed(a.typedName.name, err);
          },
        );
      }
      this.#denied(request, a.typedName.name, r);
    }
    return undefined;
  }

  #denied(request: InferenceRequest, plugin: string, denial: string | undefined): void {
    if (denial === undefined) return;
    this.#logger.info({ requestId: request.requestId, plugin, reason: denial }, 'request denied by admission plugin');
    throw new EppError('Internal', 'request cannot be admitted', { id: 'EPP_ERR_ADMISSION_DENIED' });
  }

  /** preRequest hooks in order; a failure or timeout fails the request. */
  preRequest(request: InferenceRequest, result: SchedulingResult, scope: HookScope, from = 0): Promise<void> | undefined {
    const hooks = this.#hooks.preRequest ?? [];
    for (let i = from; i < hooks.length; i++) {
      const h = hooks[i]!;
      let r: unknown;
      try {
        r = this.#runner.callOne(scope, 'PreRequest', h, this.#hookTimeoutMs, (signal) => h.preRequest(request, result, signal));
      } catch (err) {
        throw preRequestFailed(h.typedName.name, err);
      }
      if (r instanceof Promise) {
        return r.then(
          () => this.preRequest(request, result, scope, i + 1),
          (err: unknown) => {
            throw preRequestFailed(h.typedName.name, err);
          },
        );
      }
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
