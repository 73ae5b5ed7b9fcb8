import { lenientFields } from '../support/plugin-fixtures.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { EMPTY_METRICS, type EndpointMetadata } from '../../src/framework/datalayer.ts';
import type { MetricsDraft } from '../../src/framework/datasource.ts';
import { EppConfigError } from '../../src/framework/errors.ts';
import {
  coreMetricsExtractorFactory,
  CoreMetricsExtractor,
  DEFAULT_ENGINE_LABEL_KEY,
} from '../../src/plugins/datalayer/extractor/core-metrics-extractor/index.ts';
import { parseMetricSpec } from '../../src/plugins/datalayer/extractor/core-metrics-extractor/metric-spec.ts';
import { parsePrometheusText, parseSelectedFamilies } from '../../src/plugins/datalayer/source/metrics-data-source/prometheus-text.ts';
import { RecordingLogger, testHandle } from './helpers.ts';

const FIXTURES = new URL('../fixtures/metrics/', import.meta.url);

function endpoint(labels: Record<string, string> = {}): EndpointMetadata {
  return { name: 'pod-a-rank-0', namespace: 'default', podName: 'pod-a', address: '10.0.0.1', port: 8000, metricsHost: '10.0.0.1:8000', labels };
}

function draft(): MetricsDraft {
  const { updateTime: _u, ...rest } = EMPTY_METRICS;
  return { ...rest };
}

function build(parameters?: unknown): CoreMetricsExtractor {
  return coreMetricsExtractorFactory('x', parameters, testHandle()) as CoreMetricsExtractor;
}

interface Expected {
  waitingQueueSize: number;
  runningRequestsSize: number;
  kvCacheUsagePercent: number;
  cacheBlockSize: number;
  cacheNumBlocks: number;
  active?: string[];
  waiting?: string[];
  maxActiveModels?: number;
}

const GOLDEN: Record<string, Expected> = {
  vllm: { waitingQueueSize: 3, runningRequestsSize: 7, kvCacheUsagePercent: 0.4213, cacheBlockSize: 16, cacheNumBlocks: 27895, active: ['sql-lora', 'tweet-summary'], waiting: ['sql-lora-v2'], maxActiveModels: 4 },
  sglang: { waitingQueueSize: 5, runningRequestsSize: 12, kvCacheUsagePercent: 0.37, cacheBlockSize: 1, cacheNumBlocks: 130336 },
  'trtllm-serve': { waitingQueueSize: 2, runningRequestsSize: 9, kvCacheUsagePercent: 0.5625, cacheBlockSize: 32, cacheNumBlocks: 8192 },
  'triton-tensorrt-llm': { waitingQueueSize: 4, runningRequestsSize: 6, kvCacheUsagePercent: 0.4375, cacheBlockSize: 64, cacheNumBlocks: 256 },
  tgi: { waitingQueueSize: 4, runningRequestsSize: 9, kvCacheUsagePercent: 0, cacheBlockSize: 0, cacheNumBlocks: 0 },
};

for (const [engine, want] of Object.entries(GOLDEN)) {
  test(`golden: ${engine} exposition lands in endpoint metrics (engine chosen by label)`, () => {
    const x = build();
    const ep = endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: engine });
    const text = readFileSync(new URL(`${engine}.prom`, FIXTURES), 'utf8');
    for (const families of [parsePrometheusText(text), parseSelectedFamilies(text, x.inputKeysFor(ep))]) {
      const d = draft();
      const out = x.extract(families, d, ep);
      assert.deepEqual(out.errors.map((e) => e.message), []);
      assert.equal(out.updated, true);
      assert.equal(d.waitingQueueSize, want.waitingQueueSize);
      assert.equal(d.runningRequestsSize, want.runningRequestsSize);
      assert.equal(d.kvCacheUsagePercent, want.kvCacheUsagePercent);
      assert.equal(d.cacheBlockSize, want.cacheBlockSize);
      assert.equal(d.cacheNumBlocks, want.cacheNumBlocks);
      assert.deepEqual([...d.activeModels.keys()], want.active ?? []);
      assert.deepEqual([...d.waitingModels.keys()], want.waiting ?? []);
      assert.equal(d.maxActiveModels, want.maxActiveModels ?? 0);
    }
  });
}

test('no label, empty label and unknown engine use defaultEngine (unknown warned once)', () => {
  const logger = new RecordingLogger();
  const x = coreMetricsExtractorFactory('x', { defaultEngine: 'sglang' }, testHandle(logger)) as CoreMetricsExtractor;
  assert.equal(x.mappingFor(endpoint()).engine, 'sglang');
  assert.equal(x.mappingFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: '' })).engine, 'sglang');
  assert.equal(x.mappingFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: 'mystery' })).engine, 'sglang');
  assert.equal(x.mappingFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: 'mystery' })).engine, 'sglang');
  assert.equal(logger.count('warn', 'unknown engine type'), 1);
  assert.equal(x.mappingFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: 'vllm' })).engine, 'vllm');
});

