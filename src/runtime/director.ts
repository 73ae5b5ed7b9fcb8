/**
 * The director: one request path for both data planes (ext_proc and the embedded gateway).
 *
 *   parse body → model & objective → admission → candidates → prepareData → admit hooks → schedule
 *   → preRequest hooks → the body to forward (as received, or re-serialised when it changed) → RoutingDecision
 *   (with the request's ResponseStream)
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
import { DEFAULT_REQUEST_HOOK_TIMEOUT_MS, RequestHooks } from './request-hooks.ts';
import type { AdmissionCheck, AdmissionController, CandidateLocator, ModelRewriteResolver, ObjectiveResolver, RequestInput, RoutingDecision } from './request-path.ts';
import { TimerWheel } from '../util/timer-wheel.ts';
import { HookRunner } from './hook-runner.ts';
import { HookScope } from './hook-scope.ts';
import { DEFAULT_FAIRNESS_ID, FAIRNESS_ID_HEADER, MODEL_REWRITE_HEADER, OBJECTIVE_HEADER } from './headers.ts';
import { RequestAbort } from './request-abort.ts';
import { ResponseStream } from './response-stream.ts';
import { bodyChanged, EMPTY_SNAPSHOT, RoutedRequest, topLevelSnapshot, type TopLevelSnapshot } from './routed-request.ts';
import type { ResponsePathOptions } from './response-path.ts';
import { toEppError, type DataPlane } from './response-relay.ts';

import { PluginFailure, primaryTargets, type Scheduler } from './scheduler.ts';
import type { Reachability } from './reachability.ts';

/**
 * Bodies of at least this many bytes are processed in slices: the director yields to the event loop before
 * parsing, after it, and after the data producers (prefix hashing), so other streams' messages are served between
 * the slices instead of waiting for one long synchronous stretch (a 256 KB prompt is ≈ 1–2 ms of work here; the
 * longest slice is the JSON parse). Smaller bodies never yield (no added latency). The ext_proc server sends such
 * a body's pieces one per turn as well.
 */
export const LARGE_BODY_BYTES = 64 * 1024;

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
  /** The coarse timer wheel of every hook timeout (both paths); one per director by default. */
  readonly timerWheel?: TimerWheel;
  /** Runs `fn` after pending I/O (default setImmediate): the yield between slices of a large body's work. */
  readonly yieldToLoop?: (fn: () => void) => void;
}

const encoder = new TextEncoder();

