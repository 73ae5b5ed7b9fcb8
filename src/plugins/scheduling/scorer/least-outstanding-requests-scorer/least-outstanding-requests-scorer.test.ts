import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InFlightLoadKey } from '../../../../framework/attributes.ts';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import {
  LEAST_OUTSTANDING_REQUESTS_SCORER_TYPE,
  LeastOutstandingRequestsScorer,
  leastOutstandingRequestsScorerFactory,
} from './index.ts';

const withLoad = (requests: readonly (number | undefined)[]) =>
  requests.map((r, i) =>
    makeCandidate(
      makeEndpoint(`e${i}`, { runningRequestsSize: 50 - i, waitingQueueSize: 9 }),
      r === undefined ? {} : { [InFlightLoadKey]: { requests: r, tokens: r * 1000 } },
    ),
  );

describe('least-outstanding-requests-scorer', () => {
  const cases: ReadonlyArray<{ name: string; requests: (number | undefined)[]; want: number[] }> = [
    { name: 'spread', requests: [2, 4, 6], want: [1, 0.5, 0] },
    { name: 'all equal → 1 each', requests: [3, 3], want: [1, 1] },
    { name: 'missing attribute counts as 0', requests: [undefined, 4], want: [1, 0] },
    { name: 'single', requests: [7], want: [1] },
    { name: 'none', requests: [], want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const scores = new LeastOutstandingRequestsScorer().score(new Map(), makeRequest(), withLoad(c.requests));
      assert.deepEqual(Array.from(scores), c.want);
    });
  }

  it('reads the EPP in-flight count, not the server metrics', () => {
    // e0 reports more running requests but has fewer outstanding from this EPP.
    assert.deepEqual(Array.from(new LeastOutstandingRequestsScorer().score(new Map(), makeRequest(), withLoad([1, 5]))), [1, 0]);
  });

  it('consumes InFlightLoadKey so the producer is added automatically', () => {
    assert.deepEqual(new LeastOutstandingRequestsScorer().consumes, [InFlightLoadKey]);
  });

  it('factory: defaults and rejection', () => {
    assert.equal(leastOutstandingRequestsScorerFactory('l', {}, makeHandle()).typedName.type, LEAST_OUTSTANDING_REQUESTS_SCORER_TYPE);
    assert.deepEqual(lenientFields(() => leastOutstandingRequestsScorerFactory('l', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
