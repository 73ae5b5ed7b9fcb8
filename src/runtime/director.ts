/**
 * The director: one request path for both data planes (ext_proc and the embedded gateway).
 *
 *   parse body → model & objective → admission → candidates → prepareData → admit hooks → schedule
 *   → preRequest hooks → re-serialise body → RoutingDecision (with the request's ResponseStream)
 *
 * Every failure is an EppError with a client-visible code (epp-spec §1.10). Once a request is scheduled its
 * ResponseStream exists, and its completion hooks run exactly once whatever happens next.
 */
import type { Endpoint, EndpointStore } from '../framework/datalayer.ts';
import { EppError, toError } from '../framework/errors.ts';
import type { Parser } from '../framework/parser.ts';
import type { Logger, RandomSource } from '../framework/plugin.ts';
import type { InferenceRequest } from '../framework/request.ts';
import type { Candidate, SchedulingResult } from '../framework/scheduling.ts';
import type { EppMetrics } from '../observability/metrics.ts';
import { isThenable } from '../util/deferred.ts';
import type { CompiledHooks } from './hooks.ts';
import { DEFAULT_FAIRNESS_ID, FAIRNESS_ID_HEADER, MODEL_REWRITE_HEADER, OBJECTIVE_HEADER } from './headers.ts';
import { ResponseStream, type ResponsePathOptions } from './response-stream.ts';
import { PluginFailure, primaryTargets, type Scheduler } from './scheduler.ts';
import type { Reachability } from './reachability.ts';

/** Upstream's overall deadline for the prepareData chain. */
export const PREPARE_DATA_TIMEOUT_MS = 400;

/** What a data plane hands the director once the whole request body has arrived. */
export interface RequestInput {
  /** Request headers with lower-case keys, including `x-request-id` (see ensureRequestId). */
  readonly headers: Record<string, string>;
  readonly requestId: string;
  readonly body: Uint8Array;
  /** Request path, for API-type detection. */
  readonly path: string;
  /** Proxy filter metadata of the request (ext_proc `metadata_context`), `{}` when none. */
  readonly proxyMetadata: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** When the request headers arrived (ms since epoch). */
  readonly receivedAt: number;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /**
   * Optional: validates the model that will be sent upstream (after rewrites), before admission. Throw an
   * EppError to refuse (the embedded gateway answers an unserved model with 404).
   */
  readonly checkTargetModel?: (targetModel: string) => void | Promise<void>;
}

export interface RoutingDecision {
  readonly request: InferenceRequest;
  /** Primary first, then fallbacks. Never empty. */
  readonly targets: readonly Endpoint[];
  /** `host:port` list, comma-separated: the value of `x-gateway-destination-endpoint`. */
  readonly destination: string;
  /** The body to forward (re-serialised with the target model). */
  readonly body: Uint8Array;
  /** The response path of this request. Completion runs exactly once. */
  readonly response: ResponseStream;
}

/**
 * Decides whether a request may proceed (admission & flow control, see runtime/admission.ts). Throws EppError
 * to refuse; may await (flow control queues here).
 */
export interface AdmissionController {
  admit(request: InferenceRequest, signal: AbortSignal, proxyMetadata: RequestInput['proxyMetadata']): void | Promise<void>;
  /** After admit resolved: the request was scheduled; `targets[0]` is the primary. At most once. */
  scheduled?(request: InferenceRequest, targets: readonly Endpoint[]): void;
  /**
   * Exactly once for every request whose admit resolved, when it ends: after its completion hooks ran, or at
   * once when the request path failed before scheduling.
   */
  released?(request: InferenceRequest): void;
}

/** InferenceModelRewrite lookup by incoming model name (runtime/rewrites.ts). */
export interface ModelRewriteResolver {
  /** The target model for `model` (weighted pick), or undefined when no rule applies. Records the decision. */
  rewrite(model: string, random: RandomSource): string | undefined;
}

/** Chooses the endpoints a request may be scheduled on (subset hints live here). */
export interface CandidateLocator {
  locate(proxyMetadata: RequestInput['proxyMetadata']): readonly Endpoint[];
}

/** Resolves objective names to priorities. */
export interface ObjectiveResolver {
  /** Priority for the objective name, or undefined when unknown (treated as 0). */
  priority(objectiveName: string): number | undefined;
}

