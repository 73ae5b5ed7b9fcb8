import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeHandle, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { makeItem } from '../../../../../test/support/flowcontrol-fixtures.ts';
import { EdfOrderingPolicy, edfOrderingPolicyFactory } from './index.ts';

describe('edf-ordering-policy', () => {
  it('deadline = enqueue + TTL; no TTL sorts last; ties by enqueue time', () => {
    const p = new EdfOrderingPolicy();
    const noTtl = makeItem({ enqueuedAt: 0, ttlMs: 0 });
    const late = makeItem({ enqueuedAt: 0, ttlMs: 100 }); // 100
    const early = makeItem({ enqueuedAt: 50, ttlMs: 10 }); // 60
    const tie = makeItem({ enqueuedAt: 40, ttlMs: 20 }); // 60, enqueued earlier
    assert.deepEqual([noTtl, late, early, tie].sort((x, y) => p.compare(x, y)), [tie, early, late, noTtl]);
  });
  it('factory ignores unknown parameters (with a warning)', () => {
    assert.deepEqual(lenientFields(() => edfOrderingPolicyFactory('e', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
