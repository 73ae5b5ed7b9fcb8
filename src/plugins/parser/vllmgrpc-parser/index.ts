/**
 * `vllmgrpc-parser` (epp-spec §1.8): requests to vLLM's gRPC engine service (`vllm.grpc.engine.VllmEngine`), as
 * they arrive over ext_proc: the request body is one gRPC frame (1-byte compressed flag, 4-byte big-endian length,
 * the protobuf message). Field numbers follow vLLM's `vllm_engine.proto`; only the fields routing needs are read,
 * everything else is skipped by the protobuf wire reader.
 *
 *   /vllm.grpc.engine.VllmEngine/Generate  GenerateRequest{1 request_id, 2 tokenized{1 original_text,
 *                                          2 input_ids}, 3 text, 5 stream} → completions, prompt = text or
 *                                          original_text, token ids kept, stream from the message
 *   /vllm.grpc.engine.VllmEngine/Embed     EmbedRequest{2 tokenized} (required) → embeddings
 *
 * The body is forwarded unchanged (no model in it: no model rewrite). Responses are gRPC frames of
 * GenerateResponse{2 chunk{2 prompt_tokens, 3 completion_tokens, 4 cached_tokens}, 3 complete{3 prompt_tokens,
 * 4 completion_tokens, 5 cached_tokens}} or EmbedResponse{2 complete{2 prompt_tokens}}; usage is reported when
 * prompt or completion tokens are > 0.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { z } from 'zod';
import { EppError } from '../../../framework/errors.ts';
import type { Parser, ResponseParser } from '../../../framework/parser.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { ParsedRequestBody, Usage } from '../../../framework/request.ts';

export const VLLMGRPC_PARSER_TYPE = 'vllmgrpc-parser';
export const GENERATE_PATH = '/vllm.grpc.engine.VllmEngine/Generate';
export const EMBED_PATH = '/vllm.grpc.engine.VllmEngine/Embed';
/** A response frame larger than this stops usage parsing for the stream (memory bound); the body still flows. */
const MAX_RESPONSE_FRAME_BYTES = 16 << 20;

interface Tokenized {
  readonly originalText: string;
  readonly inputIds: number[];
}

/** Calls `onField(fieldNo, wireType, reader)` for each field; the callback must consume the field or return false. */
function fields(bytes: Uint8Array, onField: (no: number, wt: WireType, r: BinaryReader) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (!onField(no, wt, r)) r.skip(wt, no);
  }
}

function tokenized(bytes: Uint8Array): Tokenized {
  let originalText = '';
  const inputIds: number[] = [];
  fields(bytes, (no, wt, r) => {
    if (no === 1 && wt === WireType.LengthDelimited) originalText = r.string();
    else if (no === 2 && wt === WireType.LengthDelimited) {
      const end = r.uint32() + r.pos; // packed
      while (r.pos < end) inputIds.push(r.uint32());
    } else if (no === 2 && wt === WireType.Varint) inputIds.push(r.uint32());
    else return false;
    return true;
  });
  return { originalText, inputIds };
}

/** The message of a request body that is exactly one uncompressed gRPC frame. */
function unframe(body: Uint8Array): Uint8Array {
  if (body.length < 5) throw new EppError('BadRequest', 'invalid gRPC request: the body is not a gRPC frame');
  if (body[0] !== 0) throw new EppError('BadRequest', 'invalid gRPC request: compressed gRPC frames are not supported');
  const len = ((body[1] as number) << 24) + ((body[2] as number) << 16) + ((body[3] as number) << 8) + (body[4] as number);
  if (5 + len !== body.length) throw new EppError('BadRequest', `invalid gRPC request: the frame declares ${len} bytes, the body carries ${body.length - 5}`);
  return body.subarray(5);
}

function decodeError(err: unknown): EppError {
  return new EppError('BadRequest', `invalid gRPC request: cannot decode the message: ${err instanceof Error ? err.message : String(err)}`);
}

export class VllmGrpcParser implements Parser {
  readonly typedName: TypedName;
  readonly supportedAppProtocols: readonly string[] = ['kubernetes.io/h2c'];

  constructor(name: string) {
    this.typedName = { type: VLLMGRPC_PARSER_TYPE, name };
  }

