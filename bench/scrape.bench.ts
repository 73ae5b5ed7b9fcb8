/**
 * Scrape benchmark: the data layer polling 100 fake vLLM servers every 50 ms (2000 scrapes/s).
 *
 * One op = one scrape: HTTP GET over a kept-alive connection, read the ~28 KB body, parse, extract, commit a
 * new endpoint snapshot. The fake servers (a child process, so their CPU is not counted) answer from
 * pre-rendered realistic vLLM expositions (~200 series, test/fixtures/metrics/render-vllm.ts):
 *   - `busy`: every response differs (counters and gauges move), so nothing can be skipped;
 *   - `idle`: the body never changes (an idle server), so skipping unchanged bodies pays off.
 * Variants of the metrics-data-source and data layer:
 *   - `full`:      validate and parse every line (what a generic parser does);
 *   - `selective`: seek only the families the extractor needs for the endpoint's engine (the default);
 *   - `selective+skip`: also reuse the previous parse when the body is byte-identical (the default);
 *   - `selective/timers`: `selective`, but one `setInterval` per endpoint (`IntervalTicker`, the former
 *     default) instead of the shared staggered ticker.
 * Conditional requests (ETag/If-None-Match) are not tried: vLLM's prometheus_client endpoint sends no
 * validators, so they would never apply against a real server.
 *
 * Reported per config: the EPP process's CPU share of one core (process.cpuUsage over wall time) and the
 * parse cost per scrape (parser time / parses), as medians over measurement windows; plus scrapes/s achieved.
 * Each config starts its own data layer, waits until the CPU share stops moving, then measures; the configs
 * (and, below, the bare clients) run once per repetition (≥ 3) in a seeded shuffled order, and every cell is
 * the median of the per-repetition medians with their min–max.
 * Then the HTTP client floor: bare GETs of the same bodies at the same rate, nothing parsed, with undici
 * `dispatch`, node:http (keep-alive Agent) and the source's own client (http-client.ts) — why the source
 * does not use a library client. A micro-benchmark of the parsers on the same body follows. Deliberately left out: TLS, Kubernetes
 * discovery (no cost at steady state), and request-path load on the same process.
 *
 * Usage: npm run bench:scrape [-- --servers 100 --interval-ms 50 --windows 3 --window-ms 1000 --warmup-ms 500 --reps 3 --seed 1
 *        --modes busy,idle --variants full,selective,selective+skip,selective/timers --no-floor --no-micro]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent as HttpAgent, createServer, get as httpGet } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Agent as UndiciAgent, type Dispatcher } from 'undici';
import { startDataLayer, IntervalTicker, SharedTicker, type Ticker } from '../src/datalayer/index.ts';
import { systemClock } from '../src/util/clock.ts';
import type { Logger } from '../src/framework/plugin.ts';
import { coreMetricsExtractorFactory, type CoreMetricsExtractor } from '../src/plugins/datalayer/extractor/core-metrics-extractor/index.ts';
import { MetricsDataSource } from '../src/plugins/datalayer/source/metrics-data-source/index.ts';
import { ScrapeClient } from '../src/plugins/datalayer/source/metrics-data-source/http-client.ts';
import { parsePrometheusText, parseSelectedFamilies, parseSelectedFamiliesInBuffer } from '../src/plugins/datalayer/source/metrics-data-source/prometheus-text.ts';
import { DEFAULT_VLLM_STATE, renderVllmExposition, countSeries } from '../test/fixtures/metrics/render-vllm.ts';
import { repetitions, warmUntilSteady } from './support/alternate.ts';
import { printRunInfo } from './support/run-info.ts';
import { formatSpread, median, spread } from './support/stats.ts';
import { InFlightTracker } from '../src/runtime/inflight.ts';
import { PluginMetricSources } from '../src/runtime/plugin-metrics.ts';

const { values: args } = parseArgs({
  options: {
    servers: { type: 'string', default: '100' },
    'interval-ms': { type: 'string', default: '50' },
    windows: { type: 'string', default: '3' },
    reps: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    'window-ms': { type: 'string', default: '1000' },
    'warmup-ms': { type: 'string', default: '500' },
    modes: { type: 'string', default: 'busy,idle' },
    variants: { type: 'string', default: 'full,selective,selective+skip,selective/timers' },
    clients: { type: 'string', default: 'undici,node-http,own' },
    'no-floor': { type: 'boolean', default: false },
    'no-micro': { type: 'boolean', default: false },
  },
});
const SERVERS = Number(args.servers);
const INTERVAL_MS = Number(args['interval-ms']);
const WINDOWS = Number(args.windows);
const WINDOW_MS = Number(args['window-ms']);
const WARMUP_MS = Number(args['warmup-ms']);
const REPS = Math.max(3, Number(args.reps));
const SEED = Number(args.seed);

/** Pre-rendered bodies per server: a ring of distinct states for `busy`, a single one for `idle`. */
function bodies(seed: number, mode: 'busy' | 'idle'): string[] {
  const n = mode === 'busy' ? 32 : 1;
  return Array.from({ length: n }, (_, i) =>
    renderVllmExposition({
      ...DEFAULT_VLLM_STATE,
      running: (seed + i) % 17,
      waiting: (seed * 7 + i) % 5,
      kvUsage: ((seed * 13 + i * 7) % 100) / 100,
      requestsDone: 1000 + seed * 31 + i * 3,
    }),
  );
}

