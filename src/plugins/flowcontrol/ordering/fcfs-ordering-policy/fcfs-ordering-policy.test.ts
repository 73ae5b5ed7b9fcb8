import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeHandle, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { makeItem } from '../../../../../test/support/flowcontrol-fixtures.ts';
import { FcfsOrderingPolicy, fcfsOrderingPolicyFactory } from './index.ts';

describe('fcfs-ordering-policy', () => {
  it('earlier enqueue first; same millisecond → arrival order', () => {
    const p = new FcfsOrderingPolicy();
    const a = makeItem({ enqueuedAt: 2 });
    const b = makeItem({ enqueuedAt: 1 });
    const c = makeItem({ enqueuedAt: 1 });
    assert.deepEqual([a, c, b].sort((x, y) => p.compare(x, y)), [b, c, a]);
  });
  it('factory ignores unknown parameters (with a warning)', () => {
    assert.deepEqual(lenientFields(() => fcfsOrderingPolicyFactory('f', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
