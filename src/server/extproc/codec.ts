/**
 * Hand-encoded hot reply shapes, and the copy-free (de)serialisers of the gRPC service.
 *
 * Streamed body replies (`ProcessingResponse{request_body|response_body: BodyResponse{response: CommonResponse{
 * body_mutation: BodyMutation{streamed_response: StreamedBodyResponse{body, end_of_stream}}}}}`) are most of
 * the messages an ext_proc stream sends: one per response chunk. Their layout is fixed, so they are written
 * straight into one buffer (nested lengths computed up front) instead of creating a generic protobuf message
 * and running the reflective encoder. The bytes are exactly what the generated encoder writes for the same
 * message (test/extproc/codec.test.ts decodes them with the generated codec and compares both ways).
 *
 * The headers replies (one or two per stream: the headers to set, the route-cache flag, the `envoy.lb`
 * metadata) are hand-encoded too, from the few fields the EPP sets; same test.
 *
 * A reply handed to the gRPC call is either a `ProcessingResponse` (encoded by the generated codec) or such
 * pre-encoded bytes (`EncodedReply`), passed through as they are.
 */
import { toBinary } from '@bufbuild/protobuf';
import { ProcessingResponseSchema, type ProcessingResponse } from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';

/** A reply already encoded as `ProcessingResponse` bytes. */
export type EncodedReply = Buffer;

/** What the ext_proc call writes: a message for the generated encoder, or bytes already encoded. */
export type Reply = ProcessingResponse | EncodedReply;

/** Field 3 (request_body) / 4 (response_body) of ProcessingResponse, wire type 2. */
const TAG_REQUEST_BODY = (3 << 3) | 2;
const TAG_RESPONSE_BODY = (4 << 3) | 2;
/** BodyResponse.response (1), CommonResponse.body_mutation (3), BodyMutation.streamed_response (3). */
const TAG_RESPONSE = (1 << 3) | 2;
const TAG_BODY_MUTATION = (3 << 3) | 2;
const TAG_STREAMED = (3 << 3) | 2;
/** StreamedBodyResponse.body (1, bytes) and end_of_stream (2, varint). */
const TAG_BODY = (1 << 3) | 2;
const TAG_EOS = (2 << 3) | 0;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/**
 * One streamed body reply for `side`, encoded. As the generated encoder: an empty body and a false
 * end_of_stream are left out (proto3 defaults), the oneof message fields are always written.
 */
export function encodeStreamedBodyReply(side: 'requestBody' | 'responseBody', body: Uint8Array, endOfStream: boolean): EncodedReply {
  const bodyLen = body.length;
  const streamed = (bodyLen > 0 ? 1 + varintSize(bodyLen) + bodyLen : 0) + (endOfStream ? 2 : 0);
  const mutation = 1 + varintSize(streamed) + streamed;
  const common = 1 + varintSize(mutation) + mutation;
  const response = 1 + varintSize(common) + common;
  const total = 1 + varintSize(response) + response;
  const buf = Buffer.allocUnsafe(total);
  buf[0] = side === 'requestBody' ? TAG_REQUEST_BODY : TAG_RESPONSE_BODY;
  let pos = writeVarint(buf, 1, response);
  buf[pos++] = TAG_RESPONSE;
  pos = writeVarint(buf, pos, common);
  buf[pos++] = TAG_BODY_MUTATION;
  pos = writeVarint(buf, pos, mutation);
  buf[pos++] = TAG_STREAMED;
  pos = writeVarint(buf, pos, streamed);
  if (bodyLen > 0) {
    buf[pos++] = TAG_BODY;
    pos = writeVarint(buf, pos, bodyLen);
    buf.set(body, pos);
    pos += bodyLen;
  }
  if (endOfStream) {
    buf[pos++] = TAG_EOS;
    buf[pos++] = 1;
  }
  return buf;
}

/** A view of `bytes` as a Buffer, sharing its memory (`Buffer.from(uint8array)` would copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The response serialiser of the ext_proc service: pre-encoded replies pass through, others are encoded once. */
export function serializeReply(reply: Reply): Buffer {
  if (reply instanceof Uint8Array) return reply;
  return asBuffer(toBinary(ProcessingResponseSchema, reply));
}

// ------------------------------------------------------------------ headers replies

