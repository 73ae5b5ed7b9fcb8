/**
 * `openai-parser`: parses OpenAI-style request bodies (completions, chat completions, embeddings, responses,
 * conversations) and extracts token usage from JSON or SSE responses (epp-spec §1.8).
 */
import { EppError } from '../../../framework/errors.ts';
import type { Parser, ResponseParser } from '../../../framework/parser.ts';
import type { PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { ApiType, ParsedRequestBody, Usage } from '../../../framework/request.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import { z } from 'zod';
import { validateRequest } from './validate.ts';

export const OPENAI_PARSER_TYPE = 'openai-parser';

/** API type from the request path: suffix match, first hit wins, default completions (upstream order). */
function apiTypeForPath(path: string): ApiType {
  const q = path.indexOf('?');
  const p = q >= 0 ? path.slice(0, q) : path;
  if (p.endsWith('/conversations')) return 'conversations';
  if (p.endsWith('/responses')) return 'responses';
  if (p.endsWith('/chat/completions')) return 'chat-completions';
  if (p.endsWith('/completions')) return 'completions';
  if (p.endsWith('/embeddings')) return 'embeddings';
  return 'completions';
}

const utf8 = new TextDecoder();

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Reads an OpenAI `usage` object; field names depend on the object type (epp-spec §1.8). */
function usageFromObject(usage: Record<string, unknown>, objectType: unknown): Usage {
  const type = typeof objectType === 'string' ? objectType : '';
  let prompt: number;
  let completion: number;
  if (type.startsWith('response') || type.startsWith('conversation')) {
    prompt = num(usage.input_tokens);
    completion = num(usage.output_tokens);
  } else if (type === 'chat.completion' || type === 'chat.completion.chunk' || type === 'text_completion') {
    prompt = num(usage.prompt_tokens);
    completion = num(usage.completion_tokens);
  } else {
    prompt = usage.input_tokens !== undefined ? num(usage.input_tokens) : num(usage.prompt_tokens);
    completion = usage.output_tokens !== undefined ? num(usage.output_tokens) : num(usage.completion_tokens);
  }
  const details = (usage.prompt_tokens_details ?? usage.prompt_token_details) as Record<string, unknown> | undefined;
  const total = usage.total_tokens !== undefined ? num(usage.total_tokens) : prompt + completion;
  const out: { promptTokens: number; completionTokens: number; totalTokens: number; cachedTokens?: number } = {
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: total,
  };
  if (details && typeof details === 'object' && details.cached_tokens !== undefined) out.cachedTokens = num(details.cached_tokens);
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Usage from one SSE `data:` payload, or undefined. */
function usageFromSseData(data: string): Usage | undefined {
  if (!data.includes('usage')) return undefined; // cheap skip: most chunks carry no usage
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!isObject(msg)) return undefined;
  if (isObject(msg.usage)) return usageFromObject(msg.usage, 'chat.completion.chunk');
  if (msg.type === 'response.completed' && isObject(msg.response) && isObject(msg.response.usage)) {
    return usageFromObject(msg.response.usage, 'response');
  }
  return undefined;
}

/** SSE: scans complete lines; a line split across chunks is carried over to the next push. */
class SseUsageParser implements ResponseParser {
  readonly #decoder = new TextDecoder();
  #carry = '';
  /** False while the decoder may hold the first bytes of a character split across chunks. */
  #decoderEmpty = true;

  push(chunk: Uint8Array, endOfStream: boolean): Usage | undefined {
    // Most chunks are whole lines without usage: a line can only yield usage if it contains `usage`, so a chunk
    // that ends a line, continues none (no carried text, no split character) and has no such bytes is skipped
    // without being decoded.
    const n = chunk.length;
    if (n > 0 && this.#carry === '' && this.#decoderEmpty && chunk[n - 1] === 0x0a && !containsUsage(chunk)) return undefined;
    if (n > 0) this.#decoderEmpty = endOfStream || (chunk[n - 1] as number) < 0x80;
    let text = this.#carry + this.#decoder.decode(chunk, { stream: !endOfStream });
    let found: Usage | undefined;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const u = this.#line(text, start, nl);
      if (u && !found) found = u;
      start = nl + 1;
    }
    text = text.slice(start);
    if (endOfStream) {
      const u = text.length > 0 ? this.#line(text, 0, text.length) : undefined;
      if (u && !found) found = u;
      text = '';
    }
    // A pathological stream without newlines must not grow memory without bound.
    this.#carry = text.length > 1 << 20 ? '' : text;
    return found;
  }

  #line(text: string, from: number, to: number): Usage | undefined {
    if (!text.startsWith('data: ', from)) return undefined;
    let end = to;
    if (end > from && text.charCodeAt(end - 1) === 13) end--; // CRLF
    const data = text.slice(from + 6, end);
    if (data === '[DONE]') return undefined;
    return usageFromSseData(data);
  }
}

