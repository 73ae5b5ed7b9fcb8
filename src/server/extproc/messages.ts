/**
 * Builders for the ext_proc replies the EPP sends (epp-spec §1.4–§1.6, §1.10).
 */
import { create } from '@bufbuild/protobuf';
import type { JsonObject } from '@bufbuild/protobuf';
import { HeaderValueOption_HeaderAppendAction } from '../../gen/envoy/config/core/v3/base_pb.ts';
import { ProcessingResponseSchema, type ProcessingResponse } from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import type { HttpHeaders } from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { encodeHeadersReply, encodeStreamedBodyReply, type HeaderToSet, type Reply } from './codec.ts';

/** Largest body piece per message: below Envoy's 64 KiB buffer, as upstream. */
export const BODY_BYTE_LIMIT = 62_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Header entries with lower-case keys; the value is `raw_value` when set, else `value`. */
export function readHeaders(h: HttpHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const hv of h?.headers?.headers ?? []) {
    const raw = hv.rawValue;
    // Decoded bytes fields are Buffer views of grpc-js's message (service.ts): Buffer's native UTF-8 slice.
    out[hv.key.toLowerCase()] = raw.length === 0 ? hv.value : Buffer.isBuffer(raw) ? raw.toString('utf8') : decoder.decode(raw);
  }
  return out;
}

/**
 * A header mutation entry. We overwrite rather than append: Envoy's default action appends, which would let
 * a client-supplied value survive next to ours.
 */
export function setHeader(key: string, value: string): HeaderToSet {
  return { key, rawValue: value, appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD };
}

/**
 * The request-headers reply (hand-encoded, codec.ts): headers to set, route cache cleared, the metadata (a JSON
 * object, or an encoded Struct).
 */
export function requestHeadersResponse(setHeaders: readonly HeaderToSet[], dynamicMetadata: JsonObject | Uint8Array): Reply {
  return encodeHeadersReply('requestHeaders', setHeaders, true, dynamicMetadata);
}

/** The response-headers reply (hand-encoded, codec.ts). */
export function responseHeadersResponse(setHeaders: readonly HeaderToSet[]): Reply {
  return encodeHeadersReply('responseHeaders', setHeaders, false);
}

/**
 * Splits `body` into streamed body responses of at most BODY_BYTE_LIMIT bytes. `endOfStream` is set only on
 * the last piece and only if asked; an empty body yields exactly one (empty) piece. `dynamicMetadata`, when
 * given, rides on the last piece. Pieces without metadata (nearly all: one per response chunk) are
 * hand-encoded (codec.ts); the one carrying metadata is a generic message.
 */
export function bodyResponses(
  side: 'requestBody' | 'responseBody',
  body: Uint8Array,
  endOfStream: boolean,
  dynamicMetadata?: JsonObject,
): Reply[] {
  const n = Math.max(1, Math.ceil(body.length / BODY_BYTE_LIMIT));
  if (n === 1 && !dynamicMetadata) return [encodeStreamedBodyReply(side, body, endOfStream)];
  const out: Reply[] = [];
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    const piece = n === 1 ? body : body.subarray(i * BODY_BYTE_LIMIT, Math.min(body.length, (i + 1) * BODY_BYTE_LIMIT));
    if (!(last && dynamicMetadata)) {
      out.push(encodeStreamedBodyReply(side, piece, endOfStream && last));
      continue;
    }
    const msg = create(ProcessingResponseSchema, {
      response: {
        case: side,
        value: { response: { bodyMutation: { mutation: { case: 'streamedResponse', value: { body: piece, endOfStream: endOfStream && last } } } } },
      },
    });
    msg.dynamicMetadata = dynamicMetadata;
    out.push(msg);
  }
  return out;
}

export function responseTrailersResponse(): ProcessingResponse {
  return create(ProcessingResponseSchema, { response: { case: 'responseTrailers', value: {} } });
}

/** A local reply: Envoy answers the client with this status and body and stops processing. */
export function immediateResponse(status: number, body: string): ProcessingResponse {
  return create(ProcessingResponseSchema, {
    response: { case: 'immediateResponse', value: { status: { code: status }, body: encoder.encode(body) } },
  });
}