/**
 * Pieces of an encoded message, in order, and their total length: raw bytes, varints (kept as numbers) and UTF-8
 * strings (kept as strings). Nested messages are written as tag, length, then their own pieces; nothing is
 * allocated per piece, and everything is written once, into the final buffer, by `done()`.
 */
class Pieces {
  readonly parts: (Uint8Array | number | string)[] = [];
  length = 0;

  bytes(b: Uint8Array): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }

  varint(n: number): this {
    this.parts.push(n);
    this.length += varintSize(n);
    return this;
  }

  /** A length-delimited field (wire type 2) holding `payload`. */
  field(field: number, payload: Pieces | Uint8Array): this {
    this.varint((field << 3) | 2);
    if (payload instanceof Uint8Array) return this.varint(payload.length).bytes(payload);
    this.varint(payload.length);
    for (const p of payload.parts) this.parts.push(p);
    this.length += payload.length;
    return this;
  }

  string(field: number, s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    return this.varint((field << 3) | 2).varint(n).utf8(s, n);
  }

  /** The UTF-8 bytes of `s`, `byteLength` of them (no tag, no length). */
  utf8(s: string, byteLength: number): this {
    this.parts.push(s);
    this.length += byteLength;
    return this;
  }

  /** A varint field (wire type 0). */
  uint(field: number, n: number): this {
    return this.varint(field << 3).varint(n);
  }

  done(): Buffer {
    const buf = Buffer.allocUnsafe(this.length);
    let pos = 0;
    for (const p of this.parts) {
      if (typeof p === 'number') pos = writeVarint(buf, pos, p);
      else if (typeof p === 'string') pos += buf.write(p, pos, 'utf8');
      else {
        buf.set(p, pos);
        pos += p.length;
      }
    }
    return buf;
  }
}

/** A header to set, as the headers replies carry it: key, raw value (written as its UTF-8 bytes), append action. */
export interface HeaderToSet {
  readonly key: string;
  readonly rawValue: string;
  readonly appendAction: number;
}

/** A google.protobuf.Value for a JSON value (as protobuf-es writes a JsonValue). */
function jsonValue(v: unknown): Pieces {
  const out = new Pieces();
  if (v === null) return out.uint(1, 0);
  switch (typeof v) {
    case 'number': {
      const b = Buffer.allocUnsafe(8);
      b.writeDoubleLE(v, 0);
      return out.varint((2 << 3) | 1).bytes(b);
    }
    case 'string':
      return out.string(3, v);
    case 'boolean':
      return out.uint(4, v ? 1 : 0);
    case 'object': {
      if (Array.isArray(v)) {
        const list = new Pieces();
        for (const e of v) list.field(1, jsonValue(e));
        return out.field(6, list);
      }
      return out.field(5, jsonStruct(v as Record<string, unknown>));
    }
    default:
      throw new TypeError(`not a JSON value: ${typeof v}`);
  }
}

/** A google.protobuf.Struct for a JSON object: one map entry `{key, value}` per field, in insertion order. */
function jsonStruct(o: Record<string, unknown>): Pieces {
  const struct = new Pieces();
  for (const [k, v] of Object.entries(o)) {
    // A map entry writes its key and value always, even when empty (as protobuf-es does).
    const entry = new Pieces().string(1, k).field(2, jsonValue(v));
    struct.field(1, entry);
  }
  return struct;
}

/** The encoded `google.protobuf.Struct` for a JSON object (as the generated encoder writes it). */
export function encodeJsonStruct(o: Record<string, unknown>): Buffer {
  return jsonStruct(o).done();
}

/** Byte lengths of the headers' keys and values (2 per header), reused across calls (encoding is synchronous). */
let lengths = new Int32Array(64);

/**
 * A request-headers or response-headers reply: `HeadersResponse{response: CommonResponse{header_mutation:
 * {set_headers}, clear_route_cache}}`, and `dynamic_metadata` when given (a JSON object, or the bytes of an encoded
 * Struct from `encodeJsonStruct`, e.g. cached by the caller). Written straight into one buffer: a first pass
 * computes the nested lengths, a second writes (nothing allocated per header). Byte for byte what the generated
 * encoder writes for the same message (codec.test.ts).
 */
