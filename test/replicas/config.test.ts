/** Cross-replica sync configuration: llm-d's field names load; bad values fail at load naming the field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../support/config.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { RedisCrossReplicaSyncer } from '../../src/plugins/datalayer/syncer/redis-cross-replica-syncer/index.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { builtinRegistry } from '../support/registry.ts';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { PluginMetricSources } from '../../src/runtime/plugin-metrics.ts';

function load(dataLayer: string, params = 'url: redis://redis.inference.svc:6379') {
  const text = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: metrics-data-source
- type: core-metrics-extractor
- name: ha
  type: redis-cross-replica-syncer
  parameters:
    ${params.split('\n').join('\n    ')}
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
${dataLayer}
`;
  return loadConfig({ text, origin: 'replica.yaml' }, {
    registry: builtinRegistry(),
    handle: (lookup) => ({ logger: silentLogger(), clock: { now: () => 0 }, random: createRandomSource(1), plugin: lookup, endpoints: () => [], inflight: new InFlightTracker(), metrics: new PluginMetricSources() }),
  });
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected a config error');
}

test("llm-d's field names load: crossReplicaSyncerPluginRef/crossReplicaSyncInterval and crossReplica.{syncerPluginRef,syncInterval}", () => {
  const legacy = load('  crossReplicaSyncerPluginRef: ha\n  crossReplicaSyncInterval: 200ms');
  assert.ok(legacy.crossReplica?.syncer instanceof RedisCrossReplicaSyncer);
  assert.equal(legacy.crossReplica?.syncIntervalMs, 200);
  const newer = load('  crossReplica:\n    syncerPluginRef: ha');
  assert.equal(newer.crossReplica?.syncIntervalMs, 50, 'default cadence');
  assert.equal(load('').crossReplica, undefined, 'no reference, no sync');
});

test('bad values fail at load naming the field and the fix', () => {
  assert.match(errorOf(() => load('  crossReplicaSyncerPluginRef: ha\n  crossReplicaSyncInterval: fast')), /replica\.yaml: dataLayer\.crossReplicaSyncInterval: invalid duration/);
  assert.match(errorOf(() => load('  crossReplica:\n    syncerPluginRef: nope')), /dataLayer\.crossReplica\.syncerPluginRef: references undefined plugin 'nope'/);
  assert.match(errorOf(() => load('  crossReplicaSyncerPluginRef: queue-scorer')), /is not a cross-replica syncer/);
  assert.match(errorOf(() => load('  crossReplicaSyncerPluginRef: ha\n  crossReplica:\n    syncerPluginRef: other')), /conflicts with dataLayer\.crossReplicaSyncerPluginRef/);
  assert.match(errorOf(() => load('  crossReplicaSyncInterval: 50ms')), /dataLayer\.crossReplicaSyncInterval: is set but no cross-replica syncer is referenced/);
  assert.match(errorOf(() => load('  crossReplicaSyncerPluginRef: ha', 'url: http://redis:6379')), /parameters\.url: expected a redis:\/\/ or rediss:\/\/ URL/);
  assert.match(errorOf(() => load('  crossReplicaSyncerPluginRef: ha', 'sentinels: [{host: s1}]')), /parameters\.name: is required with sentinels/);
  assert.match(errorOf(() => load('  crossReplicaSyncerPluginRef: ha', 'url: redis://r:6379\npasswordEnv: EPP_TEST_SURELY_UNSET_VAR')), /parameters\.passwordEnv: environment variable EPP_TEST_SURELY_UNSET_VAR is not set/);
  assert.match(errorOf(() => load('  crossReplicaSyncerPluginRef: ha', 'url: redis://r:6379\nbatchMs: 0')), /parameters\.batchMs/);
});
