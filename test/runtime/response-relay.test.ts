/**
 * The response relay driven directly (runtime/response-relay.ts): streamed vs buffered detection, the client's
 * model name restored, the buffer cap, and the error policy with exact metric counts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { EppError } from '../../src/framework/errors.ts';
import type { Outcome } from '../../src/framework/requestcontrol.ts';
import { MODEL_REWRITE_HEADER } from '../../src/runtime/headers.ts';
import { isStreamedResponse, RelayPolicy, toEppError } from '../../src/runtime/response-relay.ts';
import { PluginFailure } from '../../src/runtime/scheduler.ts';
import { chatInput, counterValue, hookPlugin, testDirector, type TestDirector } from '../support/runtime.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function policy(t: TestDirector, maxBufferedResponseBytes?: number): RelayPolicy {
  return new RelayPolicy({ dataPlane: 'gateway', metrics: t.metrics, logger: t.logger, ...(maxBufferedResponseBytes !== undefined ? { maxBufferedResponseBytes } : {}) });
}

function outcomes(): { kinds: Outcome['kind'][]; plugin: object } {
  const kinds: Outcome['kind'][] = [];
  return { kinds, plugin: hookPlugin('complete', { onResponseComplete: (_i: unknown, o: Outcome) => void kinds.push(o.kind) }) };
}

test('streamed or buffered: the request\'s stream flag or an SSE content type; without headers only the flag', async () => {
  const t = testDirector();
  const streamed = await t.director.route(chatInput(undefined, true));
  const buffered = await t.director.route(chatInput(undefined, false));
  assert.equal(isStreamedResponse(streamed.request, 'application/json'), true);
  assert.equal(isStreamedResponse(buffered.request, 'application/json'), false);
  assert.equal(isStreamedResponse(buffered.request, 'text/event-stream; charset=utf-8'), true);
  assert.equal(isStreamedResponse(buffered.request, undefined), false, 'headers skipped: only the flag counts');
  assert.equal(isStreamedResponse(undefined, 'text/event-stream'), true, 'an unrouted SSE response is streamed');
  assert.equal(isStreamedResponse(undefined, undefined), false);

  const p = policy(t);
  const a = p.open(buffered);
  assert.equal(a.start(200, { 'content-type': 'text/event-stream' }), undefined, 'no header hooks: nothing to wait for');
  assert.equal(a.streaming, true);
  assert.equal(buffered.response.info.streaming, true, 'the response stream sees the same decision');
  const b = p.open(streamed);
  b.start(200, undefined);
  assert.equal(b.streaming, true, 'headers skipped, stream flag set');
  const c = p.open(undefined);
  c.start(200, { 'content-type': 'application/json' });
  assert.equal(c.streaming, false);
  await Promise.all([a.finish(), b.finish()]);
});

test('model restore: the client\'s name comes back per chunk; without a rewrite the bytes are the same object', async () => {
  const t = testDirector();
  const input = chatInput();
  const rewritten = await t.director.route({ ...input, headers: { ...input.headers, [MODEL_REWRITE_HEADER]: 'served-name' } });
  assert.equal(rewritten.request.targetModel, 'served-name');
  const p = policy(t);
  const relay = p.open(rewritten);
  relay.start(200, { 'content-type': 'text/event-stream' });
  assert.equal(relay.rewritesBody, true);
  const chunk = enc.encode('data: {"model":"served-name","x":1,"model": "served-name"}\n\n');
  assert.equal(dec.decode(relay.restore(chunk)), 'data: {"model":"m","x":1,"model": "served-name"}\n\n', 'the compact form first; the spaced one only when it changed nothing');
  assert.equal(dec.decode(relay.restore(enc.encode('{"model": "served-name"}'))), '{"model": "m"}');

  const plain = await t.director.route(chatInput());
  const same = p.open(plain);
  assert.equal(same.rewritesBody, false);
  const body = enc.encode('{"model":"m"}');
  assert.equal(same.restore(body), body);
  assert.equal(p.open(undefined).restore(body), body, 'unrouted: passed through');
  await Promise.all([relay.finish(), same.finish()]);
});

test('buffered: held up to the cap, then what was held comes back once and the rest passes through; counted once', async () => {
  const done = outcomes();
  const small = testDirector({ responseComplete: [done.plugin] } as never);
  const p = policy(small, 10);
  const d = await small.director.route(chatInput(undefined, false));
  const relay = p.open(d);
  relay.start(200, { 'content-type': 'application/json' });
  assert.equal(relay.hold(enc.encode('12345')), undefined);
  assert.equal(relay.hold(new Uint8Array(0)), undefined, 'an empty piece changes nothing');
  assert.equal(relay.hold(enc.encode('6789')), undefined);
  const held = relay.hold(enc.encode('abc'));
  assert.equal(dec.decode(held), '123456789', 'the bytes held before the piece that overflowed');
  assert.equal(relay.passingThrough, true);
  await relay.end();
  assert.deepEqual(done.kinds, ['success']);
  assert.equal(await counterValue(small.metrics, 'epp_response_buffer_overflows_total', { data_plane: 'gateway' }), 1);

  // Under the cap: the whole body once, completion after the final chunk's hooks.
  const d2 = await small.director.route(chatInput(undefined, false));
  const r2 = p.open(d2);
  r2.start(200, { 'content-type': 'application/json' });
  r2.hold(enc.encode('{"usage":'));
  const whole = r2.takeHeld();
  assert.equal(dec.decode(whole), '{"usage":');
  await r2.end(whole);
  assert.deepEqual(done.kinds, ['success', 'success']);
  assert.equal(await counterValue(small.metrics, 'epp_response_buffer_overflows_total'), 1, 'no second count');
  assert.equal(small.director.liveResponseStreams, 0);
});

test('error policy: any failure becomes an EppError, counted once with the request\'s labels, answered before completion', async () => {
  const done = outcomes();
  const t = testDirector({ responseComplete: [done.plugin] } as never);
  const p = policy(t);
  const order: string[] = [];

  // Before routing: empty model labels, a plain Error becomes Internal with its cause.
  const cause = new Error('boom');
  const e1 = p.failed(cause, 'r-0', undefined, (e) => order.push(`answer ${e.code} ${e.httpStatus}`));
  assert.equal(e1.code, 'Internal');
  assert.equal(e1.message, 'boom');
  assert.equal(e1.cause, cause);
  // An EppError is kept as it is.
  const notFound = new EppError('NotFound', 'no such model');
  assert.equal(p.failed(notFound, 'r-1', undefined, () => order.push('answer NotFound')), notFound);

  // After routing: the request's model labels; the stream's completion runs after the answer, with internal-error.
  const d = await t.director.route(chatInput());
  d.response.onHeaders(200, {}, true);
  const e3 = p.failed('not an error', 'r-1', d, () => order.push(`answer; completed=${d.response.completed}`));
  assert.equal(e3.code, 'Internal');
  await d.response.finish();
  assert.deepEqual(order, ['answer Internal 500', 'answer NotFound', 'answer; completed=false']);
  assert.deepEqual(done.kinds, ['internal-error']);

  const m = t.metrics;
  assert.equal(await counterValue(m, 'inference_objective_request_error_total'), 3);
  assert.equal(await counterValue(m, 'inference_objective_request_error_total', { model_name: '', target_model_name: '', error_code: 'Internal' }), 1);
  assert.equal(await counterValue(m, 'inference_objective_request_error_total', { model_name: '', target_model_name: '', error_code: 'NotFound' }), 1);
  assert.equal(await counterValue(m, 'inference_objective_request_error_total', { model_name: 'm', target_model_name: 'm', error_code: 'Internal' }), 1);
  // 5xx logged as errors, the rest as rejections.
  assert.equal(t.logger.count('error', 'request failed'), 2);
  assert.equal(t.logger.count('info', 'request rejected'), 1);
});

test('error policy: a throwing scheduling plugin is counted but not logged per request (the director logs it once)', async () => {
  const t = testDirector();
  const p = policy(t);
  const plugin = hookPlugin('bad', {});
  const err = new EppError('Internal', "scheduling failed: Scorer plugin 'bad' threw", { cause: new PluginFailure('Scorer', plugin, new Error('x')) });
  p.failed(err, 'r-1', undefined, () => {});
  assert.equal(await counterValue(t.metrics, 'inference_objective_request_error_total', { error_code: 'Internal' }), 1);
  assert.equal(t.logger.count('error', 'request failed'), 0);
});

test('the model server failing before the response is an internal-error completion, not an EPP request error', async () => {
  const done = outcomes();
  const t = testDirector({ responseComplete: [done.plugin] } as never);
  const relay = policy(t).open(await t.director.route(chatInput()));
  relay.upstreamFailed('upstream 10.0.0.1:8000: ECONNRESET');
  await t.director.whenIdle();
  assert.deepEqual(done.kinds, ['internal-error']);
  assert.equal(await counterValue(t.metrics, 'inference_objective_request_error_total'), 0);
  assert.equal(await relay.abort('late'), undefined, 'after completion an abort changes nothing');
  assert.deepEqual(done.kinds, ['internal-error']);
});

test('toEppError: the context and registry id of a wrapped failure; an EppError unchanged', () => {
  const e = toEppError(new TypeError('bad'), "pre-request plugin 'p' failed", 'EPP_ERR_HOOK_FAILED');
  assert.equal(e.message, "pre-request plugin 'p' failed: bad");
  assert.equal(e.id, 'EPP_ERR_HOOK_FAILED');
  assert.equal(e.code, 'Internal');
  const kept = new EppError('BadRequest', 'x');
  assert.equal(toEppError(kept, 'ignored'), kept);
});

test('one relay: no adapter holds a copy of the response or error policy; only the relay restores model names', () => {
  const src = resolve(import.meta.dirname, '../../src');
  const all = (dir: string, out: string[] = []): string[] => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) all(p, out);
      else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
    }
    return out;
  };
  const found: string[] = [];
  for (const file of all(src)) {
    const rel = relative(src, file);
    const text = readFileSync(file, 'utf8');
    if (/from '[^']*model-rewrite\.ts'/.test(text) && rel !== join('runtime', 'response-relay.ts')) found.push(`${rel} imports model-rewrite.ts`);
    if (!rel.startsWith(`server`)) continue;
    for (const copy of ['text/event-stream', 'requestErrorTotal', 'responseBufferOverflows', 'body.stream', 'instanceof EppError', 'toError(']) {
      if (text.includes(copy)) found.push(`${rel} has ${copy}`);
    }
  }
  assert.deepEqual(found, []);
});
