import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ManualTimers } from '../../../test/support/runtime.ts';
import { TimerWheel } from '../../util/timer-wheel.ts';
import { IdleTimer } from './idle-timer.ts';
import { idleWheelResolutionMs } from './server.ts';

test('a touched stream outlives the idle limit many times over on one timer, then goes idle once, a limit after its last touch', () => {
  const timers = new ManualTimers();
  let idle = 0;
  const t = new IdleTimer(300, () => idle++, timers);
  for (let i = 0; i < 20; i++) {
    timers.advance(50);
    t.touch();
  }
  assert.equal(idle, 0, 'busy for 1 s: never idle');
  assert.equal(timers.armed, 1, 'one timer armed at a time');
  assert.ok(timers.started <= 5, `re-armed only when it fired (${timers.started} timers for 20 touches)`);
  timers.advance(299);
  assert.equal(idle, 0);
  timers.advance(1);
  assert.equal(idle, 1, 'idle exactly 300 ms after the last touch');
  timers.advance(10_000);
  assert.equal(idle, 1, 'once');
  assert.equal(timers.armed, 0);
});

test('stop() ends the timer for good', () => {
  const timers = new ManualTimers();
  let idle = 0;
  const t = new IdleTimer(300, () => idle++, timers);
  timers.advance(100);
  t.stop();
  timers.advance(1_000);
  assert.equal(idle, 0);
  assert.equal(timers.armed, 0);
});

test('on the server\'s shared wheel: many streams\' idle limits take one native timer, and each fires no earlier than its limit, at most one resolution late', () => {
  const timers = new ManualTimers();
  const resolution = idleWheelResolutionMs(300);
  assert.equal(resolution, 5);
  const wheel = new TimerWheel(resolution, timers).asTimerSource();
  const fired: number[] = [];
  const streams = Array.from({ length: 100 }, (_, i) => new IdleTimer(300, () => fired.push(i), wheel));
  assert.equal(timers.armed, 1, 'one native timer for 100 streams');
  for (let i = 0; i < 50; i++) streams[i]?.stop(); // most streams end before their limit
  timers.advance(299);
  assert.equal(fired.length, 0);
  (streams[99] as IdleTimer).touch();
  timers.advance(resolution);
  assert.equal(fired.length, 49, 'the untouched, unstopped ones went idle within one resolution of the limit');
  assert.ok(!fired.includes(99) && !fired.includes(0));
  timers.advance(300);
  assert.ok(fired.includes(99), 'the touched one a limit after its touch');
  assert.equal(timers.armed, 0, 'nothing left armed');
});

test('the wheel resolution is 1/100 of the limit, between 5 ms and 1 s', () => {
  assert.equal(idleWheelResolutionMs(600_000), 1000);
  assert.equal(idleWheelResolutionMs(30_000), 300);
  assert.equal(idleWheelResolutionMs(100), 5);
});
