/**
 * Kubernetes discovery against the in-process fake API server (real list/watch wire format), through the
 * real @kubernetes/client-node ListWatch and a kubeconfig pointing at the fake. Waits are on store events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datastore } from '../../src/datalayer/datastore.ts';
import { KubernetesDiscovery, podEndpoints, poolSpecFrom } from '../../src/datalayer/discovery/kubernetes.ts';
import { EppConfigError } from '../../src/framework/errors.ts';
import { FakeKubeApiServer, INFERENCE_POOLS, makeInferencePool, makePod, PODS } from '../support/fake-kube-apiserver.ts';
import { RecordingLogger, waitFor } from './helpers.ts';
import type { V1Pod } from '@kubernetes/client-node';

const NS = 'inference';
const APP = { app: 'vllm-llama' };

interface Harness {
  api: FakeKubeApiServer;
  store: Datastore;
  logger: RecordingLogger;
  discovery: KubernetesDiscovery;
  /** Resolves when the store satisfies `pred` (checked on each membership or readiness change). */
  until(pred: (s: Datastore) => boolean, what: string): Promise<void>;
  names(): string[];
}

async function harness(t: { after(fn: () => Promise<void> | void): void }, opts: { pool?: boolean; selector?: string; ports?: number[]; metricsPortOverride?: number } = {}): Promise<Harness> {
  const api = new FakeKubeApiServer();
  await api.start();
  const store = new Datastore();
  const logger = new RecordingLogger();
  const discovery = new KubernetesDiscovery(
    {
      poolNamespace: NS,
      kubeconfig: api.writeKubeconfig(),
      initialBackoffMs: 10,
      maxBackoffMs: 50,
      ...(opts.pool === false ? { endpointSelector: opts.selector ?? 'app=vllm-llama', targetPorts: opts.ports ?? [8000] } : { poolName: 'llama' }),
      ...(opts.metricsPortOverride !== undefined ? { metricsPortOverride: opts.metricsPortOverride } : {}),
    },
    store,
    logger,
  );
  t.after(async () => {
    discovery.close();
    await api.stop();
  });
  const until = (pred: (s: Datastore) => boolean, what: string): Promise<void> =>
    waitFor(
      (cb) => {
        const a = store.subscribe(cb);
        const b = store.onPoolKnown(cb);
        return () => {
          a();
          b();
        };
      },
      () => pred(store),
      what,
    );
  return { api, store, logger, discovery, until, names: () => store.endpoints().map((e) => e.metadata.name).sort() };
}

test('InferencePool mode: ready pods × target ports become <pod>-rank-<i>; readiness follows the pool', async (t) => {
  const h = await harness(t);
  h.api.apply(PODS, makePod({ name: 'p1', namespace: NS, ip: '10.1.0.1', labels: { ...APP, 'inference.networking.k8s.io/engine-type': 'vllm' } }));
  h.api.apply(PODS, makePod({ name: 'p2', namespace: NS, ip: '10.1.0.2', labels: APP, ready: false }));
  h.api.apply(PODS, makePod({ name: 'other', namespace: NS, ip: '10.1.0.9', labels: { app: 'other' } }));
  h.api.apply(PODS, makePod({ name: 'elsewhere', namespace: 'default', ip: '10.1.0.8', labels: APP }));
  h.discovery.start();
  assert.equal(h.store.poolKnown(), false, 'not ready while the pool is unknown');

  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [8000, 8001] }));
  await h.until((s) => s.poolKnown(), 'pool known');
  assert.deepEqual(h.names(), ['p1-rank-0', 'p1-rank-1']);
  const ep = h.store.get('p1-rank-1');
  assert.deepEqual(
    [ep?.metadata.address, ep?.metadata.port, ep?.metadata.podName, ep?.metadata.namespace, ep?.metadata.metricsHost, ep?.hostPort],
    ['10.1.0.1', 8001, 'p1', NS, '10.1.0.1:8001', '10.1.0.1:8001'],
  );
  assert.equal(ep?.metadata.labels['inference.networking.k8s.io/engine-type'], 'vllm');

  // Pod becomes ready → added; pod loses readiness → removed; label no longer matches → removed.
  h.api.update(PODS, NS, 'p2', (p) => {
    (p.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: 'True' }];
  });
  await h.until((s) => s.get('p2-rank-0') !== undefined, 'p2 added when ready');
  h.api.update(PODS, NS, 'p1', (p) => {
    (p.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: 'False' }];
  });
  await h.until((s) => s.get('p1-rank-0') === undefined, 'p1 removed when not ready');
  h.api.update(PODS, NS, 'p2', (p) => {
    p.metadata.labels = { app: 'moved' };
  });
  await h.until((s) => s.size === 0, 'p2 removed when labels stop matching');

  // Terminating pod (deletion timestamp) and deleted pod are removed.
  h.api.apply(PODS, makePod({ name: 'p3', namespace: NS, ip: '10.1.0.3', labels: APP }));
  await h.until((s) => s.size === 2, 'p3 added');
  h.api.update(PODS, NS, 'p3', (p) => {
    p.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
  });
  await h.until((s) => s.size === 0, 'terminating pod removed');
  h.api.apply(PODS, makePod({ name: 'p4', namespace: NS, ip: '10.1.0.4', labels: APP }));
  await h.until((s) => s.size === 2, 'p4 added');
  h.api.delete(PODS, NS, 'p4');
  await h.until((s) => s.size === 0, 'deleted pod removed');
  assert.equal(h.store.poolKnown(), true);
});

