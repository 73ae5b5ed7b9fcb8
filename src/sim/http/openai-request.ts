// Validation of `/v1/completions` and `/v1/chat/completions` bodies (sim-spec §1.3, §1.4) into the simulator's
// `GenerationRequest`. Unknown fields are ignored, as in vLLM. Failures are `SimError` 400 naming the field.

import { SimError } from '../errors.ts';
import type { GenerationRequest, PromptInput } from '../sim-server.ts';
import { renderChatPrompt } from '../tokenizer.ts';
import type { ChatMessage } from '../tokenizer.ts';

export type ApiKind = 'completion' | 'chat';

export interface ParsedGeneration {
  readonly kind: ApiKind;
  readonly request: GenerationRequest;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

const bad = (message: string, param: string): SimError => new SimError(400, message, param);

/** The `model` field, checked before anything else so that an unknown model wins over field errors (§1.2). */
export function requireModel(body: Record<string, unknown>): string {
  const model = body['model'];
  if (typeof model !== 'string' || model === '') throw bad("missing required parameter 'model'", 'model');
  return model;
}

function optionalPositiveInt(body: Record<string, unknown>, field: string): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`${field} must be an integer`, field);
  if (v <= 0) throw bad(`${field} must be at least 1, got ${v}`, field);
  return v;
}

function optionalBool(body: Record<string, unknown>, field: string): boolean {
  const v = body[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(`${field} must be a boolean`, field);
  return v;
}

function isTokenIds(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);
}

function completionPrompts(prompt: unknown): PromptInput[] {
  if (typeof prompt === 'string') return [{ text: prompt, tokenIds: null, echoText: prompt }];
  if (isTokenIds(prompt)) return [{ text: null, tokenIds: prompt, echoText: '' }];
  if (Array.isArray(prompt) && prompt.length > 0) {
    if (prompt.every((p) => typeof p === 'string')) return prompt.map((p: string) => ({ text: p, tokenIds: null, echoText: p }));
    if (prompt.every(isTokenIds)) return prompt.map((ids: number[]) => ({ text: null, tokenIds: ids, echoText: '' }));
  }
  throw bad('prompt must be a string, an array of strings, an array of token ids or an array of such arrays', 'prompt');
}

function messageContent(content: unknown, i: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    let text = '';
    for (const part of content) {
      if (typeof part !== 'object' || part === null) throw bad(`messages[${i}].content parts must be objects`, 'messages');
      const t = (part as Record<string, unknown>)['text'];
      if (typeof t === 'string') text += t;
    }
    return text;
  }
  throw bad(`messages[${i}].content must be a string or an array of content parts`, 'messages');
}

function chatMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw bad('messages must be a non-empty array', 'messages');
  return messages.map((m, i) => {
    if (typeof m !== 'object' || m === null) throw bad(`messages[${i}] must be an object`, 'messages');
    const role = (m as Record<string, unknown>)['role'];
    if (typeof role !== 'string') throw bad(`messages[${i}].role must be a string`, 'messages');
    return { role, content: messageContent((m as Record<string, unknown>)['content'], i) };
  });
}

/** Parses a completions or chat-completions body whose `model` has already been resolved. */
export function parseGenerationBody(kind: ApiKind, body: Record<string, unknown>): ParsedGeneration {
  const model = requireModel(body);
  let prompts: PromptInput[];
  let maxTokens: number | undefined;
  if (kind === 'completion') {
    if (body['prompt'] === undefined) throw bad("missing required parameter 'prompt'", 'prompt');
    prompts = completionPrompts(body['prompt']);
    maxTokens = optionalPositiveInt(body, 'max_tokens');
  } else {
    const messages = chatMessages(body['messages']);
    const lastUser = [...messages].reverse().find((m) => m.role === 'user');
    prompts = [{ text: renderChatPrompt(messages), tokenIds: null, echoText: lastUser?.content ?? '' }];
    maxTokens = optionalPositiveInt(body, 'max_completion_tokens') ?? optionalPositiveInt(body, 'max_tokens');
  }
  const n = optionalPositiveInt(body, 'n') ?? 1;
  const stream = optionalBool(body, 'stream');
  const ignoreEos = optionalBool(body, 'ignore_eos');
  if (ignoreEos && maxTokens === undefined) throw bad('ignore_eos requires max_tokens', 'ignore_eos');
  const streamOptions = body['stream_options'];
  let includeUsage = false;
  if (streamOptions !== undefined && streamOptions !== null) {
    if (typeof streamOptions !== 'object') throw bad('stream_options must be an object', 'stream_options');
    includeUsage = optionalBool(streamOptions as Record<string, unknown>, 'include_usage');
  }
  const kvTransfer = body['kv_transfer_params'];
  if (stream && typeof kvTransfer === 'object' && kvTransfer !== null && (kvTransfer as Record<string, unknown>)['do_remote_decode'] === true) {
    throw bad('kv_transfer_params.do_remote_decode cannot be combined with stream', 'kv_transfer_params');
  }
  const salt = body['cache_salt'];
  if (salt !== undefined && typeof salt !== 'string') throw bad('cache_salt must be a string', 'cache_salt');
  return {
    kind,
    stream,
    // Non-streaming responses always carry usage (§1.5).
    includeUsage: !stream || includeUsage,
    request: { model, prompts, n, maxTokens, ignoreEos, cacheSalt: salt },
  };
}