export class Director {
  readonly #o: DirectorOptions;
  readonly #live = new Set<ResponseStream>();
  readonly #failedPlugins = new Set<string>();
  #idleWaiters: Array<() => void> = [];
  readonly #responseCtx;
  readonly #runner: HookRunner;
  readonly #hooks: RequestHooks;
  readonly #checks = new Map<DataPlane, AdmissionCheck[]>();
  readonly #yieldTurn: () => Promise<void>;
  readonly #onSettled = (s: ResponseStream): void => {
    if (this.#live.delete(s)) this.#o.metrics.runningRequests.dec({ model_name: s.modelLabels.model_name });
    this.#o.admission?.released?.(s.info.request);
    if (this.#live.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
  };

  constructor(options: DirectorOptions) {
    this.#o = options;
    this.#runner = new HookRunner({ wheel: options.timerWheel ?? new TimerWheel(), metrics: options.metrics, now: options.now });
    this.#hooks = new RequestHooks(this.#runner, options.hooks, options.logger, options.requestHookTimeoutMs ?? DEFAULT_REQUEST_HOOK_TIMEOUT_MS);
    const yieldToLoop = options.yieldToLoop ?? ((fn: () => void) => void setImmediate(fn));
    this.#yieldTurn = () => new Promise<void>((resolve) => yieldToLoop(resolve));
    this.#responseCtx = {
      hooks: { headers: options.hooks.responseHeaders, chunk: options.hooks.responseChunk, complete: options.hooks.responseComplete },
      options: options.responsePath,
      metrics: options.metrics,
      logger: options.logger,
      now: options.now,
      runner: this.#runner,
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

  /** The hook runner of both paths (its timer wheel and invariant-violation count, for tests and checks). */
  get hookRunner(): HookRunner {
    return this.#runner;
  }

  /**
   * Registers an admission-phase check for the requests of `dataPlane` (see AdmissionCheck), after those
   * registered before it. Returns its removal.
   */
  registerAdmissionCheck(dataPlane: DataPlane, check: AdmissionCheck): () => void {
    const list = this.#checks.get(dataPlane) ?? [];
    this.#checks.set(dataPlane, [...list, check]);
    return () => {
      const now = this.#checks.get(dataPlane) ?? [];
      this.#checks.set(dataPlane, now.filter((c) => c !== check));
    };
  }

  /** Runs the request path. Throws EppError (client-visible code) on failure. */
  async route(input: RequestInput): Promise<RoutingDecision> {
    const o = this.#o;
    // A large body: parse in its own slice, and schedule in the next (see LARGE_BODY_BYTES).
    const large = input.body.length >= LARGE_BODY_BYTES;
    if (large) await this.#yieldTurn();
    const body = o.parser.parseRequest(input.body, input.path);
    if (large) await this.#yieldTurn();
    // An opaque body (passthrough / gRPC parsers) names no model and is forwarded unchanged (epp-spec §2.1).
    const opaque = body.raw !== undefined;
    const snapshot = opaque ? EMPTY_SNAPSHOT : topLevelSnapshot(body.payload);
    const model = opaque ? '' : body.payload.model;
    if (typeof model !== 'string') throw new EppError('BadRequest', 'model not found in request body');
    const rewriteHeader = input.headers[MODEL_REWRITE_HEADER];
    // InferenceModelRewrite (by incoming name) overrides the header (epp-spec §2.1).
    const targetModel = opaque ? '' : (o.rewrites?.rewrite(model, o.random) ?? (rewriteHeader !== undefined && rewriteHeader !== '' ? rewriteHeader : model));
    const objectiveKey = input.headers[OBJECTIVE_HEADER] ?? '';
    const priority = objectiveKey === '' ? 0 : (o.objectives?.priority(objectiveKey) ?? 0);
    const fairness = input.headers[FAIRNESS_ID_HEADER];
    const abort = RequestAbort.of(input.signal);

    const request = new RoutedRequest(
      input.requestId,
      model,
      targetModel,
      body,
      input.headers,
      priority,
      fairness !== undefined && fairness !== '' ? fairness : DEFAULT_FAIRNESS_ID,
      objectiveKey,
      input.body.length,
      input.receivedAt,
      abort,
    );

    const checks = input.dataPlane === undefined || opaque ? undefined : this.#checks.get(input.dataPlane);
    if (checks !== undefined) for (const c of checks) c.check(request);
    if (o.admission) {
      const r = o.admission.admit(request, input.proxyMetadata);
      if (isThenable(r)) await r;
    }

    // The signals of this request's hook calls: linked to the client's, fired on a hook's timeout.
    const scope = new HookScope(abort);
    try {
      return await this.#scheduleAndPrepare({ request, input, body, targetModel, priority, scope, snapshot });
    } finally {
      scope.dispose();
    }
  }

  /**
   * Candidates → … → schedule, then the request's response stream, preRequest hooks and the decision. Synchronous
   * (a value, no promise) when every hook on the way is: a promise only once a hook returns one or a large body
   * yields, so an ordinary request makes no promise and no microtask here (route() awaits what it gets).
   */
  #scheduleAndPrepare(r: Routing): RoutingDecision | Promise<RoutingDecision> {
    const o = this.#o;
    let located: Endpoint[] | Promise<Endpoint[]>;
    try {
      located = this.#locateAndSchedule(r.request, r.input, r.scope);
    } catch (err) {
      o.admission?.released?.(r.request);
      throw err;
    }
    if (!isThenable(located)) return this.#prepare(r, located);
    return located.then(
      (targets) => this.#prepare(r, targets),
      (err: unknown) => {
        o.admission?.released?.(r.request);
        throw err;
      },
    );
  }

  /** The request is scheduled on `targets`: its response stream, the preRequest hooks, the decision. */
  #prepare(r: Routing, targets: Endpoint[]): RoutingDecision | Promise<RoutingDecision> {
    const o = this.#o;
    const { request, body } = r;
    const primary = targets[0] as Endpoint;
    const result = request.schedulingResult as SchedulingResult;
    o.admission?.scheduled?.(request, targets);

    // From here on the request is scheduled: its completion hooks must run exactly once.
    const response = new ResponseStream(this.#responseCtx, request, primary, (streaming) => o.parser.createResponseParser(streaming, body), this.#onSettled);
    this.#live.add(response);
    o.metrics.runningRequests.inc({ model_name: response.modelLabels.model_name });
    try {
      if (o.hooks.preRequest !== null) {
        const pending = this.#hooks.preRequest(request, result, r.scope);
        if (pending !== undefined) {
          return pending
            .then(() => this.#decide(r, targets, response))
            .then(undefined, (err: unknown) => {
              throw failScheduled(response, err);
            });
        }
      }
      return this.#decide(r, targets, response);
    } catch (err) {
      throw failScheduled(response, err);
    }
  }

  /** The body to forward (as received unless it changed), the request metrics, the routing decision. */
  #decide(r: Routing, targets: Endpoint[], response: ResponseStream): RoutingDecision {
    const o = this.#o;
    const { request, body, targetModel } = r;
    let out: Uint8Array;
    if (body.raw !== undefined) out = body.raw;
    else if (targetModel === request.incomingModel && !bodyChanged(body, r.snapshot)) out = r.input.body;
    else {
      body.payload.model = targetModel;
      out = encoder.encode(JSON.stringify(body.payload));
    }
    const labels = response.modelLabels;
    o.metrics.requestTotal.inc({ ...labels, priority: String(r.priority) });
    o.metrics.requestSizes.observe(labels, out.length);
    return { request, targets, destination: targets.length === 1 ? (targets[0] as Endpoint).hostPort : targets.map((t) => t.hostPort).join(','), body: out, response };
  }

  /**
   * Candidates → prepareData → admit hooks → schedule (the part between admission and the routing decision).
   * Returns the primary profile's targets (never empty): a result without them is a scheduling failure. A value
   * when every hook is synchronous, else a promise.
   */
  #locateAndSchedule(request: RoutedRequest, input: RequestInput, scope: HookScope): Endpoint[] | Promise<Endpoint[]> {
    const o = this.#o;
    let endpoints = o.locator ? o.locator.locate(input.proxyMetadata) : o.store.endpoints();
    if (o.reachability) endpoints = o.reachability.filter(endpoints);
    if (endpoints.length === 0) {
      throw new EppError('ServiceUnavailable', 'failed to find endpoint candidates for serving the request', { id: 'EPP_ERR_NO_CANDIDATES' });
    }
    const candidates: Candidate[] = new Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) candidates[i] = { endpoint: endpoints[i] as Endpoint, attributes: new Map() };

