import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { LORA_AFFINITY_SCORER_TYPE, LoraAffinityScorer, loraAffinityScorerFactory } from './index.ts';

const models = (...names: string[]) => new Map(names.map((n) => [n, 1] as const));

describe('lora-affinity-scorer', () => {
  const cases: ReadonlyArray<{
    name: string;
    active: string[];
    waiting: string[];
    maxActive: number;
    want: number;
  }> = [
    { name: 'adapter active → 1.0', active: ['lora-a'], waiting: [], maxActive: 1, want: 1 },
    { name: 'active wins over waiting', active: ['lora-a'], waiting: ['lora-a'], maxActive: 1, want: 1 },
    { name: 'free slot → 0.8', active: ['x'], waiting: [], maxActive: 2, want: 0.8 },
    { name: 'free slot wins over waiting', active: [], waiting: ['lora-a'], maxActive: 2, want: 0.8 },
    { name: 'no slot, adapter waiting → 0.6', active: ['x'], waiting: ['lora-a'], maxActive: 2, want: 0.6 },
    { name: 'no slot, not waiting → 0', active: ['x', 'y'], waiting: [], maxActive: 2, want: 0 },
    { name: 'unknown slots (0), not loaded → 0', active: [], waiting: [], maxActive: 0, want: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const candidate = makeCandidate(
        makeEndpoint('e', { activeModels: models(...c.active), waitingModels: models(...c.waiting), maxActiveModels: c.maxActive }),
      );
      const scores = new LoraAffinityScorer().score(new Map(), makeRequest({ targetModel: 'lora-a' }), [candidate]);
      assert.deepEqual(Array.from(scores), [c.want]);
    });
  }

  it('uses the target model (after rewrites), per candidate', () => {
    const a = makeCandidate(makeEndpoint('a', { activeModels: models('lora-b'), maxActiveModels: 1 }));
    const b = makeCandidate(makeEndpoint('b', { activeModels: models('lora-a'), maxActiveModels: 1 }));
    const scores = new LoraAffinityScorer().score(new Map(), makeRequest({ targetModel: 'lora-b' }), [a, b]);
    assert.deepEqual(Array.from(scores), [1, 0]);
  });

  it('factory: defaults and rejection', () => {
    const p = loraAffinityScorerFactory('l', {}, makeHandle()) as LoraAffinityScorer;
    assert.equal(p.typedName.type, LORA_AFFINITY_SCORER_TYPE);
    assert.equal(p.category, 'affinity');
    assert.deepEqual(lenientFields(() => loraAffinityScorerFactory('l', { adapters: [] }, makeHandle())), ['adapters']); // unknown keys are ignored, as upstream
  });
});
