/**
 * Request/response body parsers (`parser.pluginRef`, default `openai-parser`).
 */
import type { Plugin } from './plugin.ts';
import type { ParsedRequestBody, Usage } from './request.ts';

/**
 * Parses a whole response incrementally, one instance per stream. Handles SSE `data:` lines split across
 * chunks. Must never throw on malformed input: unparsable data yields no usage.
 */
export interface ResponseParser {
  /** Feeds the next body chunk; returns usage if this chunk completed a message carrying usage. */
  push(chunk: Uint8Array, endOfStream: boolean): Usage | undefined;
}

export interface Parser extends Plugin {
  /**
   * Parses a complete request body. `path` is the request path (`:path`, or x-original-path, ...).
   * Throws an EppError with code BadRequest and upstream's message when the body is not acceptable.
   */
  parseRequest(body: Uint8Array, path: string): ParsedRequestBody;
  /**
   * Creates the per-stream response parser. `streaming` is true for streamed responses (SSE, or a request that
   * asked to stream); `request` is what `parseRequest` returned for this stream.
   */
  createResponseParser(streaming: boolean, request: ParsedRequestBody): ResponseParser;
  /** App protocols this parser supports (`http`, `kubernetes.io/h2c`); empty = all. */
  readonly supportedAppProtocols: readonly string[];
}

export function isParser(p: Plugin): p is Parser {
  const x = p as Partial<Parser>;
  return typeof x.parseRequest === 'function' && typeof x.createResponseParser === 'function';
}
