/** The one in-flight tracker: both views share one lease per request and release exactly once, in any order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { makeCandidate, makeEndpoint, makeRequest, makeSchedulingResult } from '../support/plugin-fixtures.ts';

const a = makeEndpoint('a');
const b = makeEndpoint('b');

test('admission and routing views count the same request once each and release independently, exactly once', () => {
  const t = new InFlightTracker();
  const r = makeRequest({ requestSizeBytes: 400 }); // 100 in + 150 out
  t.admitted(r);
  t.admitted(r);
  assert.deepEqual(t.unbound(), { requests: 1, tokens: 250 });
  t.scheduled(r, a);
  t.route(r, makeSchedulingResult({ prefill: [makeCandidate(b)], decode: [makeCandidate(a)] }));
  t.route(r, makeSchedulingResult({ decode: [makeCandidate(b)] })); // a second charge changes nothing
  assert.deepEqual([t.unbound(), t.loadOf('a'), t.total], [{ requests: 0, tokens: 0 }, { requests: 1, tokens: 250 }, 1]);
  assert.deepEqual([t.routedLoadOf('a'), t.routedLoadOf('b')], [{ requests: 1, tokens: 250 }, { requests: 1, tokens: 250 }]);
  t.releaseProfile(r, 'prefill');
  t.releaseProfile(r, 'prefill');
  assert.deepEqual([...t.routedLoads()], [['a', { requests: 1, tokens: 250 }]]);
  t.complete(r);
  t.complete(r);
  assert.deepEqual([...t.routedLoads()], []);
  assert.equal(t.total, 1, 'the admission lease outlives the routing charges until the runtime releases it');
  assert.equal(t.released(r), true);
  assert.equal(t.released(r), false);
  assert.deepEqual([t.loadOf('a'), t.total], [{ requests: 0, tokens: 0 }, 0]);
});

test('a deleted endpoint drops its routed counters; charges made before release nothing, the admission view is untouched', () => {
  const t = new InFlightTracker();
  const r1 = makeRequest({ requestSizeBytes: 40 });
  t.admitted(r1);
  t.scheduled(r1, a);
  t.route(r1, makeSchedulingResult({ default: [makeCandidate(a)] }));
  t.endpointDeleted('a');
  const r2 = makeRequest({ requestSizeBytes: 40 });
  t.route(r2, makeSchedulingResult({ default: [makeCandidate(a)] }));
  t.complete(r1);
  assert.deepEqual(t.routedLoadOf('a'), { requests: 1, tokens: 25 }, 'only the charge made after the deletion counts');
  assert.deepEqual(t.loadOf('a'), { requests: 1, tokens: 25 });
  t.released(r1);
  assert.equal(t.total, 0);
});
