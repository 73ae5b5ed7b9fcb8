/**
 * What the director forwards: the request's own bytes when the body did not change (no re-serialisation: the
 * same buffer, whitespace and number spelling kept), the re-serialised payload when the model is rewritten or a
 * plugin changed the body (a top-level field added, removed or replaced, or `mutated` set for a deeper edit).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InferenceRequest } from '../../src/framework/request.ts';
import { LARGE_BODY_BYTES } from '../../src/runtime/director.ts';
import type { RequestInput } from '../../src/runtime/request-path.ts';
import { MODEL_REWRITE_HEADER } from '../../src/runtime/headers.ts';
import { chatInput, hookPlugin, testDirector } from '../support/runtime.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
// Spelling JSON.stringify would not reproduce: spaces, 1.0, an escaped character.
const ORIGINAL = '{ "model": "m", "stream": true, "temperature": 1.0,\n  "messages": [ {"role": "user", "content": "caf\\u00e9"} ] }';

function input(headers: Record<string, string> = {}): RequestInput {
  return { ...chatInput(), headers: { 'x-request-id': 'r-1', ...headers }, body: enc.encode(ORIGINAL) };
}

function preRequest(edit: (r: InferenceRequest) => void) {
  return { preRequest: [hookPlugin('edit', { preRequest: (r: InferenceRequest) => edit(r) })] } as never;
}

test('an unchanged body is forwarded as received: the same bytes, not re-serialised', async () => {
  const t = testDirector();
  const i = input();
  const d = await t.director.route(i);
  assert.equal(d.body, i.body, 'the very buffer the request arrived in');
  assert.equal(dec.decode(d.body), ORIGINAL);
  await d.response.finish();
});

test('a rewritten model re-serialises the body with the target model', async () => {
  const t = testDirector();
  const d = await t.director.route(input({ [MODEL_REWRITE_HEADER]: 'm2' }));
  assert.deepEqual(JSON.parse(dec.decode(d.body)), { model: 'm2', stream: true, temperature: 1, messages: [{ role: 'user', content: 'café' }] });
  assert.notEqual(dec.decode(d.body), ORIGINAL);
  await d.response.finish();
});

test('a plugin that adds, replaces or removes a top-level field: the body is re-serialised with its change', async () => {
  const cases: Array<[string, (r: InferenceRequest) => void, Record<string, unknown>]> = [
    ['added', (r) => void (r.body.payload.max_tokens = 5), { max_tokens: 5 }],
    ['replaced', (r) => void (r.body.payload.messages = [{ role: 'user', content: 'x' }]), { messages: [{ role: 'user', content: 'x' }] }],
    ['same value, new object', (r) => void (r.body.payload.messages = structuredClone(r.body.payload.messages)), {}],
  ];
  for (const [name, edit, changed] of cases) {
    const t = testDirector(preRequest(edit));
    const d = await t.director.route(input());
    const want = { model: 'm', stream: true, temperature: 1, messages: [{ role: 'user', content: 'café' }], ...changed };
    assert.deepEqual(JSON.parse(dec.decode(d.body)), want, name);
    assert.notEqual(dec.decode(d.body), ORIGINAL, name);
    await d.response.finish();
  }
  const t = testDirector(preRequest((r) => void delete r.body.payload.temperature));
  const d = await t.director.route(input());
  assert.deepEqual(Object.keys(JSON.parse(dec.decode(d.body))), ['model', 'stream', 'messages']);
  await d.response.finish();
});

test('a deeper in-place edit is forwarded only when the plugin sets `mutated`', async () => {
  const edit = (mark: boolean) => (r: InferenceRequest) => {
    (r.body.payload.messages as Array<{ content: string }>)[0]!.content = 'edited';
    if (mark) r.body.mutated = true;
  };
  const unmarked = testDirector(preRequest(edit(false)));
  const d1 = await unmarked.director.route(input());
  assert.equal(dec.decode(d1.body), ORIGINAL, 'not detected below the top level (documented contract)');
  await d1.response.finish();
  const marked = testDirector(preRequest(edit(true)));
  const d2 = await marked.director.route(input());
  assert.equal((JSON.parse(dec.decode(d2.body)) as { messages: Array<{ content: string }> }).messages[0]?.content, 'edited');
  await d2.response.finish();
});

test('a large body is parsed in its own slice of the event loop; a small one never yields', async () => {
  const turns: Array<() => void> = [];
  const t = testDirector({}, { yieldToLoop: (fn) => void turns.push(fn) });
  const big = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x'.repeat(LARGE_BODY_BYTES) }] });
  let parsed = false;
  const routed = t.director.route({ ...chatInput(), body: enc.encode(big) }).then((d) => ((parsed = true), d));
  // Each slice runs only when the loop gives the turn back: nothing is parsed or scheduled before.
  for (let slice = 0; slice < 2; slice++) {
    await new Promise((r) => setImmediate(r));
    assert.equal(turns.length, 1, `slice ${slice}: waiting for its turn`);
    assert.equal(parsed, false);
    turns.shift()?.();
  }
  const d = await routed;
  assert.equal(turns.length, 0);
  assert.equal(d.body.length, enc.encode(big).length);
  await d.response.finish();

  const small = await t.director.route(chatInput());
  assert.equal(turns.length, 0, 'no yield below LARGE_BODY_BYTES');
  await small.response.finish();
});
