import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeCandidates, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import {
  KV_CACHE_UTILIZATION_SCORER_TYPE,
  KvCacheUtilizationScorer,
  kvCacheUtilizationScorerFactory,
} from './index.ts';

describe('kv-cache-utilization-scorer', () => {
  const cases: ReadonlyArray<{ name: string; usage: number[]; want: number[] }> = [
    { name: '1 − usage', usage: [0, 0.25, 0.9, 1], want: [1, 0.75, 1 - 0.9, 0] },
    // Out-of-range usage is passed through; the framework clamps the score to [0, 1].
    { name: 'usage above 1 scores below 0 (clamped by the framework)', usage: [1.5], want: [-0.5] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const candidates = makeCandidates(c.usage.length, (i) => ({ kvCacheUsagePercent: c.usage[i] }));
      const scores = new KvCacheUtilizationScorer().score(new Map(), makeRequest(), candidates);
      assert.deepEqual(Array.from(scores), c.want);
    });
  }

  it('factory: defaults and rejection', () => {
    assert.equal(kvCacheUtilizationScorerFactory('k', undefined, makeHandle()).typedName.type, KV_CACHE_UTILIZATION_SCORER_TYPE);
    assert.deepEqual(lenientFields(() => kvCacheUtilizationScorerFactory('k', { weight: 2 }, makeHandle())), ['weight']); // unknown keys are ignored, as upstream
  });
});
