/** The director, driven directly (no server): hook timers, timeouts, aborts, and completion exactly once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EppError } from '../../src/framework/errors.ts';
import type { Outcome } from '../../src/framework/requestcontrol.ts';
import { chatInput, counterValue, hookPlugin, testDirector } from '../support/runtime.ts';

const enc = new TextEncoder();

function completions(): { outcomes: Outcome['kind'][]; hook: ReturnType<typeof hookPlugin<{ onResponseComplete(info: unknown, o: Outcome): void }>> } {
  const outcomes: Outcome['kind'][] = [];
  return { outcomes, hook: hookPlugin('complete', { onResponseComplete: (_info: unknown, o: Outcome) => void outcomes.push(o.kind) }) };
}

test('synchronous request-path hooks: the request path arms no timer and allocates no timeout', async () => {
  let prepared = 0;
  let admitted = 0;
  let pre = 0;
  const t = testDirector({
    prepareData: [hookPlugin('prod', { produces: [], consumes: [], prepareData: () => void prepared++ })],
    admit: [hookPlugin('adm', { admit: () => void admitted++ })],
    preRequest: [hookPlugin('pre', { preRequest: () => void pre++ })],
  } as never);
  for (let i = 0; i < 10; i++) {
    const d = await t.director.route(chatInput());
    assert.equal(d.targets.length >= 1, true);
    await d.response.finish();
  }
  assert.deepEqual([prepared, admitted, pre], [10, 10, 10]);
  assert.equal(t.timers.started, 0, 'no native timer');
  assert.equal(t.wheel.nativeTimersArmed, 0);
  assert.equal(t.wheel.size, 0, 'no wheel entry');
  assert.equal(t.director.liveResponseStreams, 0);
});

test('a preRequest hook that times out: 500 naming it, its signal fired, completion internal-error once', async () => {
  const c = completions();
  let signal: AbortSignal | undefined;
  let entered!: () => void;
  const inHook = new Promise<void>((resolve) => (entered = resolve));
  const t = testDirector(
    {
      preRequest: [hookPlugin('hang', { preRequest: (_r: unknown, _s: unknown, s: AbortSignal) => ((signal = s), entered(), new Promise<void>(() => {})) })],
      responseComplete: [c.hook],
    } as never,
    { requestHookTimeoutMs: 50 },
  );
  const routed = t.director.route(chatInput());
  await inHook;
  assert.ok(signal);
  assert.equal(t.timers.started, 1);
  t.timers.advance(60);
  await assert.rejects(routed, (err: unknown) => err instanceof EppError && err.code === 'Internal' && /plugin 'hang' timed out after 50ms/.test(err.message));
  assert.equal(signal.aborted, true);
  await t.director.whenIdle();
  assert.deepEqual(c.outcomes, ['internal-error']);
  assert.equal(await counterValue(t.metrics, 'epp_request_completions_total', { outcome: 'internal-error' }), 1);
});

test('the client going away reaches a waiting prepareData producer', async () => {
  let signal: AbortSignal | undefined;
  let entered!: () => void;
  const inHook = new Promise<void>((resolve) => (entered = resolve));
  const t = testDirector({
    prepareData: [
      hookPlugin('slow', {
        produces: [],
        consumes: [],
        prepareData: (_r: unknown, _c: unknown, s: AbortSignal) => {
          signal = s;
          entered();
          return new Promise<void>((resolve) => s.addEventListener('abort', () => resolve(), { once: true }));
        },
      }),
    ],
  } as never);
  const client = new AbortController();
  const routed = t.director.route(chatInput(client.signal));
  await inHook;
  client.abort(new Error('client cancelled'));
  assert.equal(signal?.aborted, true);
  assert.equal((signal.reason as Error).message, 'client cancelled');
  const d = await routed; // partial data: scheduling goes on
  await d.response.abort('client cancelled');
  assert.equal(t.wheel.size, 0, 'the deadline entry was cancelled');
});

test('an admit denial fails the request before scheduling; no response stream is left', async () => {
  const c = completions();
  const t = testDirector({ admit: [hookPlugin('no', { admit: () => 'full' })], responseComplete: [c.hook] } as never);
  await assert.rejects(t.director.route(chatInput()), /request cannot be admitted/);
  assert.equal(t.director.liveResponseStreams, 0);
  assert.deepEqual(c.outcomes, []);
});

test('completion runs exactly once per outcome, whatever the data plane calls afterwards', async () => {
  const c = completions();
  const t = testDirector({ responseComplete: [c.hook] } as never);

  const ok = await t.director.route(chatInput());
  ok.response.onHeaders(200, {}, true);
  await ok.response.onChunk(enc.encode('data: [DONE]\n\n'), true);
  await ok.response.abort('late');
  await ok.response.finish();

  const upstream = await t.director.route(chatInput());
  upstream.response.onHeaders(503, {}, false);
  await upstream.response.finish();
  await upstream.response.fail(new Error('late'));

  const aborted = await t.director.route(chatInput());
  aborted.response.onHeaders(200, {}, true);
  aborted.response.onChunk(enc.encode('data: {}\n\n'), false);
  await aborted.response.abort('client cancelled');
  await aborted.response.abort('again');
  aborted.response.onChunk(enc.encode('data: {}\n\n'), false); // a race with the upstream: not a violation

  const failed = await t.director.route(chatInput());
  await failed.response.fail(new EppError('Internal', 'boom'));
  await failed.response.finish();

  await t.director.whenIdle();
  assert.deepEqual(c.outcomes, ['success', 'upstream-error', 'aborted', 'internal-error']);
  for (const kind of ['success', 'upstream-error', 'aborted', 'internal-error']) {
    assert.equal(await counterValue(t.metrics, 'epp_request_completions_total', { outcome: kind }), 1, kind);
  }
  assert.equal(t.director.hookRunner.violations, 0);
});

test('a chunk after the final one is ignored and counted as an invariant violation', async () => {
  let chunks = 0;
  const t = testDirector({ responseChunk: [hookPlugin('chunks', { onResponseChunk: () => void chunks++ })] } as never);
  const d = await t.director.route(chatInput());
  d.response.onHeaders(200, {}, true);
  await d.response.onChunk(enc.encode('data: [DONE]\n\n'), true);
  assert.equal(d.response.onChunk(enc.encode('x'), false), undefined);
  assert.equal(d.response.onChunk(enc.encode('x'), true), undefined);
  assert.equal(chunks, 1);
  assert.equal(t.director.hookRunner.violations, 2);
  assert.equal(await counterValue(t.metrics, 'epp_lifecycle_invariant_violations_total', { invariant: 'chunk-after-end' }), 2);
});