test('parameters: defaults from {} / undefined', () => {
  for (const p of [undefined, null, {}]) {
    const x = build(p);
    assert.equal(x.engineLabelKey, DEFAULT_ENGINE_LABEL_KEY);
    assert.equal(x.mappingFor(endpoint()).engine, 'vllm');
    assert.equal(x.typedName.type, 'core-metrics-extractor');
    assert.equal(x.typedName.name, 'x');
  }
});

test('parameters: engineLabelKey selects the label', () => {
  const x = build({ engineLabelKey: 'llm-d.ai/engine' });
  assert.equal(x.mappingFor(endpoint({ 'llm-d.ai/engine': 'tgi' })).engine, 'tgi');
  assert.equal(x.mappingFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: 'tgi' })).engine, 'vllm');
});

test('parameters: a user engine fully replaces the built-in of the same name; others are kept', () => {
  const x = build({ engineConfigs: [{ name: 'vllm', queuedRequestsSpec: 'my_queue', runningRequestsSpec: 'my_running{role="decode"}' }] });
  const m = x.mappingFor(endpoint());
  assert.equal(m.queued?.name, 'my_queue');
  assert.deepEqual(m.running?.labels, { role: 'decode' });
  assert.equal(m.kvUsage, undefined, 'built-in kvUsageSpec must not leak into the replacement');
  assert.equal(m.lora, undefined);
  assert.equal(x.mappingFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: 'sglang' })).queued?.name, 'sglang:num_queue_reqs');
  const d = draft();
  const out = x.extract(parsePrometheusText('my_queue 5\nmy_running{role="prefill"} 1\nmy_running{role="decode"} 2\n'), d, endpoint());
  assert.deepEqual([d.waitingQueueSize, d.runningRequestsSize, out.errors.length], [5, 2, 0]);
});

test('parameters: a new engine can be added and made the default', () => {
  const x = build({ defaultEngine: 'mine', engineConfigs: [{ name: 'mine', queuedRequestsSpec: 'q', kvUsageSpec: 'kv' }] });
  const d = draft();
  x.extract(parsePrometheusText('q 3\nkv 0.5\n'), d, endpoint());
  assert.deepEqual([d.waitingQueueSize, d.kvCacheUsagePercent], [3, 0.5]);
});

const REJECT: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ['wrong type', { defaultEngine: 3 }, /parameters\.defaultEngine/],
  ['defaultEngine not configured', { defaultEngine: 'nope' }, /defaultEngine "nope" not found in engineConfigs/],
  ['empty engine name', { engineConfigs: [{ name: '' }] }, /engine config name cannot be empty/],
  ['reserved engine name', { engineConfigs: [{ name: 'default' }] }, /cannot be "default" \(reserved\)/],
  ['duplicate engine', { engineConfigs: [{ name: 'a' }, { name: 'a' }] }, /"a" is defined twice/],
  ['bad spec', { engineConfigs: [{ name: 'a', kvUsageSpec: 'kv{a=' }] }, /engine "a": kvUsageSpec: .*closing/],
  ['both cache styles', { engineConfigs: [{ name: 'a', cacheInfoSpec: 'i', cacheBlockSizeSpec: 'b' }] }, /either cacheInfoSpec or/],
];
test('parameters: unknown keys are ignored, as upstream, with a warning naming each (nested ones too)', () => {
  assert.deepEqual(lenientFields(() => build({ engineLabelKeys: 'x' })), ['engineLabelKeys']);
  assert.deepEqual(lenientFields(() => build({ engineConfigs: [{ name: 'e', queueSpec: 'q' }] })), ['engineConfigs.0.queueSpec']);
});

for (const [what, params, re] of REJECT) {
  test(`parameters rejected: ${what}`, () => {
    assert.throws(() => build(params), (e: unknown) => {
      assert.ok(e instanceof EppConfigError, String(e));
      assert.match(e.message, /plugin 'x' \(type: core-metrics-extractor\)/);
      assert.match(e.message, re);
      return true;
    });
  });
}

