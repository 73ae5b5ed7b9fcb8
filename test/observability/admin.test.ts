/**
 * The admin HTTP server on --metrics-port: /metrics, /healthz, /readyz, and the pool and prefix-indexer metrics
 * that only exist when a pool and a prefix producer are bound.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EMPTY_METRICS } from '../../src/framework/datalayer.ts';
import { Datastore, parseStaticEndpoints } from '../../src/datalayer/index.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy } from '../support/fake-envoy.ts';
import { fixedStore, POOL, startTestEpp } from '../support/epp.ts';
import { fullStreamedRequest, http, sampleValue } from './helpers.ts';

describe('admin server', () => {
  let epp: RunningEpp;
  let store: Datastore;
  before(async () => {
    store = new Datastore();
    store.replaceAll(parseStaticEndpoints(POOL, 'default'));
    epp = await startTestEpp({ store, metricsPort: 0, poolName: 'pool-a' });
  });
  after(() => epp.close());

  test('serves /healthz always and /readyz only once the pool is known', async () => {
    const port = epp.metricsPort as number;
    assert.equal((await http(port, '/healthz')).status, 200);
    const notReady = await http(port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /pool is not known/);
    store.setPoolKnown(true);
    const ready = await http(port, '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body, 'ok\n');
  });

  test('serves /metrics in the Prometheus text format; HEAD has no body; other paths 404, other methods 405', async () => {
    const port = epp.metricsPort as number;
    const m = await http(port, '/metrics');
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /^# HELP inference_extension_info /m);
    assert.match(m.body, /^inference_extension_info\{commit="[^"]*",build_ref="[^"]*"\} 1$/m);
    const head = await http(port, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await http(port, '/nope')).status, 404);
    const post = await http(port, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  test('pool gauges: averages and ready pods over fresh endpoints only; per-pod queue over all endpoints at scrape', async () => {
    const now = Date.now();
    const names = store.endpoints().map((e) => e.metadata.name);
    const fresh = (queue: number, running: number, kv: number) =>
      Object.freeze({ ...EMPTY_METRICS, waitingQueueSize: queue, runningRequestsSize: running, kvCacheUsagePercent: kv, updateTime: now });
    store.commitMetrics(names[0]!, fresh(4, 10, 0.5));
    store.commitMetrics(names[1]!, fresh(2, 6, 0.3));
    store.commitMetrics(names[2]!, Object.freeze({ ...EMPTY_METRICS, waitingQueueSize: 100, runningRequestsSize: 100, kvCacheUsagePercent: 1, updateTime: now - 60_000 }));
    epp.observability.refreshPoolGauges();
    const text = (await http(epp.metricsPort as number, '/metrics')).body;
    assert.equal(sampleValue(text, 'inference_pool_ready_pods{name="pool-a"}'), 2);
    assert.equal(sampleValue(text, 'inference_pool_average_queue_size{name="pool-a"}'), 3);
    assert.equal(sampleValue(text, 'inference_pool_average_running_requests{name="pool-a"}'), 8);
    assert.equal(sampleValue(text, 'inference_pool_average_kv_cache_utilization{name="pool-a"}'), 0.4);
    assert.equal(sampleValue(text, `inference_pool_per_pod_queue_size{name="pool-a",model_server_pod="${names[2]}"}`), 100);
    assert.equal(sampleValue(text, `inference_pool_per_pod_queue_size{name="pool-a",model_server_pod="${names[0]}"}`), 4);
  });

  test('with no fresh endpoint, ready pods drop to 0 and the averages keep their last values', async () => {
    const names = store.endpoints().map((e) => e.metadata.name);
    for (const n of names) store.commitMetrics(n, Object.freeze({ ...EMPTY_METRICS, waitingQueueSize: 9, updateTime: Date.now() - 60_000 }));
    epp.observability.refreshPoolGauges();
    const text = (await http(epp.metricsPort as number, '/metrics')).body;
    assert.equal(sampleValue(text, 'inference_pool_ready_pods{name="pool-a"}'), 0);
    assert.equal(sampleValue(text, 'inference_pool_average_queue_size{name="pool-a"}'), 3);
  });

  test('a removed endpoint disappears from the per-pod queue gauge', async () => {
    store.replaceAll(parseStaticEndpoints(POOL.slice(0, 1), 'default'));
    const text = (await http(epp.metricsPort as number, '/metrics')).body;
    const lines = text.split('\n').filter((l) => l.startsWith('inference_pool_per_pod_queue_size{'));
    assert.equal(lines.length, 1);
  });
});

describe('prefix indexer metrics', () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  before(async () => {
    epp = await startTestEpp({
      store: fixedStore(),
      metricsPort: 0,
      configText: `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [enableLegacyMetrics]
plugins:
- type: approx-prefix-cache-producer
- type: prefix-cache-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
  - pluginRef: max-score-picker
`,
    });
    envoy = new FakeEnvoy(epp.grpcPort);
  });
  after(async () => {
    envoy.close();
    await epp.close();
  });

  test('index size, hit ratio and hit bytes follow routed requests with a shared prompt', async () => {
    const prompt = 'You are a helpful assistant. '.repeat(40);
    await fullStreamedRequest(envoy.open(), prompt);
    await fullStreamedRequest(envoy.open(), prompt);
    const text = (await http(epp.metricsPort as number, '/metrics')).body;
    const size = sampleValue(text, 'inference_extension_prefix_indexer_size') ?? 0;
    assert.ok(size > 0, `indexer size ${size}`);
    assert.equal(sampleValue(text, 'inference_extension_prefix_indexer_hit_ratio_count'), 2);
    // First request: nothing cached (ratio 0); second: the whole prompt (ratio 1).
    assert.equal(sampleValue(text, 'inference_extension_prefix_indexer_hit_ratio_bucket{le="0"}'), 1);
    assert.equal(sampleValue(text, 'inference_extension_prefix_indexer_hit_ratio_bucket{le="0.9"}'), 1);
    assert.equal(sampleValue(text, 'inference_extension_prefix_indexer_hit_ratio_bucket{le="1"}'), 2);
    assert.ok((sampleValue(text, 'inference_extension_prefix_indexer_hit_bytes_sum') ?? 0) > 0);
  });
});
