import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ManualTimers } from '../../../test/support/runtime.ts';
import { IdleTimer } from './idle-timer.ts';

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
