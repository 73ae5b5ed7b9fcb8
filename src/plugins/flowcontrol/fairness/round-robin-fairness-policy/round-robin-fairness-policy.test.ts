import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeHandle, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { FcfsOrderingPolicy } from '../../ordering/fcfs-ordering-policy/index.ts';
import { makeBand, makeFlow, makeItem } from '../../../../../test/support/flowcontrol-fixtures.ts';
import { RoundRobinFairnessPolicy, roundRobinFairnessPolicyFactory } from './index.ts';

describe('round-robin-fairness-policy', () => {
  it('takes turns by fairness id, resuming after the last flow served and skipping empty flows', () => {
    const p = new RoundRobinFairnessPolicy();
    const flows = [makeFlow('a', [makeItem(), makeItem(), makeItem()]), makeFlow('b', []), makeFlow('c', [makeItem(), makeItem()])];
    const band = makeBand(flows, new FcfsOrderingPolicy());
    const served: string[] = [];
    for (let i = 0; i < 5; i++) {
      const f = p.selectFlow(band) as ReturnType<typeof makeFlow>;
      served.push(f.fairnessId);
      f.items.shift();
    }
    assert.deepEqual(served, ['a', 'c', 'a', 'c', 'a']);
    assert.equal(p.selectFlow(band), undefined);
  });
  it('resumes after the last id even when that flow has gone', () => {
    const p = new RoundRobinFairnessPolicy();
    const band = makeBand([makeFlow('a', [makeItem()]), makeFlow('c', [makeItem()])], new FcfsOrderingPolicy());
    band.state.set('round-robin:last', 'b');
    assert.equal(p.selectFlow(band)?.fairnessId, 'c');
  });
  it('factory accepts {} and ignores unknown parameters (with a warning)', () => {
    assert.ok(roundRobinFairnessPolicyFactory('r', undefined, makeHandle()));
    assert.deepEqual(lenientFields(() => roundRobinFairnessPolicyFactory('r', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
