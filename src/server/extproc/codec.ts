/**
 * Hand-encoded hot reply shape, and the copy-free (de)serialisers of the gRPC service.
 *
 * Streamed body replies (`ProcessingResponse{request_body|response_body: BodyResponse{response: CommonResponse{
 * body_mutation: BodyMutation{streamed_response: StreamedBodyResponse{body, end_of_stream}}}}}`) are most of
 * the messages an ext_proc stream sends: one per response chunk. Their layout is fixed, so they are written
 * straight into one buffer (nested lengths computed up front) instead of creating a generic protobuf message
 * and running the reflective encoder. The bytes are exactly what the generated encoder writes for the same
 * message (test/extproc/codec.test.ts decodes them with the generated codec and compares both ways).
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