  parseRequest(body: Uint8Array, path: string): ParsedRequestBody {
    const q = path.indexOf('?');
    const p = q >= 0 ? path.slice(0, q) : path;
    if (p !== GENERATE_PATH && p !== EMBED_PATH) throw new EppError('BadRequest', `unsupported gRPC path: ${path}`);
    const message = unframe(body);
    let text: string | undefined;
    let tok: Tokenized | undefined;
    let requestId = '';
    let stream = false;
    try {
      fields(message, (no, wt, r) => {
        if (no === 1 && wt === WireType.LengthDelimited) requestId = r.string();
        else if (no === 2 && wt === WireType.LengthDelimited) tok = tokenized(r.bytes());
        else if (p === GENERATE_PATH && no === 3 && wt === WireType.LengthDelimited) text = r.string();
        else if (p === GENERATE_PATH && no === 5 && wt === WireType.Varint) stream = r.bool();
        else return false;
        return true;
      });
    } catch (err) {
      throw decodeError(err);
    }
    const t = tok as Tokenized | undefined;
    if (p === EMBED_PATH) {
      if (!t) throw new EppError('BadRequest', 'invalid embed request: must have tokenized input');
      return { apiType: 'embeddings', payload: { request_id: requestId, input: t.originalText, prompt_token_ids: t.inputIds }, stream: false, raw: body };
    }
    if (text === undefined && !t) throw new EppError('BadRequest', 'invalid generate request: must have text or tokenized input');
    const payload: Record<string, unknown> = { request_id: requestId, prompt: text ?? t?.originalText ?? '' };
    if (t) payload.prompt_token_ids = t.inputIds;
    return { apiType: 'completions', payload, stream, raw: body };
  }

  createResponseParser(_streaming: boolean, request: ParsedRequestBody): ResponseParser {
    return new GrpcUsageParser(request.apiType === 'embeddings');
  }
}

function counts(bytes: Uint8Array, fieldsOf: { prompt: number; completion: number; cached: number }): Usage | undefined {
  let prompt = 0;
  let completion = 0;
  let cached: number | undefined;
  fields(bytes, (no, wt, r) => {
    if (wt !== WireType.Varint) return false;
    if (no === fieldsOf.prompt) prompt = r.uint32();
    else if (no === fieldsOf.completion) completion = r.uint32();
    else if (no === fieldsOf.cached) cached = r.uint32();
    else return false;
    return true;
  });
  if (prompt <= 0 && completion <= 0) return undefined;
  return { promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, ...(cached !== undefined ? { cachedTokens: cached } : {}) };
}

/** Reads gRPC frames as they complete (a frame may span chunks); the latest usage wins. */
class GrpcUsageParser implements ResponseParser {
  #buf: Uint8Array = new Uint8Array(0);
  #broken = false;
  constructor(private readonly embed: boolean) {}

  push(chunk: Uint8Array): Usage | undefined {
    if (this.#broken || chunk.length === 0) return undefined;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    let found: Usage | undefined;
    while (this.#buf.length >= 5) {
      const b = this.#buf;
      const len = ((b[1] as number) << 24) + ((b[2] as number) << 16) + ((b[3] as number) << 8) + (b[4] as number);
      if (b[0] !== 0 || len > MAX_RESPONSE_FRAME_BYTES) {
        this.#broken = true; // compressed or oversized: no usage from this stream
        this.#buf = new Uint8Array(0);
        return found;
      }
      if (b.length < 5 + len) break;
      try {
        const u = this.#usage(b.subarray(5, 5 + len));
        if (u) found = u;
      } catch {
        // An undecodable frame yields no usage; the body itself is forwarded untouched.
      }
      this.#buf = b.subarray(5 + len);
    }
    return found;
  }

  #usage(message: Uint8Array): Usage | undefined {
    let out: Usage | undefined;
    fields(message, (no, wt, r) => {
      if (wt !== WireType.LengthDelimited) return false;
      if (this.embed && no === 2) out = counts(r.bytes(), { prompt: 2, completion: -1, cached: -1 });
      else if (!this.embed && no === 2) out = counts(r.bytes(), { prompt: 2, completion: 3, cached: 4 });
      else if (!this.embed && no === 3) out = counts(r.bytes(), { prompt: 3, completion: 4, cached: 5 });
      else return false;
      return true;
    });
    return out;
  }
}

export const vllmGrpcParserFactory: PluginFactory = (name, parameters) => {
  const parser = new VllmGrpcParser(name);
  parsePluginParameters(parser.typedName, z.strictObject({}), parameters);
  return parser;
};
