/** OpenAI-shaped error responses for the embedded gateway. */
import type { ServerResponse } from 'node:http';
import type { EppError } from '../../framework/errors.ts';

export interface OpenAiErrorBody {
  readonly error: { readonly message: string; readonly type: string; readonly param: null; readonly code: string | null };
}

export function openAiError(message: string, type: string, code: string | null): OpenAiErrorBody {
  return { error: { message, type, param: null, code } };
}

/** The HTTP status for an EppError (same codes as the ext_proc ImmediateResponse); unmapped → 500. */
export function statusForEppError(e: EppError): number {
  return e.httpStatus ?? 500;
}

/**
 * OpenAI's error `type` and `code` for each EPP error code. Client errors are `invalid_request_error` (as OpenAI
 * and vLLM answer: an unknown model is `model_not_found`, an oversized body `request_too_large`), refusals under
 * load `rate_limit_error`, the rest `server_error`. The EPP code itself is not an OpenAI code and is not sent.
 */
const OPENAI_TYPES: Record<EppError['code'], { readonly type: string; readonly code: string | null }> = {
  BadRequest: { type: 'invalid_request_error', code: null },
  Unauthorized: { type: 'invalid_request_error', code: 'invalid_api_key' },
  Forbidden: { type: 'invalid_request_error', code: 'forbidden' },
  NotFound: { type: 'invalid_request_error', code: 'model_not_found' },
  PayloadTooLarge: { type: 'invalid_request_error', code: 'request_too_large' },
  ResourceExhausted: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  Internal: { type: 'server_error', code: 'internal_error' },
  ServiceUnavailable: { type: 'server_error', code: 'service_unavailable' },
  ModelServerError: { type: 'server_error', code: 'upstream_error' },
  Unknown: { type: 'server_error', code: 'internal_error' },
};

/** The OpenAI-shaped body for an EppError: plain-English message, OpenAI type and code. */
export function openAiErrorFor(e: EppError): OpenAiErrorBody {
  const t = OPENAI_TYPES[e.code];
  return openAiError(e.plainMessage, t.type, t.code);
}

export function sendError(res: ServerResponse, status: number, body: OpenAiErrorBody, requestId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (requestId) headers['x-request-id'] = requestId;
  res.writeHead(status, headers).end(text);
}