    if (o.hooks.prepareData !== null) {
      const r = this.#hooks.prepareData(request, candidates, scope);
      // A large body's prefix hashing (up to the cap) had its slice; scheduling gets the next.
      const large = request.requestSizeBytes >= LARGE_BODY_BYTES;
      if (r !== undefined || large) return this.#afterPrepareData(r, large, request, candidates, scope);
    }
    return this.#admitAndSchedule(request, candidates, scope);
  }

  async #afterPrepareData(r: Promise<void> | undefined, large: boolean, request: RoutedRequest, candidates: Candidate[], scope: HookScope): Promise<Endpoint[]> {
    if (r !== undefined) await r;
    if (large) await this.#yieldTurn();
    return this.#admitAndSchedule(request, candidates, scope);
  }

  #admitAndSchedule(request: RoutedRequest, candidates: Candidate[], scope: HookScope): Endpoint[] | Promise<Endpoint[]> {
    if (this.#o.hooks.admit !== null) {
      const r = this.#hooks.admit(request, candidates, scope);
      if (r !== undefined) return r.then(() => this.#schedule(request, candidates));
    }
    return this.#schedule(request, candidates);
  }

  #schedule(request: RoutedRequest, candidates: Candidate[]): Endpoint[] {
    let result: SchedulingResult;
    let targets: Endpoint[];
    try {
      result = this.#o.scheduler.schedule(request, candidates);
      // A profile handler may return no primary result: that is a scheduling failure too (429), not a crash.
      targets = primaryTargets(result).map((c) => c.endpoint);
    } catch (err) {
      if (err instanceof PluginFailure) throw this.#pluginFailed(err, request.requestId);
      throw new EppError('ResourceExhausted', `failed to find target endpoint: ${toError(err).message}`, { cause: err, id: 'EPP_ERR_NO_TARGET' });
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
    return new EppError('Internal', `scheduling failed: ${err.extensionPoint} plugin '${err.plugin.typedName.name}' threw`, { cause: err, id: 'EPP_ERR_SCHEDULING_PLUGIN_FAILED' });
  }
}

/** One request on its way through the director (what route() parsed and resolved, handed down the steps). */
interface Routing {
  readonly request: RoutedRequest;
  readonly input: RequestInput;
  readonly body: InferenceRequest['body'];
  readonly targetModel: string;
  readonly priority: number;
  readonly scope: HookScope;
  readonly snapshot: TopLevelSnapshot;
}

/** A failure after scheduling: the request's response stream fails (completion: internal-error); the error to throw. */
function failScheduled(response: ResponseStream, err: unknown): EppError {
  const error = toEppError(err);
  void response.fail(error);
  return error;
}