test('series selection: latest timestamp wins; spec labels must all match; first wins ties', () => {
  const x = build({ engineConfigs: [{ name: 'e', queuedRequestsSpec: 'q{a=1}', runningRequestsSpec: 'r' }], defaultEngine: 'e' });
  const d = draft();
  const out = x.extract(parsePrometheusText('q{a="1",b="x"} 5 1000\nq{a="1"} 7 3000\nq{a="2"} 9 9000\nr 1\nr 2\n'), d, endpoint());
  assert.equal(out.errors.length, 0);
  assert.equal(d.waitingQueueSize, 7);
  assert.equal(d.runningRequestsSize, 1);
});

test('missing family and unmatched series are errors; other fields still update', () => {
  const x = build();
  const d = draft();
  const out = x.extract(parsePrometheusText('vllm:num_requests_waiting 2\nvllm:num_requests_running{x="1"} 4\n'), d, endpoint());
  assert.equal(out.updated, true);
  assert.deepEqual([d.waitingQueueSize, d.runningRequestsSize], [2, 4]);
  const msgs = out.errors.map((e) => e.message);
  assert.ok(msgs.includes('metric family "vllm:kv_cache_usage_perc" not found'), msgs.join('|'));
  assert.ok(msgs.includes('metric family "vllm:lora_requests_info" not found'));
  // Errors for absent families are preallocated per spec: identical objects each scrape (no allocation).
  const again = x.extract(parsePrometheusText('vllm:num_requests_waiting 2\n'), draft(), endpoint());
  assert.ok(again.errors.some((e) => out.errors.includes(e)));
});

test('nothing matched → updated=false (the collector then leaves the endpoint stale)', () => {
  const out = build().extract(parsePrometheusText('unrelated 1\n'), draft(), endpoint());
  assert.equal(out.updated, false);
  assert.equal(out.errors.length, 5);
});

test('LoRA: the series with the largest value wins; maps are replaced, never mutated', () => {
  const x = build();
  const d = draft();
  const before = d.activeModels;
  const text = [
    '# TYPE vllm:lora_requests_info gauge',
    'vllm:lora_requests_info{max_lora="2",running_lora_adapters="old",waiting_lora_adapters=""} 100',
    'vllm:lora_requests_info{max_lora="3",running_lora_adapters="a, b,,",waiting_lora_adapters="c"} 200',
  ].join('\n');
  x.extract(parsePrometheusText(text), d, endpoint());
  assert.deepEqual([...d.activeModels.entries()], [['a', 0], ['b', 0]]);
  assert.deepEqual([...d.waitingModels.keys()], ['c']);
  assert.equal(d.maxActiveModels, 3);
  assert.notEqual(d.activeModels, before);
  assert.equal(before.size, 0);
});

test('bad integers are reported; NaN/Inf values are refused', () => {
  const x = build({ engineConfigs: [{ name: 'e', queuedRequestsSpec: 'q', kvUsageSpec: 'kv', cacheInfoSpec: 'ci' }], defaultEngine: 'e' });
  const d = draft();
  d.cacheBlockSize = 99;
  const out = x.extract(parsePrometheusText('q +Inf\nkv NaN\nci{block_size="16x",num_gpu_blocks="10"} 1\n'), d, endpoint());
  const msgs = out.errors.map((e) => e.message).join('|');
  assert.match(msgs, /"q" has non-finite value/);
  assert.match(msgs, /"kv" is NaN/);
  assert.match(msgs, /block_size="16x"/);
  assert.equal(d.waitingQueueSize, 0);
  assert.equal(d.cacheBlockSize, 0, 'block size is reset when the info metric is present but unusable');
  assert.equal(d.cacheNumBlocks, 10);
});

test('inputKeysFor: only the endpoint engine families', () => {
  const x = build();
  assert.deepEqual([...x.inputKeysFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: 'tgi' }))].sort(), ['tgi_batch_current_size', 'tgi_queue_size']);
  assert.deepEqual([...x.inputKeysFor(endpoint({ [DEFAULT_ENGINE_LABEL_KEY]: 'triton-tensorrt-llm' }))].sort(), [
    'nv_trt_llm_kv_cache_block_metrics',
    'nv_trt_llm_request_metrics',
  ]);
});

test('metric specs: upstream syntax', () => {
  assert.equal(parseMetricSpec(''), undefined);
  assert.equal(parseMetricSpec('   '), undefined);
  assert.deepEqual(parseMetricSpec('vllm:x')?.labels, {});
  assert.deepEqual(parseMetricSpec('m{a=b, c="d,e", f!="g", __name__="m", h=~"i.*"}')?.labels, { a: 'b', c: 'd,e' });
  assert.equal(parseMetricSpec(' m { a = "1" } ')?.name, 'm');
  for (const bad of ['1abc', 'm{', 'm{a}', 'm{a="x}', 'm{a=b c}', 'm{9a=1}']) assert.throws(() => parseMetricSpec(bad), Error, bad);
});
