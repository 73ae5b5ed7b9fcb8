import { lenientFields } from '../support/plugin-fixtures.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { EndpointMetadata } from '../../src/framework/datalayer.ts';
import { EppConfigError } from '../../src/framework/errors.ts';
import { CoreMetricsExtractor, DEFAULT_ENGINE_LABEL_KEY } from '../../src/plugins/datalayer/extractor/core-metrics-extractor/index.ts';
import { MetricsDataSource, metricsDataSourceFactory } from '../../src/plugins/datalayer/source/metrics-data-source/index.ts';
import { FakeModelServer, testHandle } from './helpers.ts';

const VLLM = readFileSync(new URL('../fixtures/metrics/vllm.prom', import.meta.url), 'utf8');

function ep(hostPort: string, extra: Partial<EndpointMetadata> = {}): EndpointMetadata {
  return { name: 'e1', namespace: 'default', podName: 'p', address: '127.0.0.1', port: 1, metricsHost: hostPort, labels: {}, ...extra };
}

const poll = (src: MetricsDataSource, e: EndpointMetadata, timeoutMs = 1000) =>
  src.poll(e, { signal: new AbortController().signal, timeoutMs });

test('parameters: defaults, each accepted, rejections name the field', () => {
  const d = metricsDataSourceFactory('m', undefined, testHandle()) as MetricsDataSource;
  assert.deepEqual([d.scheme, d.path, d.insecureSkipVerify, d.typedName.type], ['http', '/metrics', true, 'metrics-data-source']);
  const c = metricsDataSourceFactory('m', { scheme: 'https', path: '/prom', insecureSkipVerify: false }, testHandle()) as MetricsDataSource;
  assert.deepEqual([c.scheme, c.path, c.insecureSkipVerify], ['https', '/prom', false]);
  for (const [bad, re] of [
    [{ scheme: 'ftp' }, /parameters\.scheme/],
    [{ path: 'metrics' }, /parameters\.path: must start with "\/"/],
    [{ insecureSkipVerify: 'yes' }, /parameters\.insecureSkipVerify/],
  ] as const) {
    assert.throws(() => metricsDataSourceFactory('m', bad, testHandle()), (e: unknown) => e instanceof EppConfigError && re.test(e.message));
  }
  // Unknown keys are ignored, as upstream, with a warning.
  assert.deepEqual(lenientFields(() => void (metricsDataSourceFactory('m', { port: 9000 }, testHandle()) as MetricsDataSource).close()), ['port']);
  void Promise.all([d.close(), c.close()]);
});

test('polls <scheme>://<metricsHost><path>, per-endpoint metricsPath overrides path', async (t) => {
  const server = new FakeModelServer({ kind: 'ok', body: VLLM });
  const hp = await server.start();
  const src = new MetricsDataSource('m', { scheme: 'http', path: '/metrics', insecureSkipVerify: true });
  t.after(async () => {
    await src.close();
    await server.stop();
  });
  const fams = await poll(src, ep(hp));
  assert.equal(fams.get('vllm:num_requests_waiting')?.samples[0]?.value, 3);
  await poll(src, ep(hp, { name: 'e2', metricsPath: '/custom/metrics' }));
  assert.deepEqual(server.paths, ['/metrics', '/custom/metrics']);
});

