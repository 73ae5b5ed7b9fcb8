/**
 * A real Prometheus server (Debian's `prometheus` package; .ci/run installs it) scrapes the EPP's /metrics every
 * second, and PromQL over its HTTP API sees our series. Skipped, with the reason, when the binary is absent.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeEnvoy } from '../support/fake-envoy.ts';
import { startTestEpp } from '../support/epp.ts';
import { fullStreamedRequest, http } from './helpers.ts';
import { freePort } from '../../scripts/free-port.js';

const PROMETHEUS = process.env.PROMETHEUS_BIN ?? 'prometheus';
const available = spawnSync(PROMETHEUS, ['--version'], { stdio: 'ignore' }).status === 0;

interface QueryResult {
  status: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function query(port: number, promql: string): Promise<QueryResult['data']['result']> {
  const r = await http(port, `/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (r.status !== 200) throw new Error(`query ${promql}: HTTP ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as QueryResult).data.result;
}

/** Polls `promql` until `accept` holds (or the deadline passes), returning the last result. */
async function eventually(port: number, promql: string, accept: (r: QueryResult['data']['result']) => boolean, timeoutMs = 20_000) {
  const start = Date.now();
  let last: QueryResult['data']['result'] = [];
  for (;;) {
    try {
      last = await query(port, promql);
      if (accept(last)) return last;
    } catch {
      // Prometheus still starting.
    }
    if (Date.now() - start > timeoutMs) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a real Prometheus scrapes /metrics and answers PromQL over our series', { skip: available ? false : `'${PROMETHEUS}' not found: install Debian's prometheus package (apt-get install -y prometheus), as .ci/run does`, timeout: 60_000 }, async () => {
  const epp = await startTestEpp({ metricsPort: 0, poolName: 'prom-pool' });
  const envoy = new FakeEnvoy(epp.grpcPort);
  const dir = mkdtempSync(join(tmpdir(), 'epp-prom-'));
  let prom: ChildProcess | undefined;
  let log = '';
  try {
    for (let i = 0; i < 3; i++) await fullStreamedRequest(envoy.open(), `request ${i}`);
    const promPort = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: epp\n  static_configs:\n  - targets: ['127.0.0.1:${epp.metricsPort}']\n`,
    );
    prom = spawn(
      PROMETHEUS,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prom.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));

    const up = await eventually(promPort, 'up{job="epp"}', (r) => r[0]?.value[1] === '1');
    assert.equal(up[0]?.value[1], '1', `target not up; prometheus log:\n${log}`);
    const total = await eventually(promPort, 'sum(inference_objective_request_total{job="epp"})', (r) => r[0]?.value[1] === '3');
    assert.equal(total[0]?.value[1], '3');
    const byOutcome = await query(promPort, 'sum by (outcome) (epp_request_completions_total)');
    assert.deepEqual(byOutcome.map((r) => [r.metric.outcome, r.value[1]]), [['success', '3']]);
    // Histograms are usable: the scheduler's e2e p99 is a finite number of seconds.
    const p99 = await query(promPort, 'histogram_quantile(0.99, sum by (le) (inference_extension_scheduler_e2e_duration_seconds_bucket))');
    const v = Number(p99[0]?.value[1]);
    assert.ok(Number.isFinite(v) && v > 0 && v <= 0.1, `p99 ${p99[0]?.value[1]}`);
    // Our exposition parses cleanly: no scrape-level sample errors.
    const bad = await query(promPort, 'scrape_samples_post_metric_relabeling{job="epp"} - scrape_samples_scraped{job="epp"}');
    assert.equal(bad[0]?.value[1], '0');
  } finally {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom?.once('exit', r));
      prom.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (prom.exitCode === null) prom.kill('SIGKILL');
    }
    envoy.close();
    await epp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
