/**
 * End to end through `startDataLayer` (static discovery) against real HTTP fake model servers: every fault
 * leaves its endpoint stale — not crashed, not fresh — while healthy endpoints keep updating, and a server
 * that comes back recovers. Time is driven by a manual clock and ticker; each tick awaits the real polls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startDataLayer } from '../../src/datalayer/index.ts';
import { ManualTicker } from '../support/doubles.ts';
import { EppConfigError } from '../../src/framework/errors.ts';
import { coreMetricsExtractorFactory } from '../../src/plugins/datalayer/extractor/core-metrics-extractor/index.ts';
import { metricsDataSourceFactory } from '../../src/plugins/datalayer/source/metrics-data-source/index.ts';
import { RecordingLogger, eventually, FakeModelServer, ManualClock, testHandle } from './helpers.ts';

const VLLM = readFileSync(new URL('../fixtures/metrics/vllm.prom', import.meta.url), 'utf8');
const withQueue = (n: number): string => VLLM.replace(/^(vllm:num_requests_waiting\{[^}]*\}) 3\.0$/m, `$1 ${n}.0`);

function sources() {
  const h = testHandle();
  return [{ source: metricsDataSourceFactory('metrics', undefined, h), extractors: [coreMetricsExtractorFactory('core', undefined, h)] }];
}

test('faults: down, slow, garbage, 500 → stale; healthy stays fresh; all recover', async (t) => {
  const names = ['healthy', 'down', 'slow', 'garbage', 'error500'] as const;
  const servers = Object.fromEntries(names.map((n) => [n, new FakeModelServer({ kind: 'ok', body: withQueue(1) })])) as Record<(typeof names)[number], FakeModelServer>;
  for (const s of Object.values(servers)) await s.start();
  const clock = new ManualClock();
  const ticker = new ManualTicker();
  const logger = new RecordingLogger();
  const dl = await startDataLayer({
    static: names.map((n) => servers[n].hostPort),
    refreshIntervalMs: 50,
    // The HTTP client also bounds its I/O in real time with this value: generous, so a loaded machine cannot
    // time out a healthy poll (the test drives the collector's own deadline with the manual clock below).
    pollTimeoutMs: 2000,
    sources: sources(),
    logger,
    clock,
    ticker,
  });
  t.after(async () => {
    await dl.close();
    for (const s of Object.values(servers)) await s.stop();
  });
  await dl.whenReady();
  assert.equal(dl.store.poolKnown(), true);
  await dl.settled();
  const byServer = (n: (typeof names)[number]) => dl.store.endpoints().find((e) => e.hostPort === servers[n].hostPort);
  for (const n of names) assert.equal(byServer(n)?.metrics.updateTime, clock.now(), `${n} fresh at start`);
  const t0 = clock.now();

  // Inject the faults.
  await servers.down.down();
  servers.slow.behaviour = { kind: 'hang' };
  servers.garbage.behaviour = { kind: 'ok', body: '<html><h1>502 Bad Gateway</h1></html>' };
  servers.error500.behaviour = { kind: 'status', status: 500 };
  servers.healthy.behaviour = { kind: 'ok', body: withQueue(2) };
  clock.advance(50);
  const pending = ticker.tick(); // the slow server's poll stays open...
  await eventually(
    () => logger.count('warn', 'metrics poll failed') === 3 && byServer('healthy')?.metrics.waitingQueueSize === 2 && servers.slow.hits === 2,
    'all polls but the slow one finished',
  );
  clock.advance(2100); // ...until a later tick finds it past the 2000 ms deadline
  await Promise.all([pending, ticker.tick()]);
  clock.advance(50);
  await ticker.tick();

  assert.equal(byServer('healthy')?.metrics.waitingQueueSize, 2);
  assert.equal(byServer('healthy')?.metrics.updateTime, clock.now());
  for (const n of ['down', 'slow', 'garbage', 'error500'] as const) {
    assert.equal(byServer(n)?.metrics.updateTime, t0, `${n} is stale`);
    assert.equal(byServer(n)?.metrics.waitingQueueSize, 1, `${n} keeps its last good values`);
  }
  assert.equal(logger.count('warn', 'metrics poll failed'), 4, logger.entries.filter((e) => e.level === 'warn').map((e) => JSON.stringify(e)).join('\n'));
  const errs = logger.entries.filter((e) => e.msg.includes('poll failed')).map((e) => String(e.obj.err));
  assert.ok(errs.some((e) => /ECONNREFUSED/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /poll exceeded 2000 ms|timed out|aborted/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /not a Prometheus exposition/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /HTTP 500/.test(e)), errs.join('\n'));

  // Heal everything.
  await servers.down.up();
  for (const n of ['slow', 'garbage', 'error500', 'down'] as const) servers[n].behaviour = { kind: 'ok', body: withQueue(9) };
  clock.advance(50);
  await ticker.tick();
  for (const n of ['down', 'slow', 'garbage', 'error500'] as const) {
    assert.equal(byServer(n)?.metrics.waitingQueueSize, 9, `${n} recovered`);
    assert.equal(byServer(n)?.metrics.updateTime, clock.now());
  }
  assert.equal(logger.count('info', 'metrics poll recovered'), 4);
});

test('startDataLayer validates its inputs', async () => {
  const base = { sources: sources(), logger: new RecordingLogger(), clock: new ManualClock(), ticker: new ManualTicker() };
  await assert.rejects(startDataLayer({ ...base }), /exactly one endpoint discovery mode/);
  await assert.rejects(startDataLayer({ ...base, static: ['1.2.3.4:80'], endpointsFile: '/x' }), /exactly one endpoint discovery mode/);
  await assert.rejects(startDataLayer({ ...base, static: ['1.2.3.4:80'], sources: [] }), /no data sources configured/);
  await assert.rejects(startDataLayer({ ...base, static: ['1.2.3.4'] }), (e: unknown) => e instanceof EppConfigError && /not host:port/.test(e.message));
  await assert.rejects(startDataLayer({ ...base, static: ['1.2.3.4:80,1.2.3.4:80'] }), /listed twice/);
  const h = testHandle();
  const ex = coreMetricsExtractorFactory('core', undefined, h);
  await assert.rejects(startDataLayer({ ...base, static: ['1.2.3.4:80'], sources: [{ source: ex, extractors: [] }] }), /is not a data source/);
  const src = metricsDataSourceFactory('m', undefined, h);
  const wrongType = { typedName: { type: 't', name: 'n' }, inputType: 'json', extract: () => ({ updated: false, errors: [] }) };
  await assert.rejects(startDataLayer({ ...base, static: ['1.2.3.4:80'], sources: [{ source: src, extractors: [wrongType] }] }), /expects 'json' but the source produces 'prometheus-families'/);
});

test('static endpoints: names, IPv6, refresh interval default; close rejects a pending whenReady never', async () => {
  const ticker = new ManualTicker();
  const dl = await startDataLayer({ static: ['10.0.0.1:8000,[fd00::2]:8001', 'host.example:9000'], refreshIntervalMs: 0, sources: sources(), logger: new RecordingLogger(), clock: new ManualClock(), ticker });
  assert.deepEqual(dl.store.endpoints().map((e) => [e.metadata.name, e.hostPort, e.metadata.metricsHost]), [
    ['10.0.0.1:8000', '10.0.0.1:8000', '10.0.0.1:8000'],
    ['[fd00::2]:8001', '[fd00::2]:8001', '[fd00::2]:8001'],
    ['host.example:9000', 'host.example:9000', 'host.example:9000'],
  ]);
  assert.deepEqual(ticker.intervals, [50, 50, 50], 'refresh interval ≤ 0 falls back to 50 ms');
  await dl.whenReady();
  await dl.close();
  await dl.close();
  assert.equal(ticker.size, 0);
});