async function main(): Promise<void> {
  const child: ChildProcess = fork(new URL(import.meta.url).pathname, process.argv.slice(2), {
    env: { ...process.env, SCRAPE_BENCH_ROLE: 'servers' },
    execArgv: ['--import', 'tsx'],
  });
  process.on('exit', () => child.kill());
  const ports = await new Promise<number[]>((resolve) => child.once('message', (m: { ports: number[] }) => resolve(m.ports)));
  const setMode = (mode: 'busy' | 'idle') =>
    new Promise<void>((resolve) => {
      child.once('message', () => resolve());
      child.send({ mode });
    });

  const sample = bodies(0, 'busy')[0] as string;
  printRunInfo('bench:scrape', [
    `${SERVERS} fake vLLM servers × every ${INTERVAL_MS} ms = ${(SERVERS * 1000) / INTERVAL_MS} scrapes/s; body ${sample.length} bytes, ${countSeries(sample)} series`,
    `per configuration and repetition: warm-up until CPU steady (windows of ${WARMUP_MS} ms), then ${WINDOWS} windows of ${WINDOW_MS} ms; ` +
      `${REPS} repetitions, configurations in a seeded shuffled order per repetition (seed ${SEED})`,
    'cells: median of the per-repetition medians [min–max across repetitions]',
  ]);

  const variants = [
    { name: 'full', selectiveParse: false, skipUnchangedBodies: false, ticker: 'shared' },
    { name: 'selective', selectiveParse: true, skipUnchangedBodies: false, ticker: 'shared' },
    { name: 'selective+skip', selectiveParse: true, skipUnchangedBodies: true, ticker: 'shared' },
    { name: 'selective/timers', selectiveParse: true, skipUnchangedBodies: false, ticker: 'interval' },
  ] as const;
  const modes = (args.modes ?? '').split(',') as Array<'busy' | 'idle'>;
  const selected = variants.filter((v) => (args.variants ?? '').split(',').includes(v.name));
  const pairs = modes.flatMap((mode) => selected.map((v) => `${mode} | ${v.name}`));
  const results = await repetitions(pairs, { repetitions: REPS, seed: SEED }, async (pair) => {
    const [mode, name] = pair.split(' | ') as ['busy' | 'idle', string];
    await setMode(mode);
    return runConfig(ports, selected.find((v) => v.name === name) as (typeof selected)[number]);
  });
  const f = (xs: number[], digits = 1) => formatSpread(spread(xs), digits);
  console.log('| server bodies | variant | EPP CPU, % of one core | of which kernel | parse µs/scrape | scrapes/s | parses/s |');
  console.log('|---|---|---|---|---|---|---|');
  for (const pair of pairs) {
    const rs = results.get(pair) as Array<Awaited<ReturnType<typeof runConfig>>>;
    const [mode, name] = pair.split(' | ');
    console.log(
      `| ${mode} | ${name} | ${f(rs.map((r) => r.cpuPct))} | ${f(rs.map((r) => r.sysPct))} | ${f(rs.map((r) => r.parseUs))} | ${f(rs.map((r) => r.scrapesPerSec), 0)} | ${f(rs.map((r) => r.parsesPerSec), 0)} |`,
    );
  }
  if (!args['no-floor']) {
    await setMode('busy');
    const names = (args.clients ?? '').split(',').filter((n) => n !== '');
    const labels = new Map<string, string>();
    const floor = await repetitions(names, { repetitions: REPS, seed: SEED + 1 }, async (name) => {
      const get = clientGetter(name, ports);
      if (get === undefined) throw new Error(`unknown client ${name}`);
      labels.set(name, get.label);
      const r = await runFloor(ports, get.fn);
      await get.close();
      return r;
    });
    console.log(`\n# HTTP client floor: bare GETs at the same rate (busy bodies), no parsing; shared ticker; same windows and repetitions`);
    console.log('| client | EPP CPU, % of one core | of which kernel | GETs/s |');
    console.log('|---|---|---|---|');
    for (const name of names) {
      const rs = floor.get(name) as Array<Awaited<ReturnType<typeof runFloor>>>;
      console.log(`| ${labels.get(name)} | ${f(rs.map((r) => r.cpuPct))} | ${f(rs.map((r) => r.sysPct))} | ${f(rs.map((r) => r.perSec), 0)} |`);
    }
  }
  child.kill();
  if (!args['no-micro']) microParse(sample);
}

