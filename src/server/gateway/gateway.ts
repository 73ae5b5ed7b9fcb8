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
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Endpoint, EndpointStore } from '../../framework/datalayer.ts';
import { EppError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { Director, RoutingDecision } from '../../runtime/director.ts';
import { ensureRequestId, isSystemOwnedHeader } from '../../runtime/headers.ts';
import { RelayPolicy, type ResponseRelay } from '../../runtime/response-relay.ts';
import type { Reachability } from '../../runtime/reachability.ts';
import { BodyBudget, type BodyReservation } from '../body-budget.ts';
import { checkProxyPath, DEFAULT_GATEWAY_LIMITS, forwardableHeaders, type GatewayLimits } from './limits.ts';
import { ModelCatalog } from './model-catalog.ts';
import { pump } from './pump.ts';
import { openAiError, openAiErrorFor, sendError, statusForEppError } from './openai-errors.ts';

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

/** Response headers not relayed to the client (hop-by-hop; the gateway frames the body itself). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);

/** An upstream request ended by one of the gateway's timeouts. */
class UpstreamTimeout extends Error {
  constructor(
    readonly phase: 'connect' | 'headers' | 'idle' | 'deadline',
    readonly ms: number,
  ) {
    super(`upstream ${phase} timeout after ${ms}ms`);
  }
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
    const headers = lowerCaseHeaders(req);
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
    this.#forward(decision, relay, path, headers, res, abort.signal, (r) => (upstreamReq = r));
  }

  /**
   * Sends the request to the primary; on a refused connection, once to the first fallback. Connect and
   * response-headers timeouts answer 504; client errors never name the upstream address (the log does).
   */
  #forward(
    decision: RoutingDecision,
    relay: ResponseRelay,
    path: string,
    headers: Record<string, string>,
    res: ServerResponse,
    signal: AbortSignal,
    onRequest: (r: http.ClientRequest) => void,
  ): void {
    const o = this.#o;
    const l = this.#limits;
    const out = forwardableHeaders(headers, isSystemOwnedHeader);
    out['content-length'] = String(decision.body.length);
    out['content-type'] ??= 'application/json';
    const requestId = decision.request.requestId;

    const attempt = (target: Endpoint, isRetry: boolean): void => {
      out.host = target.hostPort;
      const upstream = http.request({
        host: target.metadata.address,
        port: target.metadata.port,
        method: 'POST',
        path,
        headers: out,
        agent: this.#agent,
        signal,
      });
      onRequest(upstream);
      // One timer: the connect timeout until the socket is connected, then the response-headers timeout.
      let timer: NodeJS.Timeout | undefined;
      const arm = (phase: 'connect' | 'headers', ms: number): void => {
        clearTimeout(timer);
        if (ms <= 0) return;
        timer = setTimeout(() => upstream.destroy(new UpstreamTimeout(phase, ms)), ms);
        timer.unref();
      };
      arm('connect', l.upstreamConnectTimeoutMs);
      upstream.on('socket', (socket) => {
        if (socket.connecting) socket.once('connect', () => arm('headers', l.upstreamHeadersTimeoutMs));
        else arm('headers', l.upstreamHeadersTimeoutMs);
      });
      upstream.on('response', (up) => {
        clearTimeout(timer);
        o.reachability?.reachable(target);
        this.#relayResponse(decision, relay, up, res).catch((err: unknown) => {
          // The upstream body failed mid-way (connection lost, stalled, or aborted because the client left).
          if (err instanceof UpstreamTimeout) {
            o.metrics.upstreamTimeouts.inc({ phase: err.phase });
            o.logger.warn({ requestId, endpoint: target.hostPort, err: err.message }, 'upstream response stalled; ending the stream');
          }
          void relay.abort(`upstream response failed: ${(err as Error).message}`);
          res.destroy();
        });
      });
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (signal.aborted) return;
        if (err.code === 'ECONNREFUSED') {
          o.reachability?.unreachable(target);
          const fallback = decision.targets[1];
          if (!isRetry && fallback) {
            o.logger.info({ requestId, refused: target.hostPort, fallback: fallback.hostPort }, 'primary refused the connection; retrying on the fallback');
            return attempt(fallback, true);
          }
        }
        o.logger.warn({ requestId, endpoint: target.hostPort, err: err.message }, 'upstream request failed');
        if (res.headersSent) {
          void relay.abort(`upstream connection failed: ${err.message}`);
          res.destroy();
          return;
        }
        relay.upstreamFailed(`upstream ${target.hostPort}: ${err.message}`);
        if (err instanceof UpstreamTimeout) {
          o.metrics.upstreamTimeouts.inc({ phase: err.phase });
          const what = err.phase === 'connect' ? 'connect to the model server' : 'answer';
          sendError(res, 504, openAiError(`the model server did not ${what} within ${err.ms}ms`, 'server_error', 'upstream_timeout'), requestId);
          return;
        }
        sendError(res, 502, openAiError(`the model server failed (${err.code ?? 'connection error'})`, 'server_error', 'upstream_unavailable'), requestId);
      });
      upstream.end(decision.body);
    };
    attempt(decision.targets[0] as Endpoint, false);
  }

  /**
   * Relays the upstream response through the response relay (hooks, streamed or buffered, model restore); the
   * client's end waits for completion. Pipeline semantics: after a write the client did not absorb, nothing more
   * is read from upstream until it drained.
   */
  async #relayResponse(decision: RoutingDecision, relay: ResponseRelay, up: IncomingMessage, res: ServerResponse): Promise<void> {
    const l = this.#limits;
    const status = up.statusCode ?? 502;
    const upHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined) upHeaders[k] = Array.isArray(v) ? v.join(', ') : v;

    const h = relay.start(status, upHeaders);
    if (h) await h;
    if (res.destroyed) return void up.destroy();
    const streaming = relay.streaming;
    const outHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(decision.response.info.headers)) if (!HOP_BY_HOP.has(k)) outHeaders[k] = v;
    if (!relay.rewritesBody && !streaming && upHeaders['content-length'] !== undefined) outHeaders['content-length'] = upHeaders['content-length'];
    outHeaders['x-request-id'] = decision.request.requestId;
    res.writeHead(status, outHeaders);
    res.flushHeaders();

    if (streaming) {
      await pump(up, res, {
        onChunk: (chunk) => relay.chunk(chunk),
        write: (chunk) => res.write(relay.restore(chunk)),
        idleMs: l.upstreamIdleTimeoutMs,
        onIdle: () => new UpstreamTimeout('idle', l.upstreamIdleTimeoutMs),
      });
      if (res.destroyed) return;
      await relay.end();
      res.end();
      return;
    }
    const chunks = idleGuarded(up, l.upstreamIdleTimeoutMs);
    // Buffered: hooks see the whole body once, as with ext_proc — up to the cap. Beyond it the body passes through
    // (with backpressure) and the hooks see only the end of the stream (usage unknown; counted by the relay).
    for await (const chunk of chunks) {
      if (!relay.passingThrough) {
        const held = relay.hold(chunk);
        if (held === undefined) continue;
        if (held.length > 0 && !res.write(held)) await drained(res);
        if (res.destroyed) return void up.destroy();
      }
      if (!res.write(chunk)) await drained(res);
      if (res.destroyed) return void up.destroy();
    }
    if (res.destroyed) return;
    if (relay.passingThrough) {
      await relay.end();
      res.end();
      return;
    }
    const whole = relay.takeHeld();
    await relay.end(whole);
    res.end(relay.restore(whole));
  }
}

