import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeHandle, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { FcfsOrderingPolicy } from '../../ordering/fcfs-ordering-policy/index.ts';
import { makeBand, makeFlow, makeItem } from '../../../../../test/support/flowcontrol-fixtures.ts';
import { GlobalStrictFairnessPolicy, globalStrictFairnessPolicyFactory } from './index.ts';

describe('global-strict-fairness-policy', () => {
  it('picks the flow whose head is best by the band ordering', () => {
    const p = new GlobalStrictFairnessPolicy();
    const a = makeFlow('a', [makeItem({ enqueuedAt: 5 })]);
    const b = makeFlow('b', [makeItem({ enqueuedAt: 3 })]);
    const empty = makeFlow('c', []);
    assert.equal(p.selectFlow(makeBand([a, empty, b], new FcfsOrderingPolicy()))?.fairnessId, 'b');
    assert.equal(p.selectFlow(makeBand([empty], new FcfsOrderingPolicy())), undefined);
  });
  it('factory accepts {} and ignores unknown parameters (with a warning)', () => {
    assert.ok(globalStrictFairnessPolicyFactory('g', {}, makeHandle()));
    assert.deepEqual(lenientFields(() => globalStrictFairnessPolicyFactory('g', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
