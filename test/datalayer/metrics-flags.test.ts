/**
 * The deprecated `--model-server-metrics-scheme/-path/-https-insecure-skip-verify` flags become the defaults of
 * the `metrics-data-source` parameters (epp-spec §4.5): built-in < flag < parameter written in the config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProgram, metricsDataSourceDefaultsFromFlags } from '../../src/cli/main.ts';
import { EppConfigError } from '../../src/framework/errors.ts';
import {
  MetricsDataSource,
  metricsDataSourceFactoryWithDefaults,
} from '../../src/plugins/datalayer/source/metrics-data-source/index.ts';
import { configText, startTestEpp } from '../support/epp.ts';
import { testHandle } from './helpers.ts';

const params = (s: MetricsDataSource): unknown[] => [s.scheme, s.path, s.insecureSkipVerify];

test('factory with defaults: unset parameters take the defaults, written ones win, bad ones still fail', async () => {
  const f = metricsDataSourceFactoryWithDefaults({ scheme: 'https', path: '/prom', insecureSkipVerify: false });
  const made: MetricsDataSource[] = [];
  const make = (p: unknown): MetricsDataSource => {
    const s = f('m', p, testHandle()) as MetricsDataSource;
    made.push(s);
    return s;
  };
  assert.deepEqual(params(make(undefined)), ['https', '/prom', false]);
  assert.deepEqual(params(make(null)), ['https', '/prom', false]);
  assert.deepEqual(params(make({ path: '/metrics' })), ['https', '/metrics', false]);
  assert.deepEqual(params(make({ scheme: 'http', insecureSkipVerify: true })), ['http', '/prom', true]);
  assert.throws(() => make({ path: 'nope' }), (e: unknown) => e instanceof EppConfigError && /parameters\.path/.test(e.message));
  assert.throws(() => make('text'), EppConfigError);
  // Only given keys change anything.
  assert.deepEqual(params(metricsDataSourceFactoryWithDefaults({ path: '/x' })('m', undefined, testHandle()) as MetricsDataSource), ['http', '/x', true]);
  await Promise.all(made.map((s) => s.close()));
});

test('flags → defaults: only the flags that were set; a path must start with "/"', () => {
  assert.deepEqual(metricsDataSourceDefaultsFromFlags({}), {});
  assert.deepEqual(
    metricsDataSourceDefaultsFromFlags({ modelServerMetricsScheme: 'https', modelServerMetricsPath: '/m', modelServerMetricsHttpsInsecureSkipVerify: false }),
    { scheme: 'https', path: '/m', insecureSkipVerify: false },
  );
  assert.throws(() => metricsDataSourceDefaultsFromFlags({ modelServerMetricsPath: 'metrics' }), /--model-server-metrics-path: 'metrics' must start with "\/"/);
  const serve = buildProgram().commands.find((c) => c.name() === 'serve');
  const flags = serve?.options.map((o) => o.long) ?? [];
  for (const f of ['--model-server-metrics-scheme', '--model-server-metrics-path', '--model-server-metrics-https-insecure-skip-verify']) {
    assert.ok(flags.includes(f), f);
  }
  const scheme = serve?.options.find((o) => o.long === '--model-server-metrics-scheme');
  assert.deepEqual(scheme?.argChoices, ['http', 'https']);
});

test('startEpp: the defaults reach the configured and the default-added metrics-data-source', async () => {
  const defaults = { scheme: 'https', path: '/flag-path', insecureSkipVerify: false } as const;
  const sourceOf = (epp: Awaited<ReturnType<typeof startTestEpp>>): MetricsDataSource => {
    const s = epp.config.plugins.find((p) => p instanceof MetricsDataSource);
    assert.ok(s instanceof MetricsDataSource);
    return s;
  };
  // The config names no data layer: the default pair is added, with the flag defaults.
  const a = await startTestEpp({ metricsDataSourceDefaults: defaults });
  try {
    assert.deepEqual(params(sourceOf(a)), ['https', '/flag-path', false]);
  } finally {
    await a.close();
  }
  // A parameter written in the config wins over the flag.
  const b = await startTestEpp({
    metricsDataSourceDefaults: defaults,
    configText: `${configText('- type: metrics-data-source\n  parameters: { path: /from-config }\n- type: core-metrics-extractor\n')}dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors: [{ pluginRef: core-metrics-extractor }]
`,
  });
  try {
    assert.deepEqual(params(sourceOf(b)), ['https', '/from-config', false]);
  } finally {
    await b.close();
  }
  // No flags: upstream's built-in defaults.
  const c = await startTestEpp({ metricsDataSourceDefaults: {} });
  try {
    assert.deepEqual(params(sourceOf(c)), ['http', '/metrics', true]);
  } finally {
    await c.close();
  }
});
