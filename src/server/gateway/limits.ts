/**
 * The embedded gateway's limits and request hygiene: inbound timeouts and sizes, upstream timeouts, buffering
 * caps, the allow-list of proxied paths, and the headers a proxy must not forward. Every limit is a CLI flag
 * (src/cli/main.ts) and a row of the limits table in docs/operations.md. `UpstreamTimeout` is the error an
 * upstream request ends with when one of the upstream timeouts fires.
 */

export interface GatewayLimits {
  /** Time a client has to send the complete request headers (Node `headersTimeout`). */
  readonly headersTimeoutMs: number;
  /** A request body that receives nothing for this long is dropped and the connection closed (408). */
  readonly bodyIdleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  readonly keepAliveTimeoutMs: number;
  /** Concurrent client connections; more are refused at accept (0 = unlimited). */
  readonly maxConnections: number;
  /** Request line + headers size; larger gets 431. */
  readonly maxHeaderBytes: number;
  /** Time to establish the upstream TCP connection (→ 504). */
  readonly upstreamConnectTimeoutMs: number;
  /** Time from sending the request until the upstream's response headers (→ 504). */
  readonly upstreamHeadersTimeoutMs: number;
  /** A response body that receives nothing from upstream for this long is ended (completion: aborted). */
  readonly upstreamIdleTimeoutMs: number;
  /** Whole-request deadline from arrival to the last response byte; 0 = none. */
  readonly requestDeadlineMs: number;
  /** A non-streaming response is buffered for the hooks up to this size; beyond, the rest passes through. */
  readonly maxBufferedResponseBytes: number;
  /** POST paths proxied upstream (exact match on the path, query ignored). */
  readonly allowedPaths: readonly string[];
}

/** Inference paths of an OpenAI-compatible server (vLLM's included). Model-server admin paths are not. */
export const DEFAULT_ALLOWED_PATHS: readonly string[] = Object.freeze([
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/conversations',
  '/v1/rerank',
  '/v1/score',
  '/v1/audio/transcriptions',
  '/v1/audio/translations',
  '/v1/moderations',
  '/v1/tokenize',
  '/v1/detokenize',
]);

/**
 * Model-server admin paths (vLLM): never proxied unless listed in the allow-list on purpose. Named in the 404 so
 * an operator who meant to expose one knows what to change.
 */
export const ADMIN_PATHS: readonly string[] = Object.freeze([
  '/v1/load_lora_adapter',
  '/v1/unload_lora_adapter',
  '/reset_prefix_cache',
  '/sleep',
  '/wake_up',
  '/collective_rpc',
  '/start_profile',
  '/stop_profile',
  '/scale_elastic_ep',
]);

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  bodyIdleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
  maxConnections: 4096,
  maxHeaderBytes: 16 * 1024,
  upstreamConnectTimeoutMs: 5_000,
  upstreamHeadersTimeoutMs: 300_000,
  upstreamIdleTimeoutMs: 60_000,
  requestDeadlineMs: 0,
  maxBufferedResponseBytes: 8 * 1024 * 1024,
  allowedPaths: DEFAULT_ALLOWED_PATHS,
});

export type PathCheck = { readonly ok: true } | { readonly ok: false; readonly status: 400 | 404; readonly message: string };

/**
 * Whether `pathname` (the raw request target without its query) may be proxied. Dot segments, encoded slashes
 * or backslashes, empty segments and backslashes are refused with 400 (they would mean something else upstream);
 * anything not on the allow-list is 404.
 */
export function checkProxyPath(pathname: string, allowed: ReadonlySet<string>): PathCheck {
  if (!pathname.startsWith('/') || /%2f|%5c|%2e|\\/i.test(pathname) || /\/\.\.?(\/|$)/.test(pathname) || pathname.includes('//')) {
    return { ok: false, status: 400, message: `path '${truncate(pathname)}' is not a normalised path (dot segments, encoded or empty segments are refused)` };
  }
  if (allowed.has(pathname)) return { ok: true };
  const hint = ADMIN_PATHS.includes(pathname) ? ' (a model-server admin path: add it to --gateway-allowed-paths to expose it)' : '';
  return { ok: false, status: 404, message: `no route for POST ${truncate(pathname)}${hint}` };
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1), credentials meant for this proxy, and headers the gateway sets itself. */
const NEVER_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'host',
  'content-length',
]);

/**
 * The headers to forward: without hop-by-hop headers, without any header named in `Connection:` (RFC 9110
 * §7.6.1) and without pseudo-headers.
 */
export function forwardableHeaders(headers: Readonly<Record<string, string>>, also: (name: string) => boolean = () => false): Record<string, string> {
  const named = new Set<string>();
  const connection = headers.connection;
  if (connection) for (const t of connection.split(',')) named.add(t.trim().toLowerCase());
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (NEVER_FORWARDED.has(k) || named.has(k) || k.startsWith(':') || also(k)) continue;
    out[k] = v;
  }
  return out;
}

/** An upstream request ended by one of the gateway's timeouts. */
export class UpstreamTimeout extends Error {
  constructor(
    readonly phase: 'connect' | 'headers' | 'idle' | 'deadline',
    readonly ms: number,
  ) {
    super(`upstream ${phase} timeout after ${ms}ms`);
  }
}