test('active-ports annotation and target-port changes (port-only change recomputes, no pod relist)', async (t) => {
  const h = await harness(t);
  h.api.apply(PODS, makePod({ name: 'p1', namespace: NS, ip: '10.1.0.1', labels: APP, annotations: { 'inference.networking.k8s.io/active-ports': '8001, 9999' } }));
  h.api.apply(PODS, makePod({ name: 'p2', namespace: NS, ip: '10.1.0.2', labels: APP }));
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [8000, 8001] }));
  h.discovery.start();
  await h.until((s) => s.poolKnown(), 'pool known');
  assert.deepEqual(h.names(), ['p1-rank-1', 'p2-rank-0', 'p2-rank-1'], 'p1 only serves its active port, keeping rank 1');

  h.api.update(PODS, NS, 'p1', (p) => {
    p.metadata.annotations = { 'inference.networking.k8s.io/active-ports': '8000' };
  });
  await h.until((s) => s.get('p1-rank-0') !== undefined && s.get('p1-rank-1') === undefined, 'annotation change applied');

  const podLists = h.api.countRequests((r) => r.path.endsWith('/pods') && !r.watch);
  h.api.update(INFERENCE_POOLS, NS, 'llama', (p) => {
    (p.spec as { targetPorts: unknown }).targetPorts = [{ number: 8001 }, { number: 8002 }];
  });
  await h.until((s) => s.get('p2-rank-1')?.metadata.port === 8002, 'ports changed');
  assert.deepEqual(h.names(), ['p2-rank-0', 'p2-rank-1'], 'p1 active only on 8000, which is no longer a target port');
  assert.equal(h.store.get('p2-rank-0')?.metadata.port, 8001);
  assert.equal(h.api.countRequests((r) => r.path.endsWith('/pods') && !r.watch), podLists, 'no pod relist for a port-only change');
});

test('selector change → full resync with the new selector', async (t) => {
  const h = await harness(t);
  h.api.apply(PODS, makePod({ name: 'a1', namespace: NS, ip: '10.1.0.1', labels: APP }));
  h.api.apply(PODS, makePod({ name: 'b1', namespace: NS, ip: '10.1.0.2', labels: { app: 'vllm-mistral' } }));
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [8000] }));
  h.discovery.start();
  await h.until((s) => s.poolKnown() && s.size === 1, 'pool known');
  h.api.update(INFERENCE_POOLS, NS, 'llama', (p) => {
    (p.spec as { selector: unknown }).selector = { matchLabels: { app: 'vllm-mistral' } };
  });
  await h.until((s) => s.get('b1-rank-0') !== undefined && s.get('a1-rank-0') === undefined, 'resynced to the new selector');
  assert.equal(h.discovery.podSelector, 'app=vllm-mistral');
  const lastPodList = h.api.requests.filter((r) => r.path.endsWith('/pods') && !r.watch).at(-1);
  assert.equal(lastPodList?.query.labelSelector, 'app=vllm-mistral');
});

