import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeCandidates, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { QUEUE_SCORER_TYPE, QueueScorer, queueScorerFactory } from './index.ts';

describe('queue-scorer', () => {
  const cases: ReadonlyArray<{ name: string; queues: number[]; want: number[] }> = [
    { name: 'spread: (max − q) / (max − min)', queues: [0, 5, 10], want: [1, 0.5, 0] },
    { name: 'min not zero', queues: [4, 6, 8, 12], want: [1, 0.75, 0.5, 0] },
    { name: 'all equal → 1 each', queues: [3, 3, 3], want: [1, 1, 1] },
    { name: 'all empty → 1 each', queues: [0, 0], want: [1, 1] },
    { name: 'single candidate → 1', queues: [42], want: [1] },
    { name: 'no candidates', queues: [], want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const candidates = makeCandidates(c.queues.length, (i) => ({ waitingQueueSize: c.queues[i] }));
      const scores = new QueueScorer().score(new Map(), makeRequest(), candidates);
      assert.deepEqual(Array.from(scores), c.want);
    });
  }

  it('scores are index-aligned with the candidates, whatever their order', () => {
    const candidates = makeCandidates(3, (i) => ({ waitingQueueSize: [10, 0, 5][i] }));
    assert.deepEqual(Array.from(new QueueScorer().score(new Map(), makeRequest(), candidates)), [0, 1, 0.5]);
  });

  it('factory: defaults from {} / undefined, type and name', () => {
    for (const params of [undefined, null, {}]) {
      const p = queueScorerFactory('q', params, makeHandle());
      assert.deepEqual(p.typedName, { type: QUEUE_SCORER_TYPE, name: 'q' });
      assert.equal((p as QueueScorer).category, 'distribution');
    }
  });

  it('factory: ignores unknown parameters (as upstream), warning on the key', () => {
    assert.deepEqual(lenientFields(() => queueScorerFactory('q', { threshold: 1 }, makeHandle())), ['threshold']);
  });
});