type Get = (i: number) => Promise<number>;

/** Bare GET /metrics of server `i`, resolving with the body size; per client library. */
function clientGetter(name: string, ports: number[]): { label: string; fn: Get; close: () => Promise<void> } | undefined {
  if (name === 'undici') {
    const agent = new UndiciAgent({ connections: 2, pipelining: 1, keepAliveTimeout: 30_000 });
    const origins = ports.map((p) => `http://127.0.0.1:${p}`);
    const fn: Get = (i) =>
      new Promise((resolve, reject) => {
        let n = 0;
        const handler: Dispatcher.DispatchHandler = {
          onRequestStart() {},
          onResponseStart() {},
          onResponseData(_c, chunk) {
            n += chunk.length;
          },
          onResponseEnd() {
            resolve(n);
          },
          onResponseError(_c, err) {
            reject(err);
          },
        };
        agent.dispatch({ origin: origins[i] as string, path: '/metrics', method: 'GET', headers: { accept: 'text/plain' } }, handler);
      });
    return { label: 'undici 7 Agent.dispatch (the former client)', fn, close: () => agent.close() };
  }
  if (name === 'node-http') {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 2 });
    const fn: Get = (i) =>
      new Promise((resolve, reject) => {
        const req = httpGet({ host: '127.0.0.1', port: ports[i], path: '/metrics', agent, headers: { accept: 'text/plain' } }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
          });
          res.on('end', () => resolve(n));
          res.on('error', reject);
        });
        req.on('error', reject);
      });
    return { label: 'node:http, keep-alive Agent', fn, close: async () => agent.destroy() };
  }
  if (name === 'own') {
    const client = new ScrapeClient({ maxBodyBytes: 8 << 20, accept: 'text/plain', tls: undefined });
    const hosts = ports.map((p) => `127.0.0.1:${p}`);
    const fn: Get = (i) => client.get(String(i), hosts[i] as string, '/metrics', 1000).then((c) => c.bodyEnd - c.bodyStart);
    return { label: 'own client (http-client.ts, net.Socket onread)', fn, close: async () => client.close() };
  }
  return undefined;
}

async function runFloor(ports: number[], get: Get) {
  const ticker = new SharedTicker();
  let done = 0;
  const handles = ports.map((_p, i) => {
    let busy = false;
    return ticker.every(INTERVAL_MS, () => {
      if (busy) return;
      busy = true;
      get(i).then(
        () => {
          done++;
          busy = false;
        },
        () => {
          busy = false;
        },
      );
    });
  });
  await warmCpu();
  const cpu: number[] = [];
  const sys: number[] = [];
  const rate: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const d0 = done;
    await sleep(WINDOW_MS);
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpu.push(((c.user + c.system) / 1000 / dt) * 100);
    sys.push((c.system / 1000 / dt) * 100);
    rate.push(((done - d0) * 1000) / dt);
  }
  for (const h of handles) h.stop();
  await sleep(100);
  return { cpuPct: median(cpu), sysPct: median(sys), perSec: median(rate) };
}

const silent: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  trace() {},
  child: () => silent,
  isLevelEnabled: () => false,
};

/** Waits until this process's CPU share over `WARMUP_MS` windows stops moving (connections open, code optimised). */
async function warmCpu(): Promise<void> {
  await warmUntilSteady(
    async () => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await sleep(WARMUP_MS);
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1000 / (performance.now() - t0);
    },
    { minRounds: 2, maxRounds: 12, tolerance: 0.15, stableRounds: 1 },
  );
}

