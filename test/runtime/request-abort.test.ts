/**
 * The request's abort (runtime/request-abort.ts): its signal is created on first read and shows exactly what an
 * eagerly created one would; the hook scopes link to it without creating it; the director hands it to hooks
 * through `request.signal`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InferenceRequest } from '../../src/framework/request.ts';
import { HookScope } from '../../src/runtime/hook-scope.ts';
import { RequestAbort } from '../../src/runtime/request-abort.ts';
import { APPROX_322_WITH_FALLBACK_CONFIG_TEXT } from '../../src/config/presets.ts';
import { startTestEpp } from '../support/epp.ts';
import { chatInput, hookPlugin, testDirector } from '../support/runtime.ts';

test('a signal read before the abort fires with the first reason; one read after is born aborted with it', () => {
  const early = new RequestAbort();
  const s = early.signal;
  assert.equal(early.signal, s, 'the same signal on every read');
  assert.equal(s.aborted, false);
  const reason = new Error('client went away');
  early.abort(reason);
  early.abort(new Error('second reason'));
  assert.equal(s.aborted, true);
  assert.equal(s.reason, reason, 'first reason wins');

  const late = new RequestAbort();
  late.abort(reason);
  late.abort(new Error('second reason'));
  assert.equal(late.aborted, true);
  assert.equal(late.signal.aborted, true, 'created after the abort: already aborted');
  assert.equal(late.signal.reason, reason);
});

test('engine listeners run once in order, removed ones never; an adopted signal is the signal itself', () => {
  const a = new RequestAbort();
  const calls: string[] = [];
  const one = (): void => void calls.push('one');
  const two = (): void => void calls.push('two');
  const gone = (): void => void calls.push('gone');
  a.onAbort(one);
  a.onAbort(gone);
  a.onAbort(two);
  a.offAbort(gone);
  a.abort(new Error('x'));
  a.abort(new Error('y'));
  assert.deepEqual(calls, ['one', 'two']);

  const c = new AbortController();
  const adopted = RequestAbort.of(c.signal);
  assert.equal(adopted.signal, c.signal);
  assert.equal(RequestAbort.of(adopted), adopted);
  let heard = 0;
  adopted.onAbort(() => void heard++);
  c.abort(new Error('gone'));
  assert.equal(adopted.aborted, true);
  assert.equal((adopted.reason as Error).message, 'gone');
  assert.equal(heard, 1);
  assert.throws(() => adopted.abort(new Error('no')), /adopted/);
});

test('a hook scope linked to a lazy abort fires on it, is born aborted after it, and unlinks on dispose', () => {
  const a = new RequestAbort();
  const scope = new HookScope(a);
  const s = scope.signal();
  a.abort(new Error('client went away'));
  assert.equal(s.aborted, true);
  assert.equal((s.reason as Error).message, 'client went away');
  assert.equal(new HookScope(a).signal().aborted, true, 'a scope signal made after the abort');

  const b = new RequestAbort();
  const scope2 = new HookScope(b);
  const s2 = scope2.signal();
  scope2.dispose();
  b.abort(new Error('late'));
  assert.equal(s2.aborted, false, 'a disposed scope is no longer linked');
});

test('through the director: request.signal read by a hook before the abort fires; read after the abort it is already aborted', async () => {
  const a = new RequestAbort();
  let request: InferenceRequest | undefined;
  let early: AbortSignal | undefined;
  const t = testDirector({
    preRequest: [
      hookPlugin('pre', {
        preRequest: (r: InferenceRequest) => {
          request = r;
          early = r.signal;
        },
      }),
    ],
  } as never);
  const d = await t.director.route({ ...chatInput(), signal: a });
  assert.equal(early?.aborted, false);
  assert.equal(request?.signal, early, 'one signal per request');
  a.abort(new Error('stream cancelled'));
  assert.equal(early?.aborted, true);
  await d.response.abort('stream cancelled');

  // A request whose signal nobody read before the abort: read afterwards, it is already aborted.
  const b = new RequestAbort();
  let kept: InferenceRequest | undefined;
  const t2 = testDirector({ preRequest: [hookPlugin('pre', { preRequest: (r: InferenceRequest) => void (kept = r) })] } as never);
  const d2 = await t2.director.route({ ...chatInput(), signal: b });
  b.abort(new Error('stream cancelled'));
  await d2.response.abort('stream cancelled');
  assert.equal(kept?.signal.aborted, true);
  assert.equal((kept?.signal.reason as Error).message, 'stream cancelled');
  // The getter lives on the request's class (fast properties): the data fields are own, the signal is not copied.
  assert.ok(Object.keys(kept ?? {}).includes('targetModel'));
  assert.equal('signal' in { ...kept }, false);
});

test('an ordinary request through approx-322 (upstream scoring, approximate index) creates no AbortController; request.aborted shows an abort without one', async () => {
  const epp = await startTestEpp({ configText: APPROX_322_WITH_FALLBACK_CONFIG_TEXT });
  const input = chatInput(); // before counting: its default signal is the test's own
  const Original = globalThis.AbortController;
  let created = 0;
  globalThis.AbortController = class extends Original {
    constructor() {
      super();
      created++;
    }
  };
  try {
    for (let i = 0; i < 3; i++) {
      const d = await epp.director.route({ ...input, signal: new RequestAbort() });
      await d.response.finish();
    }
    assert.equal(created, 0, 'no hook of these plugins declares a signal it does not read');
    // The prefix producer reads request.aborted (a request that ended before preRequest is not indexed).
    const a = new RequestAbort();
    let seen: InferenceRequest | undefined;
    epp.director.registerAdmissionCheck('ext_proc', {
      name: 'abort-during-routing',
      check: (r) => {
        seen = r;
        a.abort(new Error('client went away'));
      },
    });
    const d = await epp.director.route({ ...input, signal: a, dataPlane: 'ext_proc' });
    assert.equal(seen?.aborted, true);
    await d.response.abort('client went away');
    assert.equal(created, 0);
  } finally {
    globalThis.AbortController = Original;
    await epp.close();
  }
});
