import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeCandidates, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import {
  RUNNING_REQUESTS_SIZE_SCORER_TYPE,
  RunningRequestsSizeScorer,
  runningRequestsSizeScorerFactory,
} from './index.ts';

describe('running-requests-size-scorer', () => {
  const cases: ReadonlyArray<{ name: string; running: number[]; want: number[] }> = [
    { name: 'spread', running: [2, 4, 6], want: [1, 0.5, 0] },
    { name: 'all equal → 1 each', running: [7, 7], want: [1, 1] },
    { name: 'single', running: [0], want: [1] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const candidates = makeCandidates(c.running.length, (i) => ({ runningRequestsSize: c.running[i], waitingQueueSize: 99 - i }));
      const scores = new RunningRequestsSizeScorer().score(new Map(), makeRequest(), candidates);
      assert.deepEqual(Array.from(scores), c.want);
    });
  }

  it('reads runningRequestsSize, not the waiting queue', () => {
    const candidates = makeCandidates(2, (i) => ({ runningRequestsSize: [0, 10][i], waitingQueueSize: [10, 0][i] }));
    assert.deepEqual(Array.from(new RunningRequestsSizeScorer().score(new Map(), makeRequest(), candidates)), [1, 0]);
  });

  it('factory: defaults and rejection', () => {
    assert.equal(runningRequestsSizeScorerFactory('r', {}, makeHandle()).typedName.type, RUNNING_REQUESTS_SIZE_SCORER_TYPE);
    assert.deepEqual(lenientFields(() => runningRequestsSizeScorerFactory('r', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
