/**
 * What an ext_proc stream sends Envoy once a request is routed (epp-spec §1.4, §1.5): the request-headers reply
 * (destination, Content-Length, trace context, the echoed request headers, the envoy.lb metadata), then the
 * forwarded body. Contract: the header order is upstream's; incoming trace headers are replaced by ours, never
 * echoed next to them; system-owned headers are never echoed; a large body leaves as ≤62,000-byte pieces, one per
 * event-loop turn, so other streams are served between them.
 */
import type { RequestSpan, RequestTracer } from '../../observability/tracing.ts';
import { DESTINATION_ENDPOINT_HEADER, ENVOY_LB_NAMESPACE, isSystemOwnedHeader } from '../../runtime/headers.ts';
import { encodeJsonStruct, encodeStreamedBodyReply, type Reply } from './codec.ts';
import { BODY_BYTE_LIMIT, requestHeadersResponse, setHeader } from './messages.ts';

/**
 * The request-headers reply for `destination`: destination first, then Content-Length (when the body is not
 * empty), then trace context (when tracing), then every non-system request header.
 */
export function routedHeadersReply(
  headers: Record<string, string>,
  destination: string,
  contentLength: number,
  span: RequestSpan | undefined,
  tracer: RequestTracer | undefined,
): Reply {
  const out = [setHeader(DESTINATION_ENDPOINT_HEADER, destination)];
  if (contentLength > 0) out.push(setHeader('Content-Length', String(contentLength)));
  const traceFields = span ? tracer?.fields : undefined;
  if (span) for (const [k, v] of span.inject()) out.push(setHeader(k, v));
  for (const k in headers) if (!isSystemOwnedHeader(k) && !traceFields?.has(k)) out.push(setHeader(k, headers[k] as string));
  return requestHeadersResponse(out, envoyLb(destination));
}

/**
 * Writes a body larger than one piece after the headers reply: one ≤62,000-byte piece per event-loop turn, the
 * last with end_of_stream. Resolves false when `stopped()` turned true between pieces (the rest is not sent).
 */
export async function writeBodyInPieces(body: Uint8Array, write: (msg: Reply) => void, stopped: () => boolean): Promise<boolean> {
  for (let at = 0; at < body.length; at += BODY_BYTE_LIMIT) {
    await nextTurn();
    if (stopped()) return false;
    const end = Math.min(body.length, at + BODY_BYTE_LIMIT);
    write(encodeStreamedBodyReply('requestBody', body.subarray(at, end), end === body.length));
  }
  return true;
}

/**
 * The encoded `envoy.lb` metadata for `destination`. A pool has few destinations (an endpoint, or an endpoint and
 * its fallbacks), so each is encoded once and kept; the cache is dropped whole when it outgrows its bound.
 */
function envoyLb(destination: string): Uint8Array {
  let md = lbCache.get(destination);
  if (md === undefined) {
    if (lbCache.size >= LB_CACHE_LIMIT) lbCache.clear();
    md = encodeJsonStruct({ [ENVOY_LB_NAMESPACE]: { [DESTINATION_ENDPOINT_HEADER]: destination } });
    lbCache.set(destination, md);
  }
  return md;
}

const LB_CACHE_LIMIT = 4096;
const lbCache = new Map<string, Uint8Array>();

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
