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
 * Errors are OpenAI-shaped: `{"error": {"message", "type", "param", "code"}}`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Endpoint } from '../../framework/datalayer.ts';
import { EppError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { Director, RoutingDecision } from '../../runtime/director.ts';
import { ensureRequestId, isSystemOwnedHeader } from '../../runtime/headers.ts';
import { rewriteModelInResponse } from '../../runtime/model-rewrite.ts';
import type { Reachability } from '../../runtime/reachability.ts';
import { ModelCatalog } from './model-catalog.ts';
import { openAiError, openAiErrorFor, sendError, statusForEppError } from './openai-errors.ts';

export interface GatewayOptions {
  readonly director: Director;
  readonly metrics: EppMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  readonly maxRequestBodyBytes: number;
  /** Records endpoints that refused connections, so routing avoids them until they answer again. */
  readonly reachability?: Reachability;
  /** Timeout for establishing an upstream connection and receiving its headers. */
  readonly upstreamHeadersTimeoutMs?: number;

}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and others a proxy must not forward. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
]);

const EMPTY = new Uint8Array(0);

export class Gateway {
  readonly #o: GatewayOptions;
  readonly #server: http.Server;
  readonly #agent: http.Agent;
  readonly #catalog: ModelCatalog;
  readonly #open = new Set<ServerResponse>();
  #idleWaiters: Array<() => void> = [];

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
    this.#catalog = new ModelCatalog(() => options.director.store.endpoints(), this.#agent, options.logger);
    this.#server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => this.#handle(req, res));
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
        return void res.writeHead(this.#o.director.store.poolKnown() ? 200 : 503).end();
      }
    }
    if (req.method === 'POST' && pathname.startsWith('/v1/')) return void this.#proxy(req, res, path);
    sendError(res, 404, openAiError(`no route for ${req.method} ${pathname}`, 'invalid_request_error', 'unknown_url'));
  }

  async #models(res: ServerResponse): Promise<void> {
    const models = await this.#catalog.list(true);
    const body = JSON.stringify({ object: 'list', data: models });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  async #proxy(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const o = this.#o;
    const receivedAt = o.now();
    const abort = new AbortController();
    this.#open.add(res);
    o.metrics.activeStreams.inc({ data_plane: 'gateway' });
    let decision: RoutingDecision | undefined;
    let upstreamReq: http.ClientRequest | undefined;
    res.on('close', () => {
      this.#open.delete(res);
      if (this.#open.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
      o.metrics.activeStreams.dec({ data_plane: 'gateway' });
      if (!res.writableFinished) {
        abort.abort(new Error('client disconnected'));
        upstreamReq?.destroy();
        void decision?.response.abort('client disconnected');
      }
    });

    const headers = lowerCaseHeaders(req);
    const requestId = ensureRequestId(headers);
    try {
      const body = await readBody(req, o.maxRequestBodyBytes);
      o.metrics.requestBodyWait.observe((o.now() - receivedAt) / 1000);
      decision = await o.director.route({
        headers,
        requestId,
        body,
        path,
        proxyMetadata: {},
        receivedAt,
        signal: abort.signal,
        checkTargetModel: this.#rejectUnknownModel,
      });
    } catch (err) {
      const e = err instanceof EppError ? err : new EppError('Internal', (err as Error).message);
      if (abort.signal.aborted) return;
      o.metrics.requestErrorTotal.inc({ model_name: '', target_model_name: '', error_code: e.code });
      return sendError(res, statusForEppError(e), openAiErrorFor(e), requestId);
    }
    if (abort.signal.aborted) {
      void decision.response.abort('client disconnected');
      return;
    }
    this.#forward(decision, path, headers, res, abort.signal, (r) => (upstreamReq = r));
  }

  /**
   * 404 for a model the pool does not serve. Checked on the name sent upstream (after the rewrite header or an
   * InferenceModelRewrite rule), so aliases pass when their target is served.
   */
  readonly #rejectUnknownModel = async (targetModel: string): Promise<void> => {
    if (await this.#catalog.knows(targetModel)) return;
    throw new EppError('NotFound', `The model \`${targetModel}\` does not exist.`);
  };

  /** Sends the request to the primary; on a refused connection, once to the first fallback. */
  #forward(
    decision: RoutingDecision,
    path: string,
    headers: Record<string, string>,
    res: ServerResponse,
    signal: AbortSignal,
    onRequest: (r: http.ClientRequest) => void,
  ): void {
    const o = this.#o;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && !isSystemOwnedHeader(k) && !k.startsWith(':')) out[k] = v;
    out['content-length'] = String(decision.body.length);
    out['content-type'] ??= 'application/json';

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
      upstream.on('response', (up) => {
        o.reachability?.reachable(target);
        this.#relay(decision, up, res).catch((err: unknown) => {
          // The upstream body failed mid-way (connection lost, or aborted because the client left).
          void decision.response.abort(`upstream response failed: ${(err as Error).message}`);
          res.destroy();
        });
      });
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        if (signal.aborted) return;
        if (err.code === 'ECONNREFUSED') {
          o.reachability?.unreachable(target);
          const fallback = decision.targets[1];
          if (!isRetry && fallback) {
            o.logger.info({ requestId: decision.request.requestId, refused: target.hostPort, fallback: fallback.hostPort }, 'primary refused the connection; retrying on the fallback');
            return attempt(fallback, true);
          }
        }
        if (res.headersSent) {
          void decision.response.abort(`upstream connection failed: ${err.message}`);
          res.destroy();
          return;
        }
        void decision.response.fail(new EppError('Internal', `upstream ${target.hostPort}: ${err.message}`));
        sendError(res, 502, openAiError(`upstream ${target.hostPort} failed: ${err.message}`, 'server_error', 'upstream_unavailable'), decision.request.requestId);
      });
      upstream.end(decision.body);
    };
    attempt(decision.targets[0] as Endpoint, false);
  }

  /** Relays the upstream response with the response-path hooks; the client's end waits for completion. */
  async #relay(decision: RoutingDecision, up: IncomingMessage, res: ServerResponse): Promise<void> {
    const stream = decision.response;
    const request = decision.request;
    const status = up.statusCode ?? 502;
    const upHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined) upHeaders[k] = Array.isArray(v) ? v.join(', ') : v;
    const contentType = upHeaders['content-type'] ?? '';
    const streaming = request.body.stream || contentType.includes('text/event-stream');
    const rewrite = request.incomingModel !== request.targetModel;


    const h = stream.onHeaders(status, upHeaders, streaming);
    if (h) await h;
    if (res.destroyed) return;
    const outHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(stream.info.headers)) if (!HOP_BY_HOP.has(k)) outHeaders[k] = v;
    if (!rewrite && !streaming && upHeaders['content-length'] !== undefined) outHeaders['content-length'] = upHeaders['content-length'];
    outHeaders['x-request-id'] = request.requestId;
    res.writeHead(status, outHeaders);
    res.flushHeaders();

    if (streaming) {
      for await (const chunk of up as AsyncIterable<Buffer>) {
        const r = stream.onChunk(chunk, false);
        if (r) await r;
        if (res.destroyed) return;
        res.write(rewrite ? rewriteModelInResponse(chunk, request) : chunk);
      }
      if (res.destroyed) return;
      await stream.onChunk(EMPTY, true);
      res.end();
      return;
    }
    // Buffered: hooks see the whole body once, as with ext_proc.
    const parts: Buffer[] = [];
    for await (const chunk of up as AsyncIterable<Buffer>) parts.push(chunk);
    if (res.destroyed) return;
    const whole = Buffer.concat(parts);
    await stream.onChunk(whole, true);
    res.end(rewrite ? rewriteModelInResponse(whole, request) : whole);
  }
}

function lowerCaseHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** Reads the whole body; rejects with PayloadTooLarge as soon as it exceeds `limit` (nothing more is buffered). */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return reject(new EppError('PayloadTooLarge', `request body exceeds ${limit} bytes`));
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        parts.length = 0;
        req.removeAllListeners('data');
        req.resume();
        reject(new EppError('PayloadTooLarge', `request body exceeds ${limit} bytes`));
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size)));
    req.on('error', reject);
  });
}