test('selective parse follows the endpoint engine; unchanged bodies skip the parse (opt-in)', async (t) => {
  const server = new FakeModelServer({ kind: 'ok', body: VLLM });
  const hp = await server.start();
  const src = new MetricsDataSource('m', { scheme: 'http', path: '/metrics', insecureSkipVerify: true, skipUnchangedBodies: true });
  t.after(async () => {
    await src.close();
    await server.stop();
  });
  src.bindExtractors([new CoreMetricsExtractor('x', { engineLabelKey: DEFAULT_ENGINE_LABEL_KEY, defaultEngine: 'vllm', engineConfigs: [] })]);
  const e = ep(hp);
  const first = await poll(src, e);
  assert.deepEqual([...first.keys()].sort(), ['vllm:cache_config_info', 'vllm:kv_cache_usage_perc', 'vllm:lora_requests_info', 'vllm:num_requests_running', 'vllm:num_requests_waiting']);
  const second = await poll(src, e);
  assert.equal(second, first, 'same body → same (cached) parse result');
  assert.deepEqual([src.stats.parses, src.stats.unchangedBodies], [1, 1]);
  server.behaviour = { kind: 'ok', body: VLLM.replace('vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0', 'vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 8.0') };
  const third = await poll(src, e);
  assert.equal(third.get('vllm:num_requests_waiting')?.samples[0]?.value, 8);
  // A label change to another engine swaps the metadata object → a different wanted set, even for the same bytes.
  const tgi = await poll(src, { ...e, labels: { [DEFAULT_ENGINE_LABEL_KEY]: 'tgi' } });
  assert.deepEqual([...tgi.keys()], []);
  src.endpointRemoved(e);
  await poll(src, e);
  assert.equal(src.stats.parses, 4);
});

test('default: every body is parsed, but unchanged wanted families are reused from the per-endpoint memo', async (t) => {
  const server = new FakeModelServer({ kind: 'ok', body: VLLM });
  const hp = await server.start();
  const src = new MetricsDataSource('m', { scheme: 'http', path: '/metrics', insecureSkipVerify: true });
  t.after(async () => {
    await src.close();
    await server.stop();
  });
  src.bindExtractors([new CoreMetricsExtractor('x', { engineLabelKey: DEFAULT_ENGINE_LABEL_KEY, defaultEngine: 'vllm', engineConfigs: [] })]);
  const e = ep(hp);
  const first = await poll(src, e);
  server.behaviour = { kind: 'ok', body: VLLM.replace(/^(vllm:num_requests_waiting\{[^}]*\}) 3\.0$/m, '$1 8.0') };
  const second = await poll(src, e);
  assert.notEqual(second, first);
  assert.equal(second.get('vllm:num_requests_waiting')?.samples[0]?.value, 8);
  assert.notEqual(second.get('vllm:num_requests_waiting'), first.get('vllm:num_requests_waiting'));
  for (const name of ['vllm:num_requests_running', 'vllm:kv_cache_usage_perc', 'vllm:lora_requests_info', 'vllm:cache_config_info']) {
    assert.equal(second.get(name), first.get(name), `${name} reused`);
  }
  assert.deepEqual([src.stats.parses, src.stats.unchangedBodies, src.stats.familiesParsed, src.stats.familiesReused], [2, 0, 6, 4]);
  // Removal forgets the endpoint: the next poll parses everything again.
  src.endpointRemoved(e);
  await poll(src, e);
  assert.equal(src.stats.familiesParsed, 11);
});

test('faults reject the poll: HTTP 500, garbage, connection refused, slow beyond the timeout, oversized body', async (t) => {
  const server = new FakeModelServer({ kind: 'status', status: 500 });
  const hp = await server.start();
  const src = new MetricsDataSource('m', { scheme: 'http', path: '/metrics', insecureSkipVerify: true, maxBodyBytes: 64 * 1024 });
  t.after(async () => {
    await src.close();
    await server.stop();
  });
  await assert.rejects(poll(src, ep(hp)), /GET http:\/\/127\.0\.0\.1:\d+\/metrics: HTTP 500/);
  server.behaviour = { kind: 'ok', body: '<html>oops</html>' };
  await assert.rejects(poll(src, ep(hp)), /expected a metric name/);
  server.behaviour = { kind: 'ok', body: 'x'.repeat(100 * 1024) };
  await assert.rejects(poll(src, ep(hp)), /body larger than 65536 bytes/);
  server.behaviour = { kind: 'hang' };
  await assert.rejects(poll(src, ep(hp), 50), /timed out after 50 ms \(ETIMEDOUT\)/);
  const ac = new AbortController();
  const p = src.poll(ep(hp), { signal: ac.signal, timeoutMs: 10_000 });
  ac.abort();
  await assert.rejects(p, /aborted/);
  await server.down();
  await assert.rejects(poll(src, ep(hp)), /ECONNREFUSED/);
  assert.equal(src.stats.failures, 6);
});
