/**
 * The admin HTTP server on `--metrics-port` (epp-spec §7.1): Prometheus `/metrics`, and `/healthz` (liveness) and
 * `/readyz` (readiness) for probes that cannot speak gRPC health.
 *
 *   GET /metrics  200 text exposition of the EPP's registry (500 with the error if a collector throws)
 *   GET /healthz  200 "ok" while the process serves HTTP at all (liveness: restart only a wedged process)
 *   GET /readyz   200 "ok" when the gRPC health check would answer SERVING (pool known), else 503 + reason
 *
 * HEAD is accepted wherever GET is; other methods get 405, other paths 404. Plaintext. With `authorizer`
 * (`--metrics-endpoint-auth`, see auth.ts) `/metrics` needs a bearer token: 401 without a valid one, 403 when the
 * user may not read metrics; refusals are counted in `epp_metrics_auth_failures_total`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../framework/plugin.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { MetricsAuthorizer } from './auth.ts';

export interface AdminServerOptions {
  readonly metrics: EppMetrics;
  /** Readiness: true when the EPP can route (the pool is known). */
  readonly isReady: () => boolean;
  readonly logger: Logger;
  /** Guards `/metrics` (`--metrics-endpoint-auth`); absent = open. */
  readonly authorizer?: MetricsAuthorizer;
}

export class AdminServer {
  readonly #o: AdminServerOptions;
  readonly #server: Server;
  #port = 0;

  constructor(options: AdminServerOptions) {
    this.#o = options;
    this.#server = createServer((req, res) => this.#handle(req, res));
    // A scrape is small and quick: do not let an idle keep-alive socket hold shutdown.
    this.#server.keepAliveTimeout = 5_000;
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
  }

  get port(): number {
    return this.#port;
  }

  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    return this.#port;
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/metrics':
        if (this.#o.authorizer) void this.#authorizedMetrics(req, res, this.#o.authorizer);
        else void this.#metrics(res);
        return;
      case '/healthz':
        send(res, 200, 'ok\n');
        return;
      case '/readyz':
        if (this.#o.isReady()) send(res, 200, 'ok\n');
        else send(res, 503, 'not ready: the endpoint pool is not known yet\n');
        return;
      default:
        send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  }

  async #authorizedMetrics(req: IncomingMessage, res: ServerResponse, authorizer: MetricsAuthorizer): Promise<void> {
    const r = await authorizer.check(req.headers.authorization);
    if (r.ok) return this.#metrics(res);
    this.#o.metrics.metricsAuthFailures.inc({ reason: r.reason });
    if (r.reason === 'error') this.#o.logger.warn({ err: r.message }, 'metrics authorization failed');
    send(res, r.status, `${r.message}\n`, r.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const registry = this.#o.metrics.registry;
    try {
      const text = await registry.metrics();
      send(res, 200, text, { 'content-type': registry.contentType });
    } catch (err) {
      this.#o.logger.error({ err }, 'collecting metrics failed');
      send(res, 500, `collecting metrics failed: ${(err as Error).message}\n`);
    }
  }
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
