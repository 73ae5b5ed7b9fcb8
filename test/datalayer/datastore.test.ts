import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY_METRICS, type EndpointMetadata } from '../../src/framework/datalayer.ts';
import { Datastore, type EndpointChange } from '../../src/datalayer/datastore.ts';

function meta(name: string, extra: Partial<EndpointMetadata> = {}): EndpointMetadata {
  return { name, namespace: 'ns', podName: name.split('-rank-')[0] ?? name, address: '10.0.0.1', port: 8000, metricsHost: '10.0.0.1:8000', labels: {}, ...extra };
}

test('replaceAll diffs by name: added / updated (metadata) / removed; unchanged objects are kept', () => {
  const s = new Datastore();
  const seen: EndpointChange[][] = [];
  s.subscribe((c) => seen.push([...c]));
  s.replaceAll([meta('a'), meta('b')]);
  const a0 = s.get('a');
  s.commitMetrics('b', { ...EMPTY_METRICS, waitingQueueSize: 4, updateTime: 1 });
  s.replaceAll([meta('a'), meta('b', { labels: { x: '1' } }), meta('c')]);
  assert.equal(s.get('a'), a0, 'unchanged endpoint keeps its object');
  assert.equal(s.get('b')?.metrics.waitingQueueSize, 4, 'metadata update keeps metrics');
  assert.deepEqual(seen.map((b) => b.map((c) => `${c.kind}:${c.endpoint.metadata.name}`)), [['added:a', 'added:b'], ['updated:b', 'added:c']]);
  assert.deepEqual(s.replaceAll([meta('a'), meta('b', { labels: { x: '1' } }), meta('c')]), [], 'no-op emits nothing');
  assert.equal(seen.length, 2);
  s.replaceAll([meta('c')]);
  assert.deepEqual(seen[2]?.map((c) => `${c.kind}:${c.endpoint.metadata.name}`), ['removed:a', 'removed:b']);
});

test('copy-on-write: endpoints() is a stable frozen array until a change; old snapshots never change', () => {
  const s = new Datastore();
  s.replaceAll([meta('a'), meta('b')]);
  const snap1 = s.endpoints();
  assert.equal(s.endpoints(), snap1, 'O(1): same array when nothing changed');
  assert.ok(Object.isFrozen(snap1) && Object.isFrozen(snap1[0]) && Object.isFrozen(snap1[0]?.metadata) && Object.isFrozen(snap1[0]?.metadata.labels));
  const metrics = Object.freeze({ ...EMPTY_METRICS, runningRequestsSize: 9, updateTime: 5 });
  assert.equal(s.commitMetrics('b', metrics), true);
  const snap2 = s.endpoints();
  assert.notEqual(snap2, snap1);
  assert.equal(snap1[1]?.metrics.runningRequestsSize, 0, 'the old snapshot still shows the old metrics');
  assert.equal(snap2[1]?.metrics, metrics);
  assert.equal(snap2[0], snap1[0], 'untouched endpoints are shared between snapshots');
  assert.equal(snap2[1]?.hostPort, '10.0.0.1:8000');
  // Several commits between two reads publish one new array holding all of them (batched, not per commit).
  const m1 = Object.freeze({ ...EMPTY_METRICS, waitingQueueSize: 1, updateTime: 6 });
  const m2 = Object.freeze({ ...EMPTY_METRICS, waitingQueueSize: 2, updateTime: 7 });
  s.commitMetrics('a', m1);
  s.commitMetrics('b', m2);
  assert.equal(snap2[1]?.metrics, metrics, 'a held snapshot is unaffected by later commits');
  const snap3 = s.endpoints();
  assert.deepEqual([snap3[0]?.metrics, snap3[1]?.metrics], [m1, m2]);
  assert.ok(Object.isFrozen(snap3));
  assert.equal(s.endpoints(), snap3);
  assert.equal(s.get('b'), snap3[1]);
});

test('commitMetrics for an endpoint that left the pool is dropped', () => {
  const s = new Datastore();
  s.replaceAll([meta('a')]);
  s.clear();
  assert.equal(s.commitMetrics('a', EMPTY_METRICS), false);
  assert.deepEqual(s.endpoints(), []);
});

test('replacePod / removePod touch only that pod; IPv6 hostPort is bracketed', () => {
  const s = new Datastore();
  s.replaceAll([meta('p1-rank-0'), meta('p1-rank-1'), meta('p2-rank-0')]);
  s.replacePod('p1', [meta('p1-rank-1')]);
  assert.deepEqual(s.endpoints().map((e) => e.metadata.name).sort(), ['p1-rank-1', 'p2-rank-0']);
  s.removePod('p2');
  s.replacePod('p3', [meta('p3-rank-0', { address: 'fd00::1', metricsHost: '[fd00::1]:8000' })]);
  assert.deepEqual(s.endpoints().map((e) => e.hostPort), ['10.0.0.1:8000', '[fd00::1]:8000']);
  assert.deepEqual(s.removePod('nope'), []);
});

test('poolKnown listeners hear real transitions only', () => {
  const s = new Datastore();
  const heard: boolean[] = [];
  s.onPoolKnown((k) => heard.push(k));
  s.setPoolKnown(false);
  s.setPoolKnown(true);
  s.setPoolKnown(true);
  s.setPoolKnown(false);
  assert.deepEqual(heard, [true, false]);
  assert.equal(s.poolKnown(), false);
});