async function runConfig(ports: number[], v: { selectiveParse: boolean; skipUnchangedBodies: boolean; ticker: 'shared' | 'interval' }) {
  const source = new MetricsDataSource('metrics', {
    scheme: 'http',
    path: '/metrics',
    insecureSkipVerify: true,
    selectiveParse: v.selectiveParse,
    skipUnchangedBodies: v.skipUnchangedBodies,
  });
  const ticker: Ticker = v.ticker === 'interval' ? new IntervalTicker() : new SharedTicker();
  const extractor = coreMetricsExtractorFactory('core', undefined, { logger: silent, clock: systemClock, random: { next: Math.random }, plugin: () => undefined, endpoints: () => [], inflight: new InFlightTracker(), metrics: new PluginMetricSources() }) as CoreMetricsExtractor;
  const dl = await startDataLayer({
    static: ports.map((p) => `127.0.0.1:${p}`),
    refreshIntervalMs: INTERVAL_MS,
    sources: [{ source, extractors: [extractor] }],
    logger: silent,
    clock: systemClock,
    ticker,
  });
  await warmCpu();
  const cpu: number[] = [];
  const sys: number[] = [];
  const parse: number[] = [];
  const scrapes: number[] = [];
  const parses: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const s0 = { ...source.stats };
    await sleep(WINDOW_MS);
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const s1 = source.stats;
    cpu.push(((c.user + c.system) / 1000 / dt) * 100);
    sys.push((c.system / 1000 / dt) * 100);
    const np = s1.parses - s0.parses;
    parse.push(np > 0 ? ((s1.parseMs - s0.parseMs) * 1000) / np : NaN);
    scrapes.push(((s1.polls - s0.polls) * 1000) / dt);
    parses.push((np * 1000) / dt);
  }
  const failures = source.stats.failures;
  await dl.close();
  if (failures > 0) console.log(`#   (${failures} failed polls while measuring this config)`);
  return { cpuPct: median(cpu), sysPct: median(sys), parseUs: median(parse.filter((x) => !Number.isNaN(x))), scrapesPerSec: median(scrapes), parsesPerSec: median(parses) };
}

function microParse(body: string): void {
  const extractor = coreMetricsExtractorFactory('core', undefined, { logger: silent, clock: systemClock, random: { next: Math.random }, plugin: () => undefined, endpoints: () => [], inflight: new InFlightTracker(), metrics: new PluginMetricSources() }) as CoreMetricsExtractor;
  const wanted = extractor.inputKeysFor({ name: 'e', namespace: 'n', podName: 'p', address: 'a', port: 1, metricsHost: 'a:1', labels: {} });
  const runs = (fn: () => unknown): number => {
    const per: number[] = [];
    for (let r = 0; r < 9; r++) {
      const n = 500;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn();
      per.push(((performance.now() - t0) * 1000) / n);
    }
    return median(per);
  };
  for (let i = 0; i < 2000; i++) {
    parsePrometheusText(body);
    parseSelectedFamilies(body, wanted);
  }
  const buf = Buffer.from(body);
  console.log('\n# parser micro-benchmark on the same body (median of 9 × 500 parses)');
  console.log('| parser | µs/parse |');
  console.log('|---|---|');
  console.log(`| full (parsePrometheusText) | ${runs(() => parsePrometheusText(body)).toFixed(1)} |`);
  console.log(`| selective on the raw bytes (parseSelectedFamiliesInBuffer, ${wanted.size} vLLM families; the scrape path) | ${runs(() => parseSelectedFamiliesInBuffer(buf, 0, buf.length, wanted)).toFixed(1)} |`);
  console.log(`| selective from a string (parseSelectedFamilies: encode + the above) | ${runs(() => parseSelectedFamilies(body, wanted)).toFixed(1)} |`);
  console.log(`| utf-8 decode of the body | ${runs(() => buf.toString('utf8')).toFixed(1)} |`);
  const prev = Buffer.from(buf);
  console.log(`| unchanged-body check (Buffer.compare with the kept copy) | ${runs(() => buf.compare(prev, 0, prev.length, 0, buf.length)).toFixed(1)} |`);
  console.log(`| keeping the copy (Buffer.copy into a reused buffer) | ${runs(() => buf.copy(prev, 0, 0, buf.length)).toFixed(1)} |`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ------------------------------------------------------------------------------------------------------
// Child process: the fake model servers.
async function serve(): Promise<void> {
  let mode: 'busy' | 'idle' = 'busy';
  const rings: string[][] = [];
  const cursors: number[] = [];
  const ports: number[] = [];
  for (let s = 0; s < SERVERS; s++) {
    rings.push(bodies(s, 'busy'));
    cursors.push(0);
    const idx = s;
    const server = createServer((_req, res) => {
      const ring = rings[idx] as string[];
      const body = mode === 'idle' ? (ring[0] as string) : (ring[(cursors[idx] = ((cursors[idx] ?? 0) + 1) % ring.length)] as string);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    ports.push((server.address() as AddressInfo).port);
  }
  process.on('message', (m: { mode: 'busy' | 'idle' }) => {
    mode = m.mode;
    process.send?.({ ack: mode });
  });
  process.on('disconnect', () => process.exit(0)); // parent gone (finished or crashed)
  process.send?.({ ports });
}


if (process.env.SCRAPE_BENCH_ROLE === 'servers') await serve();
else await main();
