/**
 * The embedded OpenAI-compatible gateway: the same director, plugins, scheduler and data layer as the
 * ext_proc server, behind an HTTP front door that proxies to the picked endpoint itself.
 *
 *   POST /v1/{chat/completions,completions,embeddings,responses,...}
 *       read body (limit → 413) → director.route() → proxy to the primary over a keep-alive pool
 *       (connection refused before any byte → once to the first fallback) → stream the response back
 *       chunk by chunk with the response-path semantics of ext_proc (header hooks awaited, chunk hooks async
 *       and ordered, completion exactly once with an outcome; the client's final bytes wait for the hooks)
 *   GET  /v1/models          the union of the pool's models
 *   GET  /health, /ready     liveness; readiness = the pool is known
 *
 * Errors are OpenAI-shaped: `{"error": {"message", "type", "param", "code"}}`; they never carry internal
 * addresses (those go to the log).
 *
 * Limits (limits.ts, docs/operations.md): slow or silent clients are closed (headers timeout, request-body idle
 * timeout, keep-alive timeout, connection and header-size caps); a global request-body budget answers 429; the
 * upstream gets connect / response-headers timeouts (504), an inter-chunk idle timeout and an optional deadline;
 * the response is relayed with backpressure (nothing more is read from upstream until the client drained), and a
 * non-streaming response is buffered for the hooks only up to a cap, beyond which it passes through.
 *
 * This file owns the HTTP front door (server limits, routes, early refusals, the request's lifetime: deadline,
 * client disconnect, body budget, the routing call, draining). Beside it: the request-body reader
 * (request-body.ts), the upstream request with its retry and timeouts (upstream.ts), the response relaying
 * (relay-response.ts, pump.ts), the model catalog (model-catalog.ts), the limits (limits.ts) and the
 * OpenAI-shaped errors (openai-errors.ts).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EndpointStore } from '../../framework/datalayer.ts';
import { EppError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { Director } from '../../runtime/director.ts';
import type { RoutingDecision } from '../../runtime/request-path.ts';
import { ensureRequestId } from '../../runtime/headers.ts';
import { RelayPolicy, type ResponseRelay } from '../../runtime/response-relay.ts';
import type { Reachability } from '../../runtime/reachability.ts';
import { BodyBudget } from '../body-budget.ts';
import { checkProxyPath, DEFAULT_GATEWAY_LIMITS, UpstreamTimeout, type GatewayLimits } from './limits.ts';
import { ModelCatalog } from './model-catalog.ts';
import { openAiError, openAiErrorFor, sendError, statusForEppError } from './openai-errors.ts';
import { BodyTimeout, BudgetExceeded, readBody } from './request-body.ts';
import { joinedHeaders } from './relay-response.ts';
import { forwardRequest, type UpstreamContext } from './upstream.ts';

export interface GatewayOptions {
  readonly director: Director;
  /** The pool (from startup wiring): the model catalog's endpoints and, by default, readiness. */
  readonly store: EndpointStore;
  readonly metrics: EppMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  readonly maxRequestBodyBytes: number;
  /** Records endpoints that refused connections, so routing avoids them until they answer again. */
  readonly reachability?: Reachability;
  /** Inbound and upstream limits; unset fields take DEFAULT_GATEWAY_LIMITS. */
  readonly limits?: Partial<GatewayLimits>;
  /** In-flight request-body bytes shared with the ext_proc server; default: unlimited. */
  readonly bodyBudget?: BodyBudget;
  /** Readiness for /ready (default: the pool is known); cross-replica sync adds its warm-up. */
  readonly isReady?: () => boolean;
}

export class Gateway {
  readonly #o: GatewayOptions;
  readonly #server: http.Server;
  readonly #agent: http.Agent;
  readonly #catalog: ModelCatalog;
  readonly #open = new Set<ServerResponse>();
  readonly #limits: GatewayLimits;
  readonly #allowed: ReadonlySet<string>;
  readonly #budget: BodyBudget;
  readonly #relay: RelayPolicy;
  readonly #offModelCheck: () => void;
  readonly #upstream: UpstreamContext;
  #idleWaiters: Array<() => void> = [];