/** Resolves when `res` drained its buffer or closed. */
function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed || !res.writableNeedDrain) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * The chunks of `up`; when the next chunk takes longer than `idleMs` to arrive (time spent waiting for the client
 * to drain does not count), `up` is destroyed and the iteration throws an UpstreamTimeout.
 */
async function* idleGuarded(up: IncomingMessage, idleMs: number): AsyncGenerator<Buffer> {
  const it = (up as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    if (idleMs > 0) {
      timer = setTimeout(() => up.destroy(new UpstreamTimeout('idle', idleMs)), idleMs);
      timer.unref();
    }
    let r: IteratorResult<Buffer>;
    try {
      r = await it.next();
    } finally {
      clearTimeout(timer);
    }
    if (r.done) return;
    yield r.value;
  }
}

function lowerCaseHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

class BodyTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no request body data for ${ms}ms`);
  }
}

class BudgetExceeded extends Error {}

/**
 * Reads the whole body; rejects with PayloadTooLarge as soon as it exceeds `limit`, BudgetExceeded when the
 * process-wide body budget cannot hold it (a declared Content-Length is reserved at once), BodyTimeout when no
 * data arrives for `idleMs`. On rejection nothing more is buffered.
 */
function readBody(req: IncomingMessage, limit: number, reservation: BodyReservation, idleMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    const hasDeclared = req.headers['content-length'] !== undefined && Number.isFinite(declared);
    if (hasDeclared && declared > limit) {
      req.resume();
      return reject(new EppError('PayloadTooLarge', `request body exceeds ${limit} bytes`));
    }
    if (hasDeclared && !reservation.grow(declared)) {
      req.resume();
      return reject(new BudgetExceeded());
    }
    // With a declared length the body is copied once into its final buffer (no concat of the parts at the end).
    const whole = hasDeclared ? Buffer.allocUnsafe(declared) : undefined;
    const parts: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      parts.length = 0;
      req.removeAllListeners('data');
      req.resume();
      reject(err);
    };
    const arm = (): void => {
      if (idleMs <= 0) return;
      clearTimeout(timer);
      timer = setTimeout(() => fail(new BodyTimeout(idleMs)), idleMs);
      timer.unref();
    };
    arm();
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) return fail(new EppError('PayloadTooLarge', `request body exceeds ${limit} bytes`));
      if (size > reservation.held && !reservation.grow(size - reservation.held)) return fail(new BudgetExceeded());
      if (whole !== undefined && size <= whole.length) c.copy(whole, size - c.length);
      else parts.push(c);
      arm();
    });
    req.on('end', () => {
      clearTimeout(timer);
      if (whole !== undefined && parts.length === 0) return resolve(whole.subarray(0, size));
      resolve(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
