/**
 * openai-parser request validation, table-tested per API type against epp-spec §1.8: what upstream's typed
 * decoding accepts passes, every malformed shape is a 400 with the API type's message.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EppError } from '../../../framework/errors.ts';
import { OpenAiParser } from './index.ts';

const parser = new OpenAiParser('openai-parser');
const enc = new TextEncoder();

const PATHS = {
  completions: '/v1/completions',
  chat: '/v1/chat/completions',
  responses: '/v1/responses',
  conversations: '/v1/conversations',
  embeddings: '/v1/embeddings',
} as const;
const MESSAGE = {
  completions: 'invalid completions request: must have prompt field',
  chat: 'invalid chat completions request: must have valid messages field',
  responses: 'invalid responses request: must have input field',
  conversations: 'invalid conversations request: must have items field',
  embeddings: 'invalid embeddings request: must have input field',
} as const;

type Api = keyof typeof PATHS;
const M = { model: 'm' };

const VALID: Array<[Api, Record<string, unknown>]> = [
  ['completions', { ...M, prompt: 'hi' }],
  ['completions', { ...M, prompt: ['a', 'b'], cache_salt: 's' }],
  ['chat', { ...M, messages: [{ role: 'user', content: 'hi' }] }],
  ['chat', { ...M, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'http://x' } }] }] }],
  ['chat', { ...M, messages: [{ role: 'assistant', content: null, tool_calls: [] }, { role: 'tool', content: 'r' }] }],
  ['chat', { ...M, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }], chat_template_kwargs: { a: 1 }, add_generation_prompt: true, cache_salt: null }],
  ['chat', { ...M, messages: [{ content: 'no role: Go decodes a missing field to ""' }] }],
  ['responses', { ...M, input: 'hi' }],
  ['responses', { ...M, input: [{ role: 'user', content: 'hi' }], instructions: 'be brief' }],
  ['conversations', { ...M, items: [{ type: 'message', role: 'user', content: 'hi' }] }],
  ['embeddings', { ...M, input: ['a', 'b'] }],
  ['embeddings', { ...M, input: 'a' }],
];

const INVALID: Array<[Api, string, Record<string, unknown>]> = [
  ['completions', 'no prompt', { ...M }],
  ['completions', 'empty prompt', { ...M, prompt: '' }],
  ['completions', 'empty prompt list', { ...M, prompt: [] }],
  ['completions', 'prompt is a number', { ...M, prompt: 7 }],
  ['completions', 'prompt list with a number', { ...M, prompt: ['a', 1] }],
  ['completions', 'cache_salt is a number', { ...M, prompt: 'a', cache_salt: 1 }],
  ['chat', 'no messages', { ...M }],
  ['chat', 'empty messages', { ...M, messages: [] }],
  ['chat', 'messages is an object', { ...M, messages: { role: 'user', content: 'x' } }],
  ['chat', 'a message is a string', { ...M, messages: ['hi'] }],
  ['chat', 'a message is null', { ...M, messages: [null] }],
  ['chat', 'role is a number', { ...M, messages: [{ role: 1, content: 'x' }] }],
  ['chat', 'role is an object', { ...M, messages: [{ role: { name: 'user' }, content: 'x' }] }],
  ['chat', 'content is a number', { ...M, messages: [{ role: 'user', content: 42 }] }],
  ['chat', 'content is an object', { ...M, messages: [{ role: 'user', content: { text: 'x' } }] }],
  ['chat', 'a content block is a string', { ...M, messages: [{ role: 'user', content: ['x'] }] }],
  ['chat', 'a block text is a number', { ...M, messages: [{ role: 'user', content: [{ type: 'text', text: 1 }] }] }],
  ['chat', 'image_url is a string', { ...M, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: 'http://x' }] }] }],
  ['chat', 'tools is an object', { ...M, messages: [{ role: 'user', content: 'x' }], tools: { a: 1 } }],
  ['chat', 'add_generation_prompt is a string', { ...M, messages: [{ role: 'user', content: 'x' }], add_generation_prompt: 'yes' }],
  ['chat', 'chat_template_kwargs is a list', { ...M, messages: [{ role: 'user', content: 'x' }], chat_template_kwargs: [] }],
  ['responses', 'no input', { ...M }],
  ['responses', 'null input', { ...M, input: null }],
  ['responses', 'cache_salt is a list', { ...M, input: 'x', cache_salt: [] }],
  ['conversations', 'no items', { ...M }],
  ['conversations', 'empty items', { ...M, items: [] }],
  ['conversations', 'items is a string', { ...M, items: 'x' }],
  ['conversations', 'an item role is a number', { ...M, items: [{ type: 'message', role: 2 }] }],
  ['conversations', 'metadata is a string', { ...M, items: [{ type: 'message' }], metadata: 'x' }],
  ['embeddings', 'no input', { ...M }],
  ['embeddings', 'cache_salt is a boolean', { ...M, input: 'x', cache_salt: true }],
];

describe('openai-parser request validation (epp-spec §1.8)', () => {
  for (const [api, body] of VALID) {
    test(`${api} accepts ${JSON.stringify(body)}`, () => {
      const parsed = parser.parseRequest(enc.encode(JSON.stringify(body)), PATHS[api]);
      assert.deepEqual(parsed.payload, body);
    });
  }
  for (const [api, what, body] of INVALID) {
    test(`${api}: ${what} → 400 "${MESSAGE[api]}"`, () => {
      assert.throws(
        () => parser.parseRequest(enc.encode(JSON.stringify(body)), PATHS[api]),
        (e: unknown) => e instanceof EppError && e.code === 'BadRequest' && e.httpStatus === 400 && e.message === MESSAGE[api],
      );
    });
  }
  test('a body that is not JSON, or not an object: 400 in upstream words, with a plain-English message for the gateway', () => {
    for (const [body, plain] of [
      ['{"model":', /^the request body is not valid JSON: /],
      ['[1]', /^the request body must be a JSON object$/],
    ] as const) {
      assert.throws(
        () => parser.parseRequest(enc.encode(body), PATHS.chat),
        (e: unknown) => e instanceof EppError && e.code === 'BadRequest' && /^error unmarshaling request bodyMap: /.test(e.message) && plain.test(e.plainMessage),
      );
    }
  });
});

describe('openai-parser streamed usage: chunk boundaries never change the answer', () => {
  const enc = new TextEncoder();
  const stream =
    'data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"héllo € 😀"}}]}\n\n' +
    'data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"€€"}}]}\n\n' +
    '€ a line that starts with a character of three bytes\n' +
    'data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\n' +
    'data: [DONE]\n\n';
  const bytes = enc.encode(stream);
  const usageOf = (pieces: Uint8Array[]) => {
    const p = new OpenAiParser('p').createResponseParser(true);
    let found: unknown;
    pieces.forEach((c, i) => {
      const u = p.push(c, i === pieces.length - 1);
      if (u && found === undefined) found = u;
    });
    return found;
  };
  const whole = usageOf([bytes]);

  test('finds the usage when fed whole', () => {
    assert.deepEqual(whole, { promptTokens: 7, completionTokens: 3, totalTokens: 10 });
  });

  test('finds the same usage for every two-way and many three-way splits (lines, characters and `usage` itself cut)', () => {
    for (let a = 1; a < bytes.length; a++) {
      assert.deepEqual(usageOf([bytes.subarray(0, a), bytes.subarray(a)]), whole, `split at ${a}`);
      for (const b of [a + 1 + (a % 7), bytes.indexOf(0x0a, a) + 1]) {
        if (b > a && b < bytes.length) assert.deepEqual(usageOf([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]), whole, `split at ${a}, ${b}`);
      }
    }
  });
});
