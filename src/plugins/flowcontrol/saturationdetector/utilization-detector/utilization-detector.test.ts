import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, names, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { UtilizationDetector, utilizationDetectorFactory } from './index.ts';

describe('utilization-detector', () => {
  const handle = makeHandle();
  const now = handle.clock.now();
  const fresh = (name: string, waitingQueueSize: number, kvCacheUsagePercent: number) =>
    makeEndpoint(name, { waitingQueueSize, kvCacheUsagePercent, updateTime: now - 10 });
  const d = utilizationDetectorFactory('u', {}, handle) as UtilizationDetector;

  it('defaults from {}: upstream parameters', () => {
    assert.deepEqual(d.params, { queueDepthThreshold: 5, kvCacheUtilThreshold: 0.8, metricsStalenessThresholdMs: 200, headroom: 0 });
  });

  const cases: ReadonlyArray<[string, () => ReturnType<typeof makeEndpoint>[], number]> = [
    ['empty pool is saturated', () => [], 1],
    ['mean of max(queue/qT, kv/kvT)', () => [fresh('a', 5, 0.4), fresh('b', 0, 0.4)], (1 + 0.5) / 2],
    ['kv term wins when larger', () => [fresh('a', 1, 0.8)], 1],
    ['never-scraped endpoint counts 1.0', () => [makeEndpoint('a'), fresh('b', 0, 0)], 0.5],
    ['stale endpoint (older than 200ms) counts 1.0', () => [makeEndpoint('a', { updateTime: now - 201 })], 1],
    ['just fresh (200ms) is read', () => [makeEndpoint('a', { updateTime: now - 200, waitingQueueSize: 0 })], 0],
  ];
  for (const [name, eps, want] of cases) it(name, () => assert.equal(d.saturation(eps()), want));

  it('filter keeps fresh endpoints under both thresholds × (1 + headroom), fail-open when none pass', () => {
    const h = utilizationDetectorFactory('u', { headroom: 0.2 }, handle) as UtilizationDetector;
    const cands = [fresh('ok', 5, 0.9), fresh('queue', 6, 0), fresh('kv', 0, 0.96), makeCandidate(makeEndpoint('stale')).endpoint].map((e) => makeCandidate(e));
    assert.deepEqual(names(h.filter(new Map(), makeRequest(), cands)), ['ok']);
    const none = [fresh('q', 10, 0)].map((e) => makeCandidate(e));
    assert.deepEqual(names(h.filter(new Map(), makeRequest(), none)), ['q']);
  });

  it('parses durations and rejects bad parameters naming the field', () => {
    assert.equal((utilizationDetectorFactory('u', { metricsStalenessThreshold: '1.5s' }, handle) as UtilizationDetector).params.metricsStalenessThresholdMs, 1500);
    const bad: ReadonlyArray<[unknown, RegExp]> = [
      [{ queueDepthThreshold: 0 }, /parameters\.queueDepthThreshold: queueDepthThreshold must be strictly positive/],
      [{ kvCacheUtilThreshold: 1.5 }, /parameters\.kvCacheUtilThreshold/],
      [{ metricsStalenessThreshold: '0s' }, /parameters\.metricsStalenessThreshold: must be strictly positive/],
      [{ metricsStalenessThreshold: 'soon' }, /parameters\.metricsStalenessThreshold: invalid duration/],
      [{ headroom: -1 }, /parameters\.headroom/],
    ];
    for (const [params, re] of bad) assert.match(factoryError(() => utilizationDetectorFactory('u', params, handle)), re);
    assert.deepEqual(lenientFields(() => utilizationDetectorFactory('u', { queueDepth: 3 }, handle)), ['queueDepth']); // ignored, as upstream
  });
});