test('pool deleted → endpoints cleared and not ready; recreated → ready again', async (t) => {
  const h = await harness(t);
  h.api.apply(PODS, makePod({ name: 'p1', namespace: NS, ip: '10.1.0.1', labels: APP }));
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [8000] }));
  h.discovery.start();
  await h.until((s) => s.poolKnown() && s.size === 1, 'pool known');
  h.api.delete(INFERENCE_POOLS, NS, 'llama');
  await h.until((s) => !s.poolKnown() && s.size === 0, 'cleared');
  assert.equal(h.logger.count('warn', 'InferencePool gone'), 1);
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [8000] }));
  await h.until((s) => s.poolKnown() && s.size === 1, 'ready again');
});

test('another pool in the namespace is ignored (field selector on metadata.name)', async (t) => {
  const h = await harness(t);
  h.api.apply(PODS, makePod({ name: 'p1', namespace: NS, ip: '10.1.0.1', labels: APP }));
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'not-ours', namespace: NS, selector: APP, ports: [8000] }));
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [9000] }));
  h.discovery.start();
  await h.until((s) => s.poolKnown(), 'pool known');
  assert.deepEqual(h.store.endpoints().map((e) => e.metadata.port), [9000]);
  h.api.delete(INFERENCE_POOLS, NS, 'not-ours');
  h.api.apply(PODS, makePod({ name: 'p2', namespace: NS, ip: '10.1.0.2', labels: APP }));
  await h.until((s) => s.size === 2, 'still serving');
  assert.equal(h.store.poolKnown(), true);
});

test('410 Gone → relist: changes made while the watch was down are reconciled, including deletions', async (t) => {
  const h = await harness(t);
  h.api.apply(PODS, makePod({ name: 'p1', namespace: NS, ip: '10.1.0.1', labels: APP }));
  h.api.apply(PODS, makePod({ name: 'p2', namespace: NS, ip: '10.1.0.2', labels: APP }));
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [8000] }));
  h.discovery.start();
  await h.until((s) => s.poolKnown() && s.size === 2, 'pool known');
  const lists = h.api.countRequests((r) => r.path.endsWith('/pods') && !r.watch);

  // Simulate: the watch drops, the API server compacts past our resourceVersion, and the pods change.
  h.api.failWith = 503;
  h.api.closeWatches();
  h.api.delete(PODS, NS, 'p1');
  h.api.apply(PODS, makePod({ name: 'p3', namespace: NS, ip: '10.1.0.3', labels: APP }));
  h.api.compact();
  await waitFor((cb) => {
    const i = setInterval(cb, 5);
    return () => clearInterval(i);
  }, () => h.logger.count('warn', 'kubernetes list/watch failed') >= 1, 'watch failure observed');
  assert.deepEqual(h.names(), ['p1-rank-0', 'p2-rank-0'], 'last known endpoints kept while the API server is down');
  h.api.failWith = undefined;

  await h.until((s) => s.get('p3-rank-0') !== undefined && s.get('p1-rank-0') === undefined, 'relisted');
  assert.deepEqual(h.names(), ['p2-rank-0', 'p3-rank-0']);
  assert.ok(h.api.countRequests((r) => r.path.endsWith('/pods') && !r.watch) > lists, 'a relist happened');
  // The relisted pods reach the store before the new watch connects, and "recovered" is logged on connect.
  await waitFor((cb) => {
    const i = setInterval(cb, 5);
    return () => clearInterval(i);
  }, () => h.logger.count('info', 'kubernetes list/watch recovered') >= 1, 'recovery logged');
  assert.ok(h.logger.count('info', 'kubernetes list/watch recovered') >= 1);
  assert.equal(h.store.poolKnown(), true);
});

