/** SharedTicker: slots, staggering, exact long-run rate, stop semantics — on a scripted clock and timer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedTicker, slotsFor, type TimerApi } from '../../src/datalayer/ticker.ts';

/** A fake clock + repeating timer: `advance(ms, late)` fires the timer at each period (optionally late). */
class FakeTimers implements TimerApi {
  t = 1000;
  readonly timers: Array<{ fn: () => void; ms: number; next: number; live: boolean }> = [];
  now(): number {
    return this.t;
  }
  repeat(fn: () => void, ms: number): () => void {
    const timer = { fn, ms, next: this.t + ms, live: true };
    this.timers.push(timer);
    return () => {
      timer.live = false;
    };
  }
  get live(): number {
    return this.timers.filter((x) => x.live).length;
  }
  /** Moves time forward, firing due timers; like Node, a fired interval is rescheduled from when it ran. */
  advance(ms: number, lateBy = 0): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.next + lateBy <= end).sort((a, b) => a.next - b.next)[0];
      if (due === undefined) break;
      this.t = Math.max(this.t, due.next + lateBy); // an overdue timer fires now, once
      due.next = this.t + due.ms;
      due.fn();
    }
    this.t = end;
  }
}

test('slotsFor: largest divisor ≤ 10 keeping slots ≥ 10 ms apart', () => {
  assert.deepEqual([50, 100, 1000, 33, 47, 20, 7, 4, 12.5, 60].map(slotsFor), [5, 10, 10, 3, 1, 2, 1, 1, 1, 6]);
});

test('registrations are spread over the slots of one shared timer, each ticked once per interval', () => {
  const timers = new FakeTimers();
  const ticker = new SharedTicker(timers);
  const ticks = Array.from({ length: 25 }, () => [] as number[]);
  const handles = ticks.map((log) => ticker.every(50, () => log.push(timers.now())));
  assert.equal(timers.live, 1, 'one timer for the interval');
  timers.advance(500);
  for (const log of ticks) {
    assert.equal(log.length, 10, 'ten ticks in ten intervals');
    for (let i = 1; i < log.length; i++) assert.equal((log[i] as number) - (log[i - 1] as number), 50);
  }
  // Staggered: the first ticks land on 5 different 10 ms phases, 5 registrations per phase.
  const firsts = new Map<number, number>();
  for (const log of ticks) firsts.set(log[0] as number, (firsts.get(log[0] as number) ?? 0) + 1);
  assert.equal(firsts.size, 5);
  assert.deepEqual([...firsts.values()], [5, 5, 5, 5, 5]);
  // A different interval gets its own timer; stopping everything stops both.
  const other = ticker.every(1000, () => {});
  assert.equal(timers.live, 2);
  for (const h of handles) h.stop();
  other.stop();
  assert.equal(timers.live, 0);
  assert.equal(ticker.size, 0);
});

test('a late timer catches up, so the long-run rate stays exact; a long stall runs at most one round', () => {
  const timers = new FakeTimers();
  const ticker = new SharedTicker(timers);
  let n = 0;
  const h = ticker.every(50, () => n++);
  timers.advance(5000, 1); // every fire 1 ms late: Node would drift to 6 ms periods
  assert.ok(n >= 99 && n <= 100, `ticks in 100 intervals: ${n}`);
  const before = n;
  timers.t += 10_000; // event loop blocked for 10 s
  timers.advance(5);
  assert.ok(n - before <= 2, 'no burst of 200 ticks after a stall');
  h.stop();
});

test('stop: immediate, idempotent, also from inside a tick; a stopped slot member is never called again', () => {
  const timers = new FakeTimers();
  const ticker = new SharedTicker(timers);
  const calls: string[] = [];
  const hs: Array<{ stop(): void }> = [];
  // 11 registrations on 10 slots (100 ms): slot 0 holds a and k; a stops k during the same slot run.
  for (const name of 'abcdefghijk') {
    hs.push(
      ticker.every(100, () => {
        calls.push(name);
        if (name === 'a') (hs[10] as { stop(): void }).stop();
      }),
    );
  }
  timers.advance(100);
  assert.deepEqual(calls.sort(), [...'abcdefghij']);
  (hs[0] as { stop(): void }).stop();
  (hs[0] as { stop(): void }).stop();
  calls.length = 0;
  timers.advance(100);
  assert.deepEqual(calls.sort(), [...'bcdefghij']);
  for (const h of hs) h.stop();
  assert.equal(timers.live, 0);
  // A new registration after the group emptied starts a fresh timer.
  ticker.every(50, () => calls.push('z'));
  assert.equal(timers.live, 1);
});
