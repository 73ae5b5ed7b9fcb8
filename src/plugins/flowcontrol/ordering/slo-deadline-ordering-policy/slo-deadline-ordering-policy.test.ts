import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeHandle, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { makeItem } from '../../../../../test/support/flowcontrol-fixtures.ts';
import { SloDeadlineOrderingPolicy, sloDeadlineOrderingPolicyFactory } from './index.ts';

describe('slo-deadline-ordering-policy', () => {
  it('deadline = received + x-slo-ttft-ms; missing/invalid/negative → last; ties by received time', () => {
    const p = new SloDeadlineOrderingPolicy();
    const none = makeItem({ receivedAt: 0 });
    const invalid = makeItem({ receivedAt: 1, headers: { 'x-slo-ttft-ms': 'soon' } });
    const negative = makeItem({ receivedAt: 2, headers: { 'x-slo-ttft-ms': '-5' } });
    const tight = makeItem({ receivedAt: 100, headers: { 'x-slo-ttft-ms': '50' } }); // 150
    const loose = makeItem({ receivedAt: 0, headers: { 'x-slo-ttft-ms': '500' } }); // 500
    const tie = makeItem({ receivedAt: 90, headers: { 'x-slo-ttft-ms': '60' } }); // 150, received earlier
    const sorted = [none, invalid, negative, tight, loose, tie].sort((x, y) => p.compare(x, y));
    assert.deepEqual(sorted, [tie, tight, loose, none, invalid, negative]);
    assert.equal(p.deadline(negative), Number.POSITIVE_INFINITY);
  });
  it('factory ignores unknown parameters (with a warning)', () => {
    assert.deepEqual(lenientFields(() => sloDeadlineOrderingPolicyFactory('s', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
