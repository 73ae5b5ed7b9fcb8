/** The shared hook runner: the coarse timer wheel, signals, and the "no timer when synchronous" rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EppError } from '../../src/framework/errors.ts';
import { EppMetrics } from '../../src/observability/metrics.ts';
import { HookRunner, type HookPolicy } from '../../src/runtime/hook-runner.ts';
import { HookScope, takesSignal } from '../../src/runtime/hook-scope.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { hookPlugin, ManualTimers } from '../support/runtime.ts';

function runner(): { runner: HookRunner; timers: ManualTimers; wheel: TimerWheel } {
  const timers = new ManualTimers();
  const wheel = new TimerWheel(10, timers);
  return { runner: new HookRunner({ wheel, metrics: new EppMetrics(), now: () => timers.now() }), timers, wheel };
}

function recordingPolicy(): HookPolicy & { failures: string[]; timeouts: string[] } {
  const failures: string[] = [];
  const timeouts: string[] = [];
  return {
    failures,
    timeouts,
    failed: (hook, point) => void failures.push(`${point}/${hook.typedName.name}`),
    timedOut: (hook, point, ms) => void timeouts.push(`${point}/${hook.typedName.name}/${ms}`),
  };
}

test('the wheel arms one native timer for many timeouts and never fires early', () => {
  const timers = new ManualTimers();
  const wheel = new TimerWheel(10, timers);
  const fired: number[] = [];
  const t0 = timers.now();
  for (let i = 0; i < 100; i++) wheel.add(25, () => fired.push(timers.now() - t0));
  assert.equal(timers.started, 1);
  assert.equal(wheel.size, 100);
  timers.advance(24);
  assert.equal(fired.length, 0);
  timers.advance(6); // the 30 ms tick
  assert.equal(fired.length, 100);
  assert.ok(fired.every((t) => t >= 25 && t <= 35));
  assert.equal(wheel.size, 0);
  assert.equal(timers.armed, 0);
});

test('the wheel re-arms for the next tick, and disarms when the last entry is cancelled', () => {
  const timers = new ManualTimers();
  const wheel = new TimerWheel(10, timers);
  let a = 0;
  let b = 0;
  wheel.add(10, () => a++);
  const later = wheel.add(100, () => b++);
  assert.equal(timers.started, 1);
  timers.advance(10);
  assert.equal(a, 1);
  assert.equal(timers.started, 2); // re-armed for the 100 ms tick
  later.cancel();
  later.cancel();
  assert.equal(timers.armed, 0);
  timers.advance(200);
  assert.equal(b, 0);
});

test('synchronous hooks: no timer, no promise, durations observed', () => {
  const { runner: r, timers, wheel } = runner();
  const calls: string[] = [];
  const hooks = [hookPlugin('a', {}), hookPlugin('b', {})];
  const policy = recordingPolicy();
  const out = r.runAll(new HookScope(), 'ResponseStreaming', hooks, 1000, policy, (h) => void calls.push(h.typedName.name));
  assert.equal(out, undefined);
  assert.deepEqual(calls, ['a', 'b']);
  assert.equal(timers.started, 0);
  assert.equal(wheel.nativeTimersArmed, 0);
  const v = r.callOne(new HookScope(), 'PreRequest', hooks[0]!, 1000, () => 42);
  assert.equal(v, 42);
  assert.equal(timers.started, 0);
});

test('a throwing hook is reported and the next one runs', () => {
  const { runner: r } = runner();
  const calls: string[] = [];
  const policy = recordingPolicy();
  const hooks = [hookPlugin('bad', {}), hookPlugin('good', {})];
  const out = r.runAll(new HookScope(), 'ResponseComplete', hooks, 1000, policy, (h) => {
    calls.push(h.typedName.name);
    if (h.typedName.name === 'bad') throw new Error('boom');
  });
  assert.equal(out, undefined);
  assert.deepEqual(calls, ['bad', 'good']);
  assert.deepEqual(policy.failures, ['ResponseComplete/bad']);
});

test('an async hook that times out: its signal fires with the timeout, the next hook gets a fresh signal', async () => {
  const { runner: r, timers } = runner();
  const policy = recordingPolicy();
  const signals: AbortSignal[] = [];
  const hooks = [hookPlugin('slow', {}), hookPlugin('next', {})];
  const out = r.runAll(new HookScope(), 'ResponseStreaming', hooks, 50, policy, (h, signal) => {
    signals.push(signal);
    if (h.typedName.name === 'slow') return new Promise(() => {});
    return undefined;
  });
  assert.ok(out instanceof Promise);
  assert.equal(timers.started, 1);
  timers.advance(60);
  await out;
  assert.deepEqual(policy.timeouts, ['ResponseStreaming/slow/50']);
  assert.equal(signals.length, 2);
  assert.equal(signals[0]!.aborted, true);
  assert.match(String((signals[0]!.reason as Error).message), /plugin 'slow' timed out after 50ms/);
  assert.equal(signals[1]!.aborted, false);
  assert.equal(timers.armed, 0);
});

test('callOne: a timeout rejects with a coded EppError and fires the call signal', async () => {
  const { runner: r, timers } = runner();
  let signal: AbortSignal | undefined;
  const p = r.callOne(new HookScope(), 'PreRequest', hookPlugin('hang', {}), 30, (s) => {
    signal = s;
    return new Promise<void>(() => {});
  });
  timers.advance(40);
  await assert.rejects(p as Promise<void>, (err: unknown) => err instanceof EppError && err.code === 'Internal' && /timed out after 30ms/.test(err.message));
  assert.equal(signal?.aborted, true);
});

test('a scope links its signal to the client abort and unlinks on dispose', () => {
  const client = new AbortController();
  const scope = new HookScope(client.signal);
  const s = scope.signal();
  assert.equal(scope.signal(), s, 'one signal per scope until a timeout');
  client.abort(new Error('client went away'));
  assert.equal(s.aborted, true);
  assert.equal((s.reason as Error).message, 'client went away');

  const client2 = new AbortController();
  const scope2 = new HookScope(client2.signal);
  const s2 = scope2.signal();
  scope2.dispose();
  client2.abort(new Error('late'));
  assert.equal(s2.aborted, false);
});

test('a chain under one deadline: a synchronous chain arms nothing; an async one stops at the deadline', async () => {
  const { runner: r, timers } = runner();
  const calls: string[] = [];
  const hooks = [hookPlugin('p1', {}), hookPlugin('p2', {})];
  const sync = r.runChain(new HookScope(), 'PrepareData', hooks, 400, (h) => void calls.push(h.typedName.name), never, never);
  assert.equal(sync, undefined);
  assert.deepEqual(calls, ['p1', 'p2']);
  assert.equal(timers.started, 0);

  let timedOut = 0;
  const seen: AbortSignal[] = [];
  const chain = r.runChain(
    new HookScope(),
    'PrepareData',
    hooks,
    400,
    (h, signal) => {
      seen.push(signal);
      return h.typedName.name === 'p1' ? new Promise(() => {}) : undefined;
    },
    never,
    () => void timedOut++,
  );
  timers.advance(410);
  await chain;
  assert.equal(timedOut, 1);
  assert.equal(seen.length, 1, 'p2 never runs after the deadline');
  assert.equal((seen[0]!.reason as Error).message, 'prepareData deadline exceeded');
});

test('a hook gets a signal only when its method declares the parameter (no AbortController otherwise)', () => {
  const declares = hookPlugin('declares', { prepareData: (_r: unknown, _c: unknown, _s: AbortSignal) => {} });
  const omits = hookPlugin('omits', { prepareData: (_r: unknown, _c: unknown) => {} });
  const rest = hookPlugin('rest', { prepareData: (...args: unknown[]) => void args });
  assert.equal(takesSignal('PrepareData', declares), true);
  assert.equal(takesSignal('PrepareData', omits), false);
  assert.equal(takesSignal('PrepareData', rest), true, 'length 0: given the signal, to be safe');
  assert.equal(takesSignal('ResponseReceived', hookPlugin('h', { onResponseHeaders: (_r: unknown) => {} })), false);
  assert.equal(takesSignal('ResponseReceived', hookPlugin('h', { onResponseHeaders: (_r: unknown, _s: AbortSignal) => {} })), true);
  assert.equal(takesSignal('ResponseComplete', hookPlugin('h', { onResponseComplete: (_r: unknown, _o: unknown) => {} })), false);

  const { runner: r } = runner();
  const seen = new Map<string, AbortSignal | undefined>();
  const client = new AbortController();
  const scope = new HookScope(client.signal);
  const record = (h: { typedName: { name: string } }, signal: AbortSignal) => void seen.set(h.typedName.name, signal);
  r.runChain(scope, 'PrepareData', [omits], 400, record, never, never);
  assert.equal(seen.get('omits'), undefined);
  // Nothing was created or linked: aborting the client reaches the scope all the same.
  client.abort(new Error('gone'));
  assert.equal(scope.aborted, true);
  r.runChain(scope, 'PrepareData', [declares], 400, record, never, never);
  assert.equal(seen.has('declares'), false, 'the chain stops at an aborted scope without making a signal');
  const later = new HookScope();
  r.runAll(later, 'PrepareData', [omits, declares], 1000, recordingPolicy(), record);
  assert.equal(later.aborted, false);
  assert.ok(seen.get('declares') instanceof AbortSignal);
  assert.equal(seen.get('declares')!.aborted, false);
  assert.equal(r.callOne(later, 'PrepareData', omits, 1000, (signal) => signal), undefined);
});

test('scope.aborted: reading it creates nothing; true after abort() or the client abort, false again after fresh()', () => {
  const scope = new HookScope();
  assert.equal(scope.aborted, false);
  scope.abort(new Error('x'));
  assert.equal(scope.aborted, true);
  assert.equal(scope.signal().aborted, true);
  scope.fresh();
  assert.equal(scope.aborted, false);
  const s = scope.signal();
  scope.timedOut(new Error('slow'));
  assert.equal(s.aborted, true);
  assert.equal(scope.aborted, false, 'after a timeout later calls get a fresh signal');
});

function never(): void {
  assert.fail('not expected');
}
