/**
 * The gateway's upstream request: sends a routed request to the picked endpoint over the gateway's keep-alive
 * pool and hands the response to relay-response.ts. Contract: a connection refused before any byte is retried
 * once, on the first fallback target, and the refusing endpoint is reported unreachable; the connect and
 * response-headers timeouts (one timer per attempt) answer 504, any other failure before the response headers
 * 502; a failure after them ends the client's response. Client errors never name the upstream address (the log
 * does). Nothing is sent once `signal` fired.
 */
import http from 'node:http';
import type { ServerResponse } from 'node:http';
import type { Endpoint } from '../../framework/datalayer.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { RoutingDecision } from '../../runtime/request-path.ts';
import { isSystemOwnedHeader } from '../../runtime/headers.ts';
import type { Reachability } from '../../runtime/reachability.ts';
import type { ResponseRelay } from '../../runtime/response-relay.ts';
import { forwardableHeaders, UpstreamTimeout, type GatewayLimits } from './limits.ts';
import { openAiError, sendError } from './openai-errors.ts';
import { relayResponse } from './relay-response.ts';

/** What every upstream request of one gateway shares. */
export interface UpstreamContext {
  readonly agent: http.Agent;
  readonly limits: GatewayLimits;
  readonly metrics: EppMetrics;
  readonly logger: Logger;
  /** Records endpoints that refused connections, so routing avoids them until they answer again. */
  readonly reachability?: Reachability | undefined;
}

/**
 * Sends the request to the primary; on a refused connection, once to the first fallback. Connect and
 * response-headers timeouts answer 504; client errors never name the upstream address (the log does).
 */
export function forwardRequest(
  u: UpstreamContext,
  decision: RoutingDecision,
  relay: ResponseRelay,
  path: string,
  headers: Record<string, string>,
  res: ServerResponse,
  signal: AbortSignal,
  onRequest: (r: http.ClientRequest) => void,
): void {
  const l = u.limits;
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
      agent: u.agent,
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
      u.reachability?.reachable(target);
      relayResponse(decision, relay, up, res, l.upstreamIdleTimeoutMs).catch((err: unknown) => {
        // The upstream body failed mid-way (connection lost, stalled, or aborted because the client left).
        if (err instanceof UpstreamTimeout) {
          u.metrics.upstreamTimeouts.inc({ phase: err.phase });
          u.logger.warn({ requestId, endpoint: target.hostPort, err: err.message }, 'upstream response stalled; ending the stream');
        }
        void relay.abort(`upstream response failed: ${(err as Error).message}`);
        res.destroy();
      });
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (signal.aborted) return;
      if (err.code === 'ECONNREFUSED') {
        u.reachability?.unreachable(target);
        const fallback = decision.targets[1];
        if (!isRetry && fallback) {
          u.logger.info({ requestId, refused: target.hostPort, fallback: fallback.hostPort }, 'primary refused the connection; retrying on the fallback');
          return attempt(fallback, true);
        }
      }
      u.logger.warn({ requestId, endpoint: target.hostPort, err: err.message }, 'upstream request failed');
      if (res.headersSent) {
        void relay.abort(`upstream connection failed: ${err.message}`);
        res.destroy();
        return;
      }
      relay.upstreamFailed(`upstream ${target.hostPort}: ${err.message}`);
      if (err instanceof UpstreamTimeout) {
        u.metrics.upstreamTimeouts.inc({ phase: err.phase });
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
