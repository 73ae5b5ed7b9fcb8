/** Upstream's example EndpointPickerConfig files load unchanged; broken configs fail with precise errors. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from './support/config.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { createRandomSource } from '../src/util/random.ts';
import { builtinRegistry } from './support/registry.ts';
import { InFlightTracker } from '../src/runtime/inflight.ts';
import { PluginMetricSources } from '../src/runtime/plugin-metrics.ts';

const FIXTURES = new URL('fixtures/upstream-configs/', import.meta.url);

function load(text: string, origin = 'test.yaml') {
  return loadConfig({ text, origin }, {
    registry: builtinRegistry(),
    handle: (lookup) => ({ logger: silentLogger(), clock: { now: () => 0 }, random: createRandomSource(1), plugin: lookup, endpoints: () => [], inflight: new InFlightTracker(), metrics: new PluginMetricSources() }),
  });
}

test('odd values upstream accepts load as upstream loads them, with one warning naming each field', () => {
  const cfg = load(readFileSync(new URL('lenient-values.yaml', FIXTURES), 'utf8'), 'lenient-values.yaml');
  const picker = cfg.profiles[0]!.picker as unknown as { maxNumOfEndpoints: number };
  assert.equal(picker.maxNumOfEndpoints, 1);
  const producer = cfg.plugins.find((p) => p.typedName.type === 'approx-prefix-cache-producer') as unknown as { config: { blockSizeTokens: number; lruCapacityPerServer: number } };
  assert.deepEqual([producer.config.blockSizeTokens, producer.config.lruCapacityPerServer], [16, 31_250]);
  const scorer = cfg.plugins.find((p) => p.typedName.type === 'token-load-scorer') as unknown as { queueThresholdTokens: number };
  assert.equal(scorer.queueThresholdTokens, 4_194_304);
  assert.deepEqual(
    cfg.warnings.map((w) => w.replace(/^(lenient-values\.yaml: \S+): .*?(is not positive|unknown field).*$/, '$1: $2')),
    [
      'lenient-values.yaml: plugins[0].parameters.maxNumOfEndpoints: is not positive',
      'lenient-values.yaml: plugins[1].parameters.legacyKnob: unknown field',
      'lenient-values.yaml: plugins[2].parameters.queueThresholdTokens: is not positive',
      'lenient-values.yaml: plugins[3].parameters.blockSizeTokens: is not positive',
      'lenient-values.yaml: plugins[3].parameters.lruCapacityPerServer: is not positive',
    ],
  );
});

for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml'))) {
  test(`upstream config ${file} loads unchanged`, () => {
    const cfg = load(readFileSync(new URL(file, FIXTURES), 'utf8'), file);
    assert.equal(cfg.profiles.length, 1);
    assert.equal(cfg.parser.typedName.type, file === 'all-plugin-types.yaml' ? 'passthrough-parser' : 'openai-parser');
    assert.ok(cfg.profiles[0]!.picker);
  });
}

test('the built-in default has upstream weights and auto-adds the prefix producer', () => {
  const cfg = load(readFileSync(new URL('built-in-default.yaml', FIXTURES), 'utf8'));
  assert.deepEqual(cfg.profiles[0]!.scorers.map((s) => [s.scorer.typedName.type, s.weight]), [
    ['queue-scorer', 2],
    ['kv-cache-utilization-scorer', 2],
    ['prefix-cache-scorer', 3],
  ]);
  assert.equal(cfg.profiles[0]!.picker.typedName.type, 'max-score-picker');
  assert.ok(cfg.plugins.some((p) => p.typedName.type === 'approx-prefix-cache-producer'));
});

const HEAD = 'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n';
for (const [name, body, pattern] of [
  ['unknown field', 'plugins:\n- type: queue-scorer\n  paramters: {}\n', /test\.yaml: plugins\[0\]: unknown field 'paramters'.*fix: remove the field/],
  ['unknown plugin type', 'plugins:\n- type: queue-scorr\n', /plugins\[0\]\.type: plugin type 'queue-scorr' is not registered.*fix: use one of: .*queue-scorer/],
  ['undefined reference', 'plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: nope\n', /schedulingProfiles\[default\]\.plugins\[0\]\.pluginRef: references undefined plugin 'nope'/],
  ['duplicate name', 'plugins:\n- type: queue-scorer\n- type: queue-scorer\n', /duplicate plugin name 'queue-scorer'/],
  ['bad parameter', 'plugins:\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: two}\n', /max-score-picker.*maxNumOfEndpoints/],
  ['value upstream rejects', 'plugins:\n- type: approx-prefix-cache-producer\n  parameters: {autoTune: false, blockSizeTokens: 0}\n', /approx-prefix-cache-producer.*blockSizeTokens/],
  ['unknown gate', 'featureGates: [warpDrive]\n', /featureGates\[0\]: feature gate 'warpDrive' is unknown/],
  ['bad yaml', 'plugins: [\n', /failed to decode configuration JSON\/YAML/],
] as const) {
  test(`a broken config fails with a precise error: ${name}`, () => {
    assert.throws(() => load(HEAD + body), pattern);
  });
}
