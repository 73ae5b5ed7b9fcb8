/** OpenAI-shaped error responses for the embedded gateway. */
import type { ServerResponse } from 'node:http';
import type { EppError } from '../../framework/errors.ts';

export interface OpenAiErrorBody {
  readonly error: { readonly message: string; readonly type: string; readonly param: null; readonly code: string };
}

export function openAiError(message: string, type: string, code: string): OpenAiErrorBody {
  return { error: { message, type, param: null, code } };
}

/** The HTTP status for an EppError (same codes as the ext_proc ImmediateResponse); unmapped → 500. */
export function statusForEppError(e: EppError): number {
  return e.httpStatus ?? 500;
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