const USAGE = Buffer.from('usage');

function containsUsage(chunk: Uint8Array): boolean {
  const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return b.indexOf(USAGE) >= 0;
}

/** A whole JSON body: parsed once at end of stream. */
class JsonUsageParser implements ResponseParser {
  #parts: Uint8Array[] = [];

  push(chunk: Uint8Array, endOfStream: boolean): Usage | undefined {
    if (chunk.length > 0) this.#parts.push(chunk);
    if (!endOfStream) return undefined;
    const parts = this.#parts;
    this.#parts = [];
    if (parts.length === 0) return undefined;
    const body = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
    let msg: unknown;
    try {
      msg = JSON.parse(utf8.decode(body));
    } catch {
      return undefined;
    }
    if (!isObject(msg) || !isObject(msg.usage)) return undefined;
    return usageFromObject(msg.usage, msg.object);
  }
}

/**
 * Deepest JSON nesting accepted in a request body. Real requests (tool schemas included) stay far below; a
 * pathological body (100k `[`) would parse, then overflow the stack wherever it is walked or re-serialised.
 */
const MAX_JSON_DEPTH = 512;

/**
 * True when the bytes open more than `max` arrays/objects at once (strings and escapes skipped). The contents
 * of a string are skipped with a native search for its closing quote (one that follows an even run of
 * backslashes), so a prompt that is mostly one long string costs a memchr, not a JavaScript loop per byte.
 */
export function nestingExceeds(bytes: Uint8Array, max: number): boolean {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = buf.length;
  let depth = 0;
  let i = 0;
  while (i < n) {
    const c = buf[i] as number;
    if (c === 0x22) {
      let from = i + 1;
      for (;;) {
        const q = buf.indexOf(0x22, from);
        if (q < 0) return false; // unterminated string: JSON.parse refuses the body anyway
        let backslashes = 0;
        for (let k = q - 1; k > i && buf[k] === 0x5c; k--) backslashes++;
        if ((backslashes & 1) === 0) {
          i = q + 1;
          break;
        }
        from = q + 1;
      }
      continue;
    }
    if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
    i++;
  }
  return false;
}

export class OpenAiParser implements Parser {
  readonly typedName: TypedName;
  readonly supportedAppProtocols = ['http', 'kubernetes.io/h2c'] as const;

  constructor(name: string) {
    this.typedName = { type: OPENAI_PARSER_TYPE, name };
  }

  parseRequest(body: Uint8Array, path: string): ParsedRequestBody {
    if (nestingExceeds(body, MAX_JSON_DEPTH)) {
      throw new EppError('BadRequest', `error unmarshaling request bodyMap: JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(utf8.decode(body));
    } catch (err) {
      const detail = (err as Error).message;
      throw new EppError('BadRequest', `error unmarshaling request bodyMap: ${detail}`, { plainMessage: `the request body is not valid JSON: ${detail}` });
    }
    if (!isObject(payload)) {
      throw new EppError('BadRequest', 'error unmarshaling request bodyMap: request body must be a JSON object', {
        plainMessage: 'the request body must be a JSON object',
      });
    }
    const apiType = apiTypeForPath(path);
    validateRequest(apiType, payload);
    return { apiType, payload, stream: payload.stream === true };
  }

  createResponseParser(streaming: boolean): ResponseParser {
    return streaming ? new SseUsageParser() : new JsonUsageParser();
  }
}

export const openAiParserFactory: PluginFactory = (name, parameters) => {
  parsePluginParameters({ type: OPENAI_PARSER_TYPE, name }, z.strictObject({}), parameters);
  return new OpenAiParser(name);
};
