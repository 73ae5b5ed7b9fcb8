/** The response relay driven directly: overflow `drop` and `block`, `inline` mode, timeouts, aborts, exact counts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Outcome, ResponseChunk } from '../../src/framework/requestcontrol.ts';
import { chatInput, counterValue, hookPlugin, testDirector } from '../support/runtime.ts';

const enc = new TextEncoder();
const SSE = enc.encode('data: {"choices":[]}\n\n');
const DONE = enc.encode('data: [DONE]\n\n');

function recorder(): { indexes: number[]; outcomes: Outcome['kind'][]; chunk: object; complete: object } {
  const indexes: number[] = [];
  const outcomes: Outcome['kind'][] = [];
  return {
    indexes,
    outcomes,
    chunk: hookPlugin('chunks', { onResponseChunk: (_i: unknown, c: ResponseChunk) => void indexes.push(c.index) }),
    complete: hookPlugin('complete', { onResponseComplete: (_i: unknown, o: Outcome) => void outcomes.push(o.kind) }),
  };
}

test('overflow drop: chunks that meet a full queue skip their hooks (a gap in chunk.index), counted exactly', async () => {
  const r = recorder();
  const t = testDirector({ responseChunk: [r.chunk], responseComplete: [r.complete] } as never, { responsePath: { queueLimit: 2, overflowPolicy: 'drop' } });
  const d = await t.director.route(chatInput());
  d.response.onHeaders(200, {}, true);
  for (let i = 0; i < 5; i++) assert.equal(d.response.onChunk(SSE, false), undefined, 'drop never makes the reply wait');
  assert.deepEqual(r.indexes, [], 'async mode: no hook ran before the replies');
  await d.response.onChunk(DONE, true);
  assert.deepEqual(r.indexes, [0, 1, 5]);
  assert.deepEqual(r.outcomes, ['success']);
  assert.equal(await counterValue(t.metrics, 'epp_response_queue_overflow_total', { policy: 'drop' }), 3);
  assert.equal(t.logger.entries.filter((e) => e.level === 'warn').length, 1, 'overflow logged once per stream');
});

test('overflow block: the chunk meeting a full queue gets a promise; every hook runs, in order', async () => {
  const r = recorder();
  const t = testDirector({ responseChunk: [r.chunk], responseComplete: [r.complete] } as never, { responsePath: { queueLimit: 2, overflowPolicy: 'block' } });
  const d = await t.director.route(chatInput());
  d.response.onHeaders(200, {}, true);
  assert.equal(d.response.onChunk(SSE, false), undefined);
  assert.equal(d.response.onChunk(SSE, false), undefined);
  const blocked = d.response.onChunk(SSE, false);
  assert.ok(blocked instanceof Promise, 'the reply waits for room');
  await blocked;
  await d.response.onChunk(DONE, true);
  assert.deepEqual(r.indexes, [0, 1, 2, 3]);
  assert.deepEqual(r.outcomes, ['success']);
  assert.equal(await counterValue(t.metrics, 'epp_response_queue_overflow_total', { policy: 'block' }), 1);
});

test('inline mode: a synchronous chunk hook runs before onChunk returns; an async one makes it return a promise', async () => {
  const r = recorder();
  let release!: () => void;
  let asyncCalls = 0;
  const slow = hookPlugin('slow', {
    onResponseChunk: () => {
      asyncCalls++;
      return asyncCalls === 2 ? new Promise<void>((resolve) => (release = resolve)) : undefined;
    },
  });
  const t = testDirector({ responseChunk: [r.chunk, slow], responseComplete: [r.complete] } as never, { responsePath: { chunkHookMode: 'inline' } });
  const d = await t.director.route(chatInput());
  d.response.onHeaders(200, {}, true);
  assert.equal(d.response.onChunk(SSE, false), undefined);
  assert.deepEqual(r.indexes, [0]);
  const waiting = d.response.onChunk(SSE, false);
  assert.ok(waiting instanceof Promise);
  assert.deepEqual(r.indexes, [0, 1]);
  release();
  await waiting;
  await d.response.onChunk(DONE, true);
  assert.deepEqual(r.indexes, [0, 1, 2]);
  assert.equal(asyncCalls, 3);
  assert.deepEqual(r.outcomes, ['success']);
  assert.equal(t.timers.armed, 0);
});

test('a chunk hook that times out is abandoned (signal fired), skipped for the rest of the stream; completion runs once', async () => {
  const r = recorder();
  const signals: AbortSignal[] = [];
  let entered!: () => void;
  const inHook = new Promise<void>((resolve) => (entered = resolve));
  const hang = hookPlugin('hang', {
    onResponseChunk: (_i: unknown, _c: unknown, s: AbortSignal) => {
      signals.push(s);
      entered();
      return new Promise<void>(() => {});
    },
  });
  const t = testDirector({ responseChunk: [hang, r.chunk], responseComplete: [r.complete] } as never, { responsePath: { hookTimeoutMs: 100 } });
  const d = await t.director.route(chatInput());
  d.response.onHeaders(200, {}, true);
  d.response.onChunk(SSE, false);
  d.response.onChunk(SSE, false);
  await inHook;
  assert.equal(t.timers.started, 1);
  t.timers.advance(110);
  await d.response.onChunk(DONE, true);
  assert.equal(signals.length, 1, 'skipped after its timeout');
  assert.equal(signals[0]!.aborted, true);
  assert.deepEqual(r.indexes, [0, 1, 2]);
  assert.deepEqual(r.outcomes, ['success']);
  assert.equal(await counterValue(t.metrics, 'epp_response_hook_timeouts_total', { plugin_name: 'hang', extension_point: 'ResponseStreaming' }), 1);
  assert.equal(t.wheel.size, 0);
});

test('abort while chunk hooks wait: their signal fires, the FIFO drains, then completion(aborted) once', async () => {
  const r = recorder();
  const signals: AbortSignal[] = [];
  let entered!: () => void;
  const inHook = new Promise<void>((resolve) => (entered = resolve));
  const wait = hookPlugin('wait', {
    onResponseChunk: (_i: unknown, _c: unknown, s: AbortSignal) => {
      signals.push(s);
      entered();
      if (s.aborted) return undefined;
      return new Promise<void>((resolve) => s.addEventListener('abort', () => resolve(), { once: true }));
    },
  });
  let completeSignal: AbortSignal | undefined;
  const complete = hookPlugin('complete', {
    onResponseComplete: (_i: unknown, o: Outcome, s: AbortSignal) => {
      completeSignal = s;
      r.outcomes.push(o.kind);
    },
  });
  const t = testDirector({ responseChunk: [wait, r.chunk], responseComplete: [complete] } as never);
  const d = await t.director.route(chatInput());
  d.response.onHeaders(200, {}, true);
  d.response.onChunk(SSE, false);
  d.response.onChunk(SSE, false);
  await inHook;
  const done = d.response.abort('client cancelled');
  assert.equal(signals[0]!.aborted, true);
  await done;
  await d.response.abort('again');
  assert.deepEqual(r.indexes, [0, 1], 'pending chunk hooks still ran');
  assert.deepEqual(r.outcomes, ['aborted']);
  assert.equal(completeSignal?.aborted, false, 'completion gets a fresh signal');
  assert.equal(t.director.liveResponseStreams, 0);
  assert.equal(await counterValue(t.metrics, 'epp_request_completions_total', { outcome: 'aborted' }), 1);
});
