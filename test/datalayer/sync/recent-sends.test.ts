/** Touch coalescing's two-generation memory: exactly "sent less than the window ago", bounded, no per-hash objects. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RecentSends } from '../../../src/datalayer/sync/recent-sends.ts';

test('a hash is held back for exactly the window after it was sent, across generation changes', () => {
  const r = new RecentSends(1000, 1 << 16, 0);
  assert.equal(r.offer(0, 1, 0), true, 'never sent');
  assert.equal(r.offer(0, 1, 999), false, 'sent 999 ms ago');
  assert.equal(r.offer(0, 1, 1000), true, 'sent 1000 ms ago: again');
  assert.equal(r.offer(7, 2, 1900), true);
  assert.equal(r.offer(0, 3, 2000), true, 'a new generation starts here');
  assert.equal(r.offer(7, 2, 2500), false, 'found in the previous generation, 600 ms old');
  assert.equal(r.offer(7, 2, 2900), true, '1000 ms old');
  assert.equal(r.offer(0, 1, 5000), true, 'two idle windows: everything is sendable');
  assert.equal(r.size, 1, 'and both older generations were cleared');
});

test('a generation that reaches maxEntries rotates early: memory stays within two generations', () => {
  const r = new RecentSends(1000, 100, 0);
  for (let i = 0; i < 250; i++) assert.equal(r.offer(1, i, 10), true);
  assert.ok(r.size <= 200, `${r.size} entries`);
  for (let i = 150; i < 250; i++) assert.equal(r.offer(1, i, 20), false, `hash ${i} was sent 10 ms ago and is still remembered`);
});

test('agrees with "last sent less than the window ago" on random sequences (no cap pressure)', () => {
  const op = fc.record({ hash: fc.integer({ min: 0, max: 15 }), dt: fc.integer({ min: 0, max: 700 }) });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const r = new RecentSends(500, 1 << 16, 0);
      const last = new Map<number, number>();
      let now = 0;
      for (const o of ops) {
        now += o.dt;
        const at = last.get(o.hash);
        const expected = at === undefined || now - at >= 500;
        assert.equal(r.offer(o.hash >>> 2, o.hash, now), expected, `hash ${o.hash} at ${now}`);
        if (expected) last.set(o.hash, now);
      }
    }),
    { seed: 11, numRuns: 300 },
  );
});

test('reset forgets every send, so tables handed to another endpoint hold nothing back', () => {
  const r = new RecentSends(1000, 1 << 16, 0);
  for (let i = 0; i < 500; i++) r.offer(1, i, 10);
  r.reset(20);
  assert.equal(r.size, 0);
  assert.equal(r.offer(1, 7, 20), true, 'sent 10 ms ago by the previous owner, new to this one');
  assert.equal(r.offer(1, 7, 30), false, 'and remembered from here on');
});