export function encodeHeadersReply(
  side: 'requestHeaders' | 'responseHeaders',
  setHeaders: readonly HeaderToSet[],
  clearRouteCache: boolean,
  dynamicMetadata?: Record<string, unknown> | Uint8Array,
): EncodedReply {
  const n = setHeaders.length;
  if (lengths.length < 2 * n) lengths = new Int32Array(Math.max(2 * n, lengths.length * 2));
  const lens = lengths;
  // HeaderMutation: one set_headers (field 1) HeaderValueOption{header (1): HeaderValue{key (1), raw_value (3)},
  // append_action (3)} per header; proto3 defaults (empty strings, action 0) are left out, as the generated encoder does.
  let mutation = 0;
  for (let i = 0; i < n; i++) {
    const h = setHeaders[i] as HeaderToSet;
    const keyLen = Buffer.byteLength(h.key, 'utf8');
    const valueLen = Buffer.byteLength(h.rawValue, 'utf8');
    lens[2 * i] = keyLen;
    lens[2 * i + 1] = valueLen;
    const header = (keyLen > 0 ? 1 + varintSize(keyLen) + keyLen : 0) + (valueLen > 0 ? 1 + varintSize(valueLen) + valueLen : 0);
    const option = 1 + varintSize(header) + header + (h.appendAction !== 0 ? 1 + varintSize(h.appendAction) : 0);
    mutation += 1 + varintSize(option) + option;
  }
  // The generated encoder writes a set message field even when it is empty: so does this.
  const common = 1 + varintSize(mutation) + mutation + (clearRouteCache ? 2 : 0);
  const headersResponse = 1 + varintSize(common) + common;
  const md = dynamicMetadata === undefined ? undefined : dynamicMetadata instanceof Uint8Array ? dynamicMetadata : encodeJsonStruct(dynamicMetadata);
  const total = 1 + varintSize(headersResponse) + headersResponse + (md === undefined ? 0 : 1 + varintSize(md.length) + md.length);

  const buf = Buffer.allocUnsafe(total);
  buf[0] = ((side === 'requestHeaders' ? 1 : 2) << 3) | 2;
  let pos = writeVarint(buf, 1, headersResponse);
  buf[pos++] = (1 << 3) | 2; // HeadersResponse.response
  pos = writeVarint(buf, pos, common);
  buf[pos++] = (2 << 3) | 2; // CommonResponse.header_mutation
  pos = writeVarint(buf, pos, mutation);
  for (let i = 0; i < n; i++) {
    const h = setHeaders[i] as HeaderToSet;
    const keyLen = lens[2 * i] as number;
    const valueLen = lens[2 * i + 1] as number;
    const header = (keyLen > 0 ? 1 + varintSize(keyLen) + keyLen : 0) + (valueLen > 0 ? 1 + varintSize(valueLen) + valueLen : 0);
    const option = 1 + varintSize(header) + header + (h.appendAction !== 0 ? 1 + varintSize(h.appendAction) : 0);
    buf[pos++] = (1 << 3) | 2; // HeaderMutation.set_headers
    pos = writeVarint(buf, pos, option);
    buf[pos++] = (1 << 3) | 2; // HeaderValueOption.header
    pos = writeVarint(buf, pos, header);
    if (keyLen > 0) {
      buf[pos++] = (1 << 3) | 2; // HeaderValue.key
      pos = writeVarint(buf, pos, keyLen);
      pos += buf.write(h.key, pos, keyLen, 'utf8');
    }
    if (valueLen > 0) {
      buf[pos++] = (3 << 3) | 2; // HeaderValue.raw_value
      pos = writeVarint(buf, pos, valueLen);
      pos += buf.write(h.rawValue, pos, valueLen, 'utf8');
    }
    if (h.appendAction !== 0) {
      buf[pos++] = 3 << 3; // HeaderValueOption.append_action
      pos = writeVarint(buf, pos, h.appendAction);
    }
  }
  if (clearRouteCache) {
    buf[pos++] = 5 << 3; // CommonResponse.clear_route_cache
    buf[pos++] = 1;
  }
  if (md !== undefined) {
    buf[pos++] = (8 << 3) | 2; // ProcessingResponse.dynamic_metadata
    pos = writeVarint(buf, pos, md.length);
    buf.set(md, pos);
    pos += md.length;
  }
  if (pos !== total) throw new Error(`encodeHeadersReply: wrote ${pos} of ${total} bytes`);
  return buf;
}