export interface DirectorOptions {
  readonly store: EndpointStore;
  readonly parser: Parser;
  readonly scheduler: Scheduler;
  readonly hooks: CompiledHooks;
  readonly metrics: EppMetrics;
  readonly logger: Logger;
  readonly random: RandomSource;
  readonly now: () => number;
  readonly responsePath: ResponsePathOptions;
  readonly admission?: AdmissionController;
  readonly locator?: CandidateLocator;
  readonly objectives?: ObjectiveResolver;
  readonly rewrites?: ModelRewriteResolver;
  /** Leaves out endpoints that recently refused connections (embedded gateway). */
  readonly reachability?: Reachability;
  /** Timeout for one request-path hook call (admit, preRequest). */
  readonly requestHookTimeoutMs?: number;
}

const encoder = new TextEncoder();

export class Director {
  readonly #o: DirectorOptions;
  readonly #live = new Set<ResponseStream>();
  readonly #failedPlugins = new Set<string>();
  #idleWaiters: Array<() => void> = [];
  readonly #responseCtx;
  readonly #onSettled = (s: ResponseStream): void => {
    if (this.#live.delete(s)) this.#o.metrics.runningRequests.dec({ model_name: s.modelLabels.model_name });
    this.#o.admission?.released?.(s.info.request);
    if (this.#live.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
  };

  constructor(options: DirectorOptions) {
    this.#o = options;
    this.#responseCtx = {
      hooks: { headers: options.hooks.responseHeaders, chunk: options.hooks.responseChunk, complete: options.hooks.responseComplete },
      options: options.responsePath,
      metrics: options.metrics,
      logger: options.logger,
      now: options.now,
    };
  }

  /** Response streams whose completion has not finished yet. Zero when idle: nothing leaks per stream. */
  get liveResponseStreams(): number {
    return this.#live.size;
  }

