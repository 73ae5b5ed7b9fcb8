/**
 * Request-path regressions, driven over ext_proc: admission leases are released on every failure after
 * admission, and request-path hooks see their abort signal fire (hook timeout, client gone) as the contract in
 * src/framework/requestcontrol.ts promises.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Plugin, PluginFactory } from '../../src/framework/plugin.ts';
import type { SchedulingResult } from '../../src/framework/scheduling.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy } from '../support/fake-envoy.ts';
import { configText, startTestEpp } from '../support/epp.ts';
import { within } from '../support/wait.ts';

const CHAT = JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hi' }] });
const dec = new TextDecoder();

function immediate(r: { response: { case: string | undefined; value?: unknown } }): { status: number; body: string } {
  assert.equal(r.response.case, 'immediateResponse');
  const v = r.response.value as { status: { code: number }; body: Uint8Array };
  return { status: v.status.code, body: dec.decode(v.body) };
}

/** A profile handler that runs every profile, then names a primary profile that produced nothing. */
const noPrimaryHandler: PluginFactory = (name) =>
  ({
    typedName: { type: 'no-primary-handler', name },
    pickProfiles(_c: unknown, _r: unknown, profiles: ReadonlyMap<string, unknown>, done: ReadonlyMap<string, unknown>) {
      return done.size === 0 ? [...profiles.values()] : [];
    },
    processResults(): SchedulingResult {
      return { profileResults: new Map(), primaryProfileName: 'nowhere' };
    },
  }) as Plugin;

describe('a profile handler that returns no primary result', () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  before(async () => {
    epp = await startTestEpp({
      configText: configText('- type: no-primary-handler'),
      register: (r) => r.register('no-primary-handler', noPrimaryHandler),
    });
    envoy = new FakeEnvoy(epp.grpcPort);
  });
  after(async () => {
    envoy.close();
    await epp.close();
  });

  test('is a scheduling failure (429) and the admission lease is released', async () => {
    for (let i = 0; i < 3; i++) {
      const s = envoy.open();
      s.requestHeaders({ ':path': '/v1/chat/completions' });
      s.requestBody(CHAT, true);
      const r = immediate(await s.next());
      assert.equal(r.status, 429);
      assert.equal(r.body, 'inference error: ResourceExhausted - failed to find target endpoint: results must be greater than zero');
      await s.ended;
    }
    await epp.server.whenIdle();
    assert.equal(epp.admission.tracker.total, 0, 'admitted requests still counted in flight');
    assert.equal(epp.director.liveResponseStreams, 0);
  });
});

describe('request-path hook signals', () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  const seen: { hook: string; aborted: Promise<string> }[] = [];
  let entered: (() => void) | undefined;

  /** Hooks that never settle and report when (and why) their signal fires. */
  const hanging: PluginFactory = (name, params) =>
    ({
      typedName: { type: 'hanging-hook', name },
      ...((params as { kind?: string } | undefined)?.kind === 'prepare'
        ? {
            produces: ['hang.key'],
            consumes: [],
            prepareData(_r: unknown, _c: unknown, signal: AbortSignal) {
              return wait('prepareData', signal);
            },
          }
        : {
            preRequest(_r: unknown, _s: unknown, signal: AbortSignal) {
              return wait('preRequest', signal);
            },
          }),
    }) as Plugin;
  function wait(hook: string, signal: AbortSignal): Promise<void> {
    seen.push({
      hook,
      aborted: new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve(String((signal.reason as Error | undefined)?.message)), { once: true })),
    });
    entered?.();
    return new Promise<void>(() => {});
  }

  async function start(kind: 'prepare' | 'pre'): Promise<void> {
    epp = await startTestEpp({
      configText: configText(`- type: hanging-hook\n  parameters: {kind: ${kind}}`),
      register: (r) => r.register('hanging-hook', hanging),
      requestHookTimeoutMs: 50,
    });
    envoy = new FakeEnvoy(epp.grpcPort);
  }
  after(async () => {
    envoy?.close();
    await epp?.close();
  });

  test('a preRequest hook that times out is abandoned (500) and its signal fires', async () => {
    seen.length = 0;
    await start('pre');
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/chat/completions' });
    s.requestBody(CHAT, true);
    const r = immediate(await s.next());
    assert.equal(r.status, 500);
    assert.match(r.body, /plugin 'hanging-hook' timed out after 50ms/);
    assert.equal(seen[0]?.hook, 'preRequest');
    assert.match(await within(seen[0]!.aborted, 'the preRequest signal'), /timed out after 50ms/);
    await s.ended;
    envoy.close();
    await epp.close();
  });

  test('prepareData observes the client going away', async () => {
    seen.length = 0;
    await start('prepare');
    const inHook = new Promise<void>((resolve) => (entered = resolve));
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/chat/completions' });
    s.requestBody(CHAT, true);
    await inHook;
    s.cancel();
    // Fires long before the chain's own 400 ms deadline would: the client's cancel reaches the hook.
    const reason = await within(seen[0]!.aborted, 'the prepareData signal');
    assert.match(reason, /cancelled by the proxy|stream ended before the response completed/);
    await epp.server.whenIdle();
  });
});