  constructor(options: GatewayOptions) {
    this.#o = options;
    const l = (this.#limits = { ...DEFAULT_GATEWAY_LIMITS, ...options.limits });
    this.#allowed = new Set(l.allowedPaths);
    this.#budget = options.bodyBudget ?? new BodyBudget(0);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
    this.#catalog = new ModelCatalog({ endpoints: () => options.store.endpoints(), agent: this.#agent, logger: options.logger, now: options.now });
    // An unknown model is refused in the admission phase, from the catalog's last list (refreshed in the background).
    this.#offModelCheck = options.director.registerAdmissionCheck('gateway', this.#catalog.admissionCheck());
    this.#relay = new RelayPolicy({ dataPlane: 'gateway', metrics: options.metrics, logger: options.logger, maxBufferedResponseBytes: l.maxBufferedResponseBytes });
    this.#upstream = { agent: this.#agent, limits: l, metrics: options.metrics, logger: options.logger, reachability: options.reachability };
    this.#server = http.createServer(
      {
        keepAliveTimeout: l.keepAliveTimeoutMs,
        headersTimeout: l.headersTimeoutMs,
        // The body has its own idle timeout; requestTimeout (whole request) stays off so a slow upload that keeps
        // sending is not cut. Node checks headersTimeout every connectionsCheckingInterval.
        requestTimeout: 0,
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
        maxHeaderSize: l.maxHeaderBytes,
      },
      (req, res) => this.#handle(req, res),
    );
    if (l.maxConnections > 0) this.#server.maxConnections = l.maxConnections;
    // A connection that sends nothing at all is not covered by headersTimeout (no request has started): give it
    // the same time, then close it. The timer is lifted once a request arrives (its response may take minutes);
    // after the response Node arms the keep-alive timeout.
    this.#server.on('connection', (socket: import('node:net').Socket) => {
      socket.setTimeout(l.headersTimeoutMs, () => {
        options.metrics.clientTimeouts.inc({ data_plane: 'gateway', phase: 'connection' });
        socket.destroy();
      });
    });
    this.#server.prependListener('request', (req: IncomingMessage) => req.socket.setTimeout(0));
    // Expect: 100-continue: refuse before the client sends the body (no `100 Continue` first).
    this.#server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const refusal = this.#refuseEarly(req);
      if (refusal) return void this.#sendRefusal(req, res, refusal);
      res.writeContinue();
      this.#handle(req, res);
    });
  }

  /** Model ids the pool announced on its last `/v1/models` (no fetch): known metric label values. */
  servesModel(model: string): boolean {
    return this.#catalog.has(model);
  }

  /** Resolves when the model catalog has no refresh in flight (tests). */
  whenModelsSettled(): Promise<void> {
    return this.#catalog.whenSettled();
  }

  /** Loads the model catalog now (or joins the round in flight): warm-up, and tests that need it loaded. */
  refreshModels(): Promise<void> {
    return this.#catalog.refresh();
  }

  /** Bytes of request bodies currently held. */
  get bodyBytesInFlight(): number {
    return this.#budget.used;
  }

  get activeRequests(): number {
    return this.#open.size;
  }

  /** Resolves once `activeRequests` is zero (every proxied request's response has closed), at once if it is. */
  whenIdle(): Promise<void> {
    if (this.#open.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    this.#server.listen(port, host);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('listening', resolve);
      this.#server.once('error', reject);
    });
    return (this.#server.address() as AddressInfo).port;
  }

  /** Stops accepting; waits up to `graceMs` for requests in flight, then cuts them (completion sees aborted). */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    if (this.#open.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    for (const res of this.#open) res.destroy();
    this.#server.closeAllConnections();
    this.#offModelCheck();
    this.#agent.destroy();
    await closed;
  }

  // ------------------------------------------------------------------ routing of inbound requests

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    const pathname = path.split('?', 1)[0] as string;
    if (req.method === 'GET') {
      if (pathname === '/v1/models') return void this.#models(res);
      if (pathname === '/health' || pathname === '/healthz') return void res.writeHead(200).end();
      if (pathname === '/ready' || pathname === '/readyz') {
        return void res.writeHead((this.#o.isReady ?? (() => this.#o.store.poolKnown()))() ? 200 : 503).end();
      }
    }
    const refusal = this.#refuseEarly(req);
    if (refusal) return void this.#sendRefusal(req, res, refusal);
    return void this.#proxy(req, res, path);
  }

  /** Checks that need no body: method, path allow-list, declared size against the limit and the budget. */
  #refuseEarly(req: IncomingMessage): { status: number; type: string; code: string; message: string } | undefined {
    const pathname = (req.url ?? '/').split('?', 1)[0] as string;
    if (req.method !== 'POST') return { status: 404, type: 'invalid_request_error', code: 'unknown_url', message: `no route for ${req.method ?? ''} ${pathname.slice(0, 200)}` };
    const check = checkProxyPath(pathname, this.#allowed);
    if (!check.ok) return { status: check.status, type: 'invalid_request_error', code: check.status === 400 ? 'invalid_path' : 'unknown_url', message: check.message };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.#o.maxRequestBodyBytes) {
      const { error } = openAiErrorFor(new EppError('PayloadTooLarge', `request body exceeds ${this.#o.maxRequestBodyBytes} bytes`));
      return { status: 413, type: error.type, code: error.code ?? 'request_too_large', message: error.message };
    }
    return undefined;
  }

  /** Answers a refused request and drops its body unread (the connection closes if a body was on its way). */
  #sendRefusal(req: IncomingMessage, res: ServerResponse, r: { status: number; type: string; code: string; message: string }): void {
    const hasBody = req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0' || req.headers['transfer-encoding'] !== undefined;
    if (hasBody) res.shouldKeepAlive = false;
    sendError(res, r.status, openAiError(r.message, r.type, r.code));
    req.resume();
  }

  async #models(res: ServerResponse): Promise<void> {
    const models = await this.#catalog.list();
    const body = JSON.stringify({ object: 'list', data: models });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  async #proxy(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const o = this.#o;
    const receivedAt = o.now();
    const abort = new AbortController();
    const headers = joinedHeaders(req);
    const requestId = ensureRequestId(headers);
    this.#open.add(res);
    o.metrics.activeStreams.inc({ data_plane: 'gateway' });
    let decision: RoutingDecision | undefined;
    let relay: ResponseRelay | undefined = undefined; // set once routed; the close and deadline handlers use it
    let upstreamReq: http.ClientRequest | undefined;
    let deadline: NodeJS.Timeout | undefined;
    res.on('close', () => {
      clearTimeout(deadline);
      this.#open.delete(res);
      if (this.#open.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
      o.metrics.activeStreams.dec({ data_plane: 'gateway' });
      if (!res.writableFinished) {
        abort.abort(new Error('client disconnected'));
        upstreamReq?.destroy();
        void relay?.abort('client disconnected');
      }
    });
    const deadlineMs = this.#limits.requestDeadlineMs;
    if (deadlineMs > 0) {
      deadline = setTimeout(() => {
        o.metrics.upstreamTimeouts.inc({ phase: 'deadline' });
        const t = new UpstreamTimeout('deadline', deadlineMs);
        if (!res.headersSent) relay?.upstreamFailed(t.message);
        else void relay?.abort(t.message);
        if (!res.headersSent) sendError(res, 504, openAiError(`the request did not complete within ${deadlineMs}ms`, 'server_error', 'timeout'), requestId);
        else res.destroy();
        abort.abort(t);
        upstreamReq?.destroy(t);
      }, deadlineMs);
      deadline.unref();
    }

    const reservation = this.#budget.open();
    try {
      const body = await readBody(req, o.maxRequestBodyBytes, reservation, this.#limits.bodyIdleTimeoutMs);
      o.metrics.requestBodyWait.observe((o.now() - receivedAt) / 1000);
      decision = await o.director.route({
        headers,
        requestId,
        body,
        path,
        proxyMetadata: {},
        receivedAt,
        signal: abort.signal,
        dataPlane: 'gateway',
      });
    } catch (err) {
      reservation.release();
      if (abort.signal.aborted) return;
      if (err instanceof BodyTimeout) {
        o.metrics.clientTimeouts.inc({ data_plane: 'gateway', phase: 'body' });
        res.shouldKeepAlive = false;
        sendError(res, 408, openAiError(`no request body data for ${err.ms}ms`, 'invalid_request_error', 'request_timeout'), requestId);
        return;
      }
      if (err instanceof BudgetExceeded) {
        o.metrics.bodyBudgetRejections.inc({ data_plane: 'gateway' });
        res.shouldKeepAlive = false;
        return sendError(res, 429, openAiError('too many request bytes in flight; retry later', 'rate_limit_error', 'body_budget_exhausted'), requestId);
      }
      this.#relay.failed(err, requestId, undefined, (e) => {
        if (e.code === 'PayloadTooLarge') res.shouldKeepAlive = false;
        sendError(res, statusForEppError(e), openAiErrorFor(e), requestId);
      });
      return;
    }
    reservation.release();
    relay = this.#relay.open(decision);
    if (abort.signal.aborted) {
      void relay.abort('client disconnected');
      return;
    }
    forwardRequest(this.#upstream, decision, relay, path, headers, res, abort.signal, (r) => (upstreamReq = r));
  }
}

