/** The flowControl section and saturationDetector reference: defaults, parsing, and precise errors. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../support/config.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { parseQuantity } from '../../src/runtime/flowcontrol/config.ts';
import { DEFAULT_BAND_MAX_BYTES } from '../../src/runtime/flowcontrol/controller.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { builtinRegistry } from '../support/registry.ts';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { PluginMetricSources } from '../../src/runtime/plugin-metrics.ts';

const HEAD = 'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n';
const load = (body: string) =>
  loadConfig({ text: HEAD + body, origin: 'fc.yaml' }, {
    registry: builtinRegistry(),
    handle: (lookup) => ({ logger: silentLogger(), clock: { now: () => 0 }, random: createRandomSource(1), plugin: lookup, endpoints: () => [], inflight: new InFlightTracker(), metrics: new PluginMetricSources() }),
  });

test('defaults: utilization-detector and the three policies are added; no gate → no flow control', () => {
  const cfg = load('plugins:\n- type: random-picker\n');
  assert.equal(cfg.saturationDetector.typedName.type, 'utilization-detector');
  for (const t of ['fcfs-ordering-policy', 'global-strict-fairness-policy', 'static-usage-limit-policy']) assert.ok(cfg.plugins.some((p) => p.typedName.type === t), t);
  assert.equal(cfg.flowControl, undefined);
});

test('flowControl section: quantities, TTL, bands and policy references', () => {
  const cfg = load(`featureGates: [flowControl]
plugins:
- type: random-picker
- type: round-robin-fairness-policy
- type: edf-ordering-policy
- {name: limit, type: static-usage-limit-policy, parameters: {threshold: 0.8}}
- type: concurrency-detector
saturationDetector: {pluginRef: concurrency-detector}
flowControl:
  maxBytes: 1Gi
  maxRequests: "1k"
  defaultRequestTTL: 30s
  usageLimitPolicyPluginRef: limit
  defaultPriorityBand: {fairnessPolicyRef: round-robin-fairness-policy}
  priorityBands:
  - {priority: 10, maxRequests: 50, orderingPolicyRef: edf-ordering-policy}
`);
  const fc = cfg.flowControl!;
  assert.equal(cfg.saturationDetector.typedName.type, 'concurrency-detector');
  assert.equal(fc.maxBytes, 2 ** 30);
  assert.equal(fc.maxRequests, 1000);
  assert.equal(fc.defaultRequestTtlMs, 30_000);
  assert.equal(fc.usageLimit.ceiling(0), 0.8);
  assert.equal(fc.defaultBand.fairness.typedName.type, 'round-robin-fairness-policy');
  assert.equal(fc.defaultBand.maxBytes, DEFAULT_BAND_MAX_BYTES);
  const b = fc.bands[0]!;
  assert.deepEqual([b.priority, b.maxRequests, b.maxBytes, b.ordering.typedName.type, b.fairness.typedName.type], [10, 50, DEFAULT_BAND_MAX_BYTES, 'edf-ordering-policy', 'round-robin-fairness-policy']);
});

for (const [name, body, re] of [
  ['duplicate band', 'flowControl:\n  priorityBands: [{priority: 1}, {priority: 1}]\n', /fc\.yaml: flowControl\.priorityBands\[1\]\.priority: duplicate priority level 1/],
  ['negative TTL', 'flowControl:\n  defaultRequestTTL: -1s\n', /flowControl\.defaultRequestTTL: must not be negative/],
  ['negative quantity', 'flowControl:\n  maxRequests: -3\n', /flowControl\.maxRequests: must not be negative/],
  ['bad quantity', 'flowControl:\n  maxBytes: lots\n', /flowControl\.maxBytes: invalid quantity 'lots'/],
  ['unknown policy', 'flowControl:\n  priorityBands: [{priority: 1, orderingPolicyRef: lifo}]\n', /priorityBands\[0\]\.orderingPolicyRef: no ordering policy registered for name 'lifo'/],
  ['wrong kind', 'flowControl:\n  defaultPriorityBand: {fairnessPolicyRef: fcfs-ordering-policy}\n', /plugin 'fcfs-ordering-policy' is not a flowcontrol\.FairnessPolicy/],
] as const) {
  test(`flowControl error: ${name}`, () => assert.throws(() => load(`featureGates: [flowControl]\nplugins:\n- type: random-picker\n${body}`), re));
}

test('saturationDetector errors: undefined reference, not a detector', () => {
  assert.throws(() => load('plugins:\n- type: random-picker\nsaturationDetector: {pluginRef: nope}\n'), /saturationDetector\.pluginRef: saturation detector references undefined plugin 'nope'/);
  assert.throws(() => load('plugins:\n- type: random-picker\nsaturationDetector: {pluginRef: random-picker}\n'), /is not a fwkflowcontrol\.SaturationDetector/);
});

test('quantities', () => {
  assert.deepEqual(['100', '1.5Ki', '2M', '1e3', '500m'].map(parseQuantity), [100, 1536, 2_000_000, 1000, 1]);
});
