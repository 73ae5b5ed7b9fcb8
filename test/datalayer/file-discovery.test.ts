import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Datastore } from '../../src/datalayer/datastore.ts';
import { EndpointsFileDiscovery, parseEndpointsFile, type FileReloadResult } from '../../src/datalayer/discovery/file.ts';
import { startDataLayer } from '../../src/datalayer/index.ts';
import { ManualTicker } from '../support/doubles.ts';
import { EppConfigError } from '../../src/framework/errors.ts';
import { coreMetricsExtractorFactory } from '../../src/plugins/datalayer/extractor/core-metrics-extractor/index.ts';
import { metricsDataSourceFactory } from '../../src/plugins/datalayer/source/metrics-data-source/index.ts';
import { RecordingLogger, ManualClock, testHandle, waitFor } from './helpers.ts';
import { replaceAtomically } from '../support/files.ts';

const GOOD = `endpoints:
  - address: 10.0.0.1
    port: 8000
    labels: { inference.networking.k8s.io/engine-type: sglang }
  - address: 10.0.0.2
    port: 8000
    metricsPort: 9100
    metricsPath: /prom
    name: node2-gpu0
`;

function tmpFile(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'epp-endpoints-'));
  const path = join(dir, 'endpoints.yaml');
  writeFileSync(path, content);
  return path;
}

/**
 * The next reload outcome, awaited as an event. (The watcher is unref'd, so the safety timer is also what
 * keeps the test's event loop alive while waiting.)
 */
function nextReload(d: EndpointsFileDiscovery): Promise<FileReloadResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reload within 5 s')), 5000);
    const off = d.onReload((r) => {
      if (r.outcome === 'unchanged') return;
      off();
      clearTimeout(timer);
      resolve(r);
    });
  });
}

test('parses YAML and JSON; defaults name/podName/metricsHost; rejects bad content with a path', () => {
  const eps = parseEndpointsFile(GOOD, 'ns');
  assert.deepEqual(eps[0], {
    name: '10.0.0.1:8000',
    namespace: 'ns',
    podName: '10.0.0.1',
    address: '10.0.0.1',
    port: 8000,
    metricsHost: '10.0.0.1:8000',
    labels: { 'inference.networking.k8s.io/engine-type': 'sglang' },
  });
  assert.equal(eps[1]?.metricsHost, '10.0.0.2:9100');
  assert.equal(eps[1]?.metricsPath, '/prom');
  assert.equal(eps[1]?.name, 'node2-gpu0');
  const json = parseEndpointsFile(JSON.stringify({ endpoints: [{ address: 'fd00::1', port: 80 }] }), 'ns');
  assert.equal(json[0]?.metricsHost, '[fd00::1]:80');
  for (const [bad, re] of [
    ['endpoints: [{address: a, port: 0}]', /endpoints\.0\.port/],
    ['endpoints: [{address: a, port: 1, extra: 2}]', /Unrecognized key.*extra/],
    ['endpoints: [{address: a, port: 1}, {address: a, port: 1}]', /duplicate endpoint name 'a:1'/],
    ['endpoints: [{address: a, port: 1, metricsPath: x}]', /metricsPath: must start with "\/"/],
    ['endpoints: {', /not valid YAML/],
    ['- a: 1', /\(root\)/],
  ] as const) {
    assert.throws(() => parseEndpointsFile(bad, 'ns'), re, bad);
  }
});

test('edits apply without restart; invalid edits are rejected with one error and the last good pool kept', async (t) => {
  const path = tmpFile(GOOD);
  const store = new Datastore();
  const logger = new RecordingLogger();
  const d = new EndpointsFileDiscovery({ path, namespace: 'ns', store, logger, statPollIntervalMs: 0, debounceMs: 5 });
  t.after(() => d.close());
  await d.start();
  assert.equal(store.poolKnown(), true);
  assert.deepEqual(store.endpoints().map((e) => e.metadata.name), ['10.0.0.1:8000', 'node2-gpu0']);

  // In-place write, picked up by the watcher. (A reader can catch the file truncated but not yet written;
  // that read is rejected and the complete content applies right after, so wait for the final pool.)
  writeFileSync(path, 'endpoints:\n  - {address: 10.0.0.3, port: 8000}\n');
  await waitFor((cb) => store.subscribe(cb), () => store.endpoints().map((e) => e.metadata.name).join() === '10.0.0.3:8000', 'in-place edit applied');

  // Invalid edit (atomic, so exactly one new content): rejected, logged once even if asked to reload again.
  const errorsBefore = logger.count('error', 'endpoints file rejected');
  let r = nextReload(d);
  replaceAtomically(path, 'endpoints:\n  - {address: 10.0.0.4, port: seventy}\n');
  const rejected = await r;
  assert.equal(rejected.outcome, 'rejected');
  assert.match((rejected as { error: string }).error, /endpoints\.0\.port/);
  assert.equal((await d.reload()).outcome, 'unchanged');
  assert.equal(logger.count('error', 'endpoints file rejected'), errorsBefore + 1);
  assert.deepEqual(store.endpoints().map((e) => e.metadata.name), ['10.0.0.3:8000'], 'last good pool kept');
  assert.equal(store.poolKnown(), true);

  // Atomic replace (write temp + rename), as editors and config management do.
  r = nextReload(d);
  replaceAtomically(path, GOOD);
  assert.equal((await r).outcome, 'applied');
  assert.equal(store.endpoints().length, 2);

  // Deleted file: rejected, pool kept.
  r = nextReload(d);
  rmSync(path);
  assert.match(String((await r as { error?: string }).error), /cannot read file \(ENOENT\)/);
  assert.equal(store.endpoints().length, 2);
});

test('startDataLayer: invalid file at startup is a config error; valid file makes the pool known', async (t) => {
  const base = {
    sources: [{ source: metricsDataSourceFactory('m', undefined, testHandle()), extractors: [coreMetricsExtractorFactory('c', undefined, testHandle())] }],
    logger: new RecordingLogger(),
    clock: new ManualClock(),
    ticker: new ManualTicker(),
  };
  await assert.rejects(startDataLayer({ ...base, endpointsFile: tmpFile('endpoints: nope') }), (e: unknown) => e instanceof EppConfigError && /endpoints file .*endpoints/.test(e.message));
  await assert.rejects(startDataLayer({ ...base, endpointsFile: '/nonexistent/endpoints.yaml' }), /ENOENT/);
  const path = tmpFile(GOOD);
  const dl = await startDataLayer({ ...base, endpointsFile: path });
  t.after(() => dl.close());
  await dl.whenReady();
  assert.equal(dl.store.endpoints().length, 2);
  writeFileSync(path, 'endpoints: []\n');
  await waitFor((cb) => dl.onEndpointsChanged(cb), () => dl.store.endpoints().length === 0, 'file edit applied');
});