  /**
   * Resolves once `liveResponseStreams` is zero: every scheduled request's completion has run, its running-requests
   * gauge is decremented and admission has released it. Resolves at once when already idle. For shutdown and leak
   * checks that must wait for the (asynchronous) end of completions rather than poll.
   */
  whenIdle(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  get store(): EndpointStore {
    return this.#o.store;
  }

  /** A uniformly random endpoint (body-less requests skip scheduling, as upstream), or undefined. */
  pickRandomEndpoint(): Endpoint | undefined {
    const eps = this.#o.store.endpoints();
    if (eps.length === 0) return undefined;
    return eps[Math.floor(this.#o.random.next() * eps.length)];
  }

  /** Runs the request path. Throws EppError (client-visible code) on failure. */
  async route(input: RequestInput): Promise<RoutingDecision> {
    const o = this.#o;
    const body = o.parser.parseRequest(input.body, input.path);
    // An opaque body (passthrough / gRPC parsers) names no model and is forwarded unchanged (epp-spec §2.1).
    const opaque = body.raw !== undefined;
    const model = opaque ? '' : body.payload.model;
    if (typeof model !== 'string') throw new EppError('BadRequest', 'model not found in request body');
    const rewriteHeader = input.headers[MODEL_REWRITE_HEADER];
    // InferenceModelRewrite (by incoming name) overrides the header (epp-spec §2.1).
    const targetModel = opaque ? '' : (o.rewrites?.rewrite(model, o.random) ?? (rewriteHeader !== undefined && rewriteHeader !== '' ? rewriteHeader : model));
    if (input.checkTargetModel && !opaque) {
      const checked = input.checkTargetModel(targetModel);
      if (isThenable(checked)) await checked;
    }
    const objectiveKey = input.headers[OBJECTIVE_HEADER] ?? '';
    const priority = objectiveKey === '' ? 0 : (o.objectives?.priority(objectiveKey) ?? 0);
    const fairness = input.headers[FAIRNESS_ID_HEADER];

    const request: InferenceRequest = {
      requestId: input.requestId,
      incomingModel: model,
      targetModel,
      body,
      headers: input.headers,
      priority,
      fairnessId: fairness !== undefined && fairness !== '' ? fairness : DEFAULT_FAIRNESS_ID,
      objectiveKey,
      requestSizeBytes: input.body.length,
      receivedAt: input.receivedAt,
      schedulingResult: undefined,
      signal: input.signal,
    };

    if (o.admission) {
      const r = o.admission.admit(request, input.signal, input.proxyMetadata);
      if (isThenable(r)) await r;
    }

    let targets: Endpoint[];
    try {
      targets = await this.#locateAndSchedule(request, input);
    } catch (err) {
      o.admission?.released?.(request);
      throw err;
    }
    const primary = targets[0] as Endpoint;
    const result = request.schedulingResult as SchedulingResult;
    o.admission?.scheduled?.(request, targets);

    // From here on the request is scheduled: its completion hooks must run exactly once.
    const response = new ResponseStream(this.#responseCtx, request, primary, (streaming) => o.parser.createResponseParser(streaming, body), this.#onSettled);
    this.#live.add(response);
    o.metrics.runningRequests.inc({ model_name: response.modelLabels.model_name });
    try {
      if (o.hooks.preRequest !== null) await this.#preRequest(request, result);
      let out: Uint8Array;
      if (body.raw !== undefined) out = body.raw;
      else {
        body.payload.model = targetModel;
        out = encoder.encode(JSON.stringify(body.payload));
      }
      const labels = response.modelLabels;
      o.metrics.requestTotal.inc({ ...labels, priority: String(priority) });
      o.metrics.requestSizes.observe(labels, out.length);
      return { request, targets, destination: targets.map((t) => t.hostPort).join(','), body: out, response };
    } catch (err) {
      const error = err instanceof EppError ? err : new EppError('Internal', toError(err).message, { cause: err });
      void response.fail(error);
      throw error;
    }
  }

  /**
   * Candidates → prepareData → admit hooks → schedule (the part between admission and the routing decision).
   * Returns the primary profile's targets (never empty): a result without them is a scheduling failure.
   */
  async #locateAndSchedule(request: InferenceRequest, input: RequestInput): Promise<Endpoint[]> {
    const o = this.#o;
    let endpoints = o.locator ? o.locator.locate(input.proxyMetadata) : o.store.endpoints();
    if (o.reachability) endpoints = o.reachability.filter(endpoints);
    if (endpoints.length === 0) {
      throw new EppError('ServiceUnavailable', 'failed to find endpoint candidates for serving the request');
    }
    const candidates: Candidate[] = new Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) candidates[i] = { endpoint: endpoints[i] as Endpoint, attributes: new Map() };

    if (o.hooks.prepareData !== null) await this.#prepareData(request, candidates, input.signal);
    if (o.hooks.admit !== null) await this.#admit(request, candidates);

    let result: SchedulingResult;
    let targets: Endpoint[];
    try {
      result = o.scheduler.schedule(request, candidates);
      // A profile handler may return no primary result: that is a scheduling failure too (429), not a crash.
      targets = primaryTargets(result).map((c) => c.endpoint);
    } catch (err) {
      if (err instanceof PluginFailure) throw this.#pluginFailed(err, request.requestId);
      throw new EppError('ResourceExhausted', `failed to find target endpoint: ${toError(err).message}`, { cause: err });
    }
    request.schedulingResult = result;
    return targets;
  }

  /** A scheduling plugin threw: 500 naming it; logged once per plugin (with the stack), counted by the scheduler. */
  #pluginFailed(err: PluginFailure, requestId: string): EppError {
    const key = `${err.extensionPoint}/${err.plugin.typedName.type}/${err.plugin.typedName.name}`;
    if (!this.#failedPlugins.has(key)) {
      this.#failedPlugins.add(key);
      this.#o.logger.error({ requestId, plugin: err.plugin.typedName.name, type: err.plugin.typedName.type, extensionPoint: err.extensionPoint, err: err.cause }, 'scheduling plugin threw; its requests fail with 500 (logged once per plugin, counted in epp_plugin_errors_total)');
    }
    return new EppError('Internal', `scheduling failed: ${err.extensionPoint} plugin '${err.plugin.typedName.name}' threw`, { cause: err });
  }

  async #prepareData(request: InferenceRequest, candidates: readonly Candidate[], clientSignal: AbortSignal): Promise<void> {
    const producers = this.#o.hooks.prepareData ?? [];
    // Fires on the chain's deadline, on a producer's failure, or when the client goes away.
    const controller = new AbortController();
    const onClientAbort = (): void => controller.abort(clientSignal.reason);
    if (clientSignal.aborted) onClientAbort();
    else clientSignal.addEventListener('abort', onClientAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), PREPARE_DATA_TIMEOUT_MS);
      timer.unref();
    });
    const chain = (async () => {
      for (const p of producers) {
        if (controller.signal.aborted) return;
        const r = p.prepareData(request, candidates, controller.signal);
        if (isThenable(r)) await r;
      }
    })();
    try {
      const winner = await Promise.race([chain, deadline]);
      if (winner === 'timeout') {
        controller.abort(new Error('prepareData deadline exceeded'));
        this.#o.logger.warn({ requestId: request.requestId, timeoutMs: PREPARE_DATA_TIMEOUT_MS }, 'data producers exceeded their deadline; scheduling with partial data');
      }
    } catch (err) {
      controller.abort(err);
      this.#o.logger.error({ requestId: request.requestId, err: toError(err) }, 'data producer failed; scheduling with partial data');
    } finally {
      clearTimeout(timer);
      clientSignal.removeEventListener('abort', onClientAbort);
    }
  }

  async #admit(request: InferenceRequest, candidates: readonly Candidate[]): Promise<void> {
    for (const a of this.#o.hooks.admit ?? []) {
      let denial: string | undefined;
      try {
        denial = await this.#callHook(a.typedName.name, request.signal, (signal) => a.admit(request, candidates, signal));
      } catch (err) {
        if (err instanceof EppError) throw err;
        throw new EppError('Internal', `admission plugin '${a.typedName.name}' failed: ${toError(err).message}`, { cause: err });
      }
      if (denial !== undefined) {
        this.#o.logger.info({ requestId: request.requestId, plugin: a.typedName.name, reason: denial }, 'request denied by admission plugin');
        throw new EppError('Internal', 'request cannot be admitted');
      }
    }
  }

  async #preRequest(request: InferenceRequest, result: SchedulingResult): Promise<void> {
    const hist = this.#o.metrics.pluginDuration;
    for (const h of this.#o.hooks.preRequest ?? []) {
      const t = this.#o.now();
      try {
        const r = this.#callHook(h.typedName.name, request.signal, (signal) => h.preRequest(request, result, signal));
        if (isThenable(r)) await r;
      } catch (err) {
        if (err instanceof EppError) throw err;
        throw new EppError('Internal', `pre-request plugin '${h.typedName.name}' failed: ${toError(err).message}`, { cause: err });
      } finally {
        hist.observe({ extension_point: 'PreRequest', plugin_type: h.typedName.type, plugin_name: h.typedName.name }, (this.#o.now() - t) / 1000);
      }
    }
  }

  /**
   * Calls a request-path hook with its own signal, which fires when the client goes away or when the hook's
   * timeout elapses (the hook is then abandoned: the request fails with Internal). Synchronous hooks return
   * their value directly.
   */
  #callHook<T>(plugin: string, clientSignal: AbortSignal, call: (signal: AbortSignal) => T | PromiseLike<T>): T | Promise<T> {
    const controller = new AbortController();
    const onClientAbort = (): void => controller.abort(clientSignal.reason);
    if (clientSignal.aborted) onClientAbort();
    else clientSignal.addEventListener('abort', onClientAbort, { once: true });
    let r: T | PromiseLike<T>;
    try {
      r = call(controller.signal);
    } catch (err) {
      clientSignal.removeEventListener('abort', onClientAbort);
      throw err;
    }
    if (!isThenable(r)) {
      clientSignal.removeEventListener('abort', onClientAbort);
      return r;
    }
    const pending = r;
    const ms = this.#o.requestHookTimeoutMs ?? 1000;
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        clientSignal.removeEventListener('abort', onClientAbort);
      };
      const timer = setTimeout(() => {
        done();
        const error = new EppError('Internal', `plugin '${plugin}' timed out after ${ms}ms`);
        controller.abort(error);
        reject(error);
      }, ms);
      timer.unref();
      pending.then(
        (v) => {
          done();
          resolve(v);
        },
        (e: unknown) => {
          done();
          reject(e);
        },
      );
    });
  }
}