test('watch timeout (stream ends normally) → re-watch from the last resourceVersion, no relist', async (t) => {
  const h = await harness(t);
  h.api.apply(PODS, makePod({ name: 'p1', namespace: NS, ip: '10.1.0.1', labels: APP }));
  h.api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'llama', namespace: NS, selector: APP, ports: [8000] }));
  h.discovery.start();
  await h.until((s) => s.poolKnown() && s.size === 1, 'pool known');
  const lists = h.api.countRequests((r) => !r.watch);
  h.api.closeWatches();
  h.api.apply(PODS, makePod({ name: 'p2', namespace: NS, ip: '10.1.0.2', labels: APP }));
  await h.until((s) => s.size === 2, 'event after re-watch delivered');
  assert.equal(h.api.countRequests((r) => !r.watch), lists, 'no relist');
  const rewatch = h.api.requests.filter((r) => r.watch && r.path.endsWith('/pods')).at(-1);
  assert.ok(Number(rewatch?.query.resourceVersion) > 0);
});

test('standalone mode: selector + target ports from flags, metrics port override with one port', async (t) => {
  const h = await harness(t, { pool: false, selector: 'app=vllm-llama', ports: [8000], metricsPortOverride: 9090 });
  h.api.apply(PODS, makePod({ name: 'p1', namespace: NS, ip: 'fd00::1', labels: { ...APP, extra: 'x' } }));
  h.discovery.start();
  await h.until((s) => s.poolKnown() && s.size === 1, 'ready');
  const ep = h.store.get('p1-rank-0');
  assert.deepEqual([ep?.hostPort, ep?.metadata.metricsHost], ['[fd00::1]:8000', '[fd00::1]:9090']);
  assert.equal(h.api.countRequests((r) => r.path.includes('inferencepools')), 0, 'no InferencePool access in standalone mode');
});

test('option validation', () => {
  const store = new Datastore();
  const logger = new RecordingLogger();
  const mk = (o: Record<string, unknown>) => new KubernetesDiscovery({ poolNamespace: 'ns', kubeconfig: '/dev/null', ...o }, store, logger);
  assert.throws(() => mk({}), /either pool-name or endpoint-selector must be set/);
  assert.throws(() => mk({ poolName: 'a', endpointSelector: 'a=b' }), /either pool-name or endpoint-selector/);
  assert.throws(() => mk({ endpointSelector: 'a=b', targetPorts: [] }), /0 ports given, 1-8 allowed/);
  assert.throws(() => mk({ endpointSelector: 'a=b', targetPorts: [1, 2, 3, 4, 5, 6, 7, 8, 9] }), /9 ports given/);
  assert.throws(() => mk({ endpointSelector: 'a=b', targetPorts: [70000] }), /70000 is not a port/);
  assert.throws(() => mk({ endpointSelector: 'a b', targetPorts: [1] }), (e: unknown) => e instanceof EppConfigError && /not key=value/.test(e.message));
  assert.throws(() => mk({ poolName: 'a', poolGroup: 'example.com' }), /not supported/);
});

test('pool and pod conversion helpers', () => {
  assert.deepEqual(poolSpecFrom({ spec: { selector: { matchLabels: { a: 'b' } }, targetPorts: [{ number: 1 }, { number: 1 }, { number: 2 }] } } as never, 'inference.networking.k8s.io'), {
    selector: { a: 'b' },
    targetPorts: [1, 2],
  });
  assert.deepEqual(poolSpecFrom({ spec: { selector: { a: 'b' }, targetPortNumber: 8000 } } as never, 'inference.networking.x-k8s.io').targetPorts, [8000]);
  assert.throws(() => poolSpecFrom({ spec: { targetPorts: [{ number: 1 }] } } as never, 'inference.networking.k8s.io'), /selector is empty/);
  const noIp = makePod({ name: 'x', labels: APP }) as unknown as V1Pod;
  assert.deepEqual(podEndpoints(noIp, { selector: APP, targetPorts: [1] }), [], 'a pod without an IP is not routable');
});
