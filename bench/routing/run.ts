/**
 * Routing benchmark runner (`npm run bench:routing -- [options]`, docs/benchmarks.md).
 *
 * For every scenario and policy: a fresh simulated fleet in its own process (fleet-process.ts), a fresh
 * embedded gateway in this process with the policy's named config (src/config/presets.ts), and the load
 * generator in its own process (loadgen.ts) replaying the same seeded schedule. The runner scrapes the
 * simulators' /metrics at every stage boundary (counter deltas: prefix hits, preemptions) and once a second
 * (waiting, KV usage, the simulators' event-loop lag), measures its own (the gateway's) event-loop lag, and
 * writes a JSON result, a Markdown report and SVG charts.
 *
 * Options: --quick, --scenarios a,b, --policies a,b (preset names, or name=path/to/config.yaml), --rates 4,8,…, --stage-s N, --warmup-s N,
 * --time-scale k, --seed N, --lag-limit-ms N (simulated ms; a stage whose mean event-loop lag p99 / k exceeds it
 * is flagged INVALID), --no-early-stop, --out DIR (default bench/routing/results), --docs (also write the SVG
 * charts into docs/ as benchmarks-<scenario>-{ttft,throughput}.svg).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { CONFIG_PRESETS, presetNeedsKvEvents } from '../../src/config/presets.ts';
import { kvEventsLabels } from '../../src/framework/datalayer.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEpp } from '../../src/server/bootstrap.ts';
import { DEFAULT_MODEL_NAME } from '../../src/sim/config.ts';
import type { FleetReply, FleetStart } from './fleet-process.ts';
import type { LoadgenMessage, LoadgenRun } from './loadgen.ts';
import {
  markdownReport,
  maxSustained,
  mergeResults,
  pickScenarios,
  scenarioCharts,
  type BenchResult,
  type PolicyResult,
  type ResetSummary,
  type ScenarioResult,
  type StageResult,
} from './report.ts';
import { mean, type ClientStageStats } from './stats.ts';
import { repetitions } from '../support/alternate.ts';
import { combinedMaxSustained, refineRates } from './seeds.ts';
import { configForScenario, defaultLoad, SCENARIOS, totalDurationS, type LoadSpec, type ScenarioSpec } from './workload.ts';

const HERE = import.meta.dirname;
const ROOT = resolve(HERE, '../..');

interface Options {
  /** `--help`: print USAGE and run nothing. */
  help: boolean;
  quick: boolean;
  scenarios: string[];
  policies: string[];
  /** Config text per policy name: the presets, plus `name=path` entries of `--policies` (a user's own file). */
  configs: Map<string, { text: string; origin: string }>;
  rates: number[] | undefined;
  stageS: number | undefined;
  warmupS: number | undefined;
  timeScale: number;
  seed: number;
  lagLimitMs: number;
  earlyStop: boolean;
  /** Runs per (scenario, policy), seeds seed, seed + 1, …; policy order shuffled per seed. */
  seeds: number;
  /** Rates measured inside each run's knee bracket by a second short ladder (0 = no refinement). */
  refine: number;
  out: string;
  docs: boolean;
  /**
   * `--merge a.json,b.json:s1+s2`: run nothing, read earlier results together (report and charts over all their
   * seeds); `:s1+s2` after a file takes only those scenarios from it.
   */
  merge: { file: string; scenarios?: string[] }[];
}

/** `--quick` (< 10 min on an idle machine): the scenario that discriminates, the policies that matter, one seed. */
export const QUICK_SCENARIOS = ['sp-pressure'] as const;
export const QUICK_POLICIES = ['round-robin', 'upstream-default', 'epp-default', 'approx-sticky', 'precise-sticky'] as const;
/** Without `--scenarios`: issue 18's scenarios (cache pressure and divergence) and the earlier ones at load. */
export const FULL_SCENARIOS = ['sp-pressure', 'sp-overflow', 'sp-pressure-skewed', 'sp-overflow-skewed', 'sp-reset', 'sp-bypass', 'sp-second-gateway', 'sp-cancel', 'sp-multiturn', 'sp-faults', 'sp-main', 'sp-skewed', 'sp-hetero', 'sp-low-overlap'] as const;

/** Printed by `--help` (and named in the error for an unknown option). */
export const USAGE = `epp bench routing [options]   (also: npm run bench:routing -- [options]; docs/benchmarks.md)

  --quick                  sp-pressure × ${QUICK_POLICIES.length} policies × 1 seed (≈ 7 min on an idle machine)
  --scenarios a,b          scenarios (default: ${FULL_SCENARIOS.join(',')})
  --policies a,b           preset names, or name=path/to/config.yaml (default: every preset)
  --seeds N                runs per scenario × policy, seeds seed…seed+N−1 (default 3; --quick 1)
  --refine N               extra rates inside each knee bracket (default 3; --quick 0)
  --rates 8,12,…           the load ladder in requests/s
  --stage-s N              seconds per stage (default 30; --quick 10)
  --warmup-s N             warm-up seconds (default 30; --quick 10)
  --time-scale k           run simulated time k× slower than real time (default 1)
  --seed N                 first seed (default 20260910)
  --lag-limit-ms N         flag a stage INVALID when the mean event-loop lag p99 / k exceeds N ms (default 5)
  --no-early-stop          run every stage even after the fleet saturated
  --out DIR                results folder (default bench/routing/results)
  --docs                   also write the SVG charts into docs/
  --merge a.json,b.json    run nothing: read earlier results (split by seed or scenario) together into one
                           report and one set of charts in --out (and docs/ with --docs); b.json:s1+s2 takes
                           only scenarios s1 and s2 from b.json
  --help                   this text
`;

/** One `--merge` entry: `path` or `path:scenario+scenario`. */
function mergeSource(entry: string): { file: string; scenarios?: string[] } {
  const m = /^(.*\.json):([^/\\]+)$/.exec(entry);
  if (m === null) return { file: resolve(entry) };
  const scenarios = (m[2] as string).split('+').filter((s) => s !== '');
  for (const s of scenarios) if (!SCENARIOS[s]) throw new Error(`--merge ${entry}: unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  return { file: resolve(m[1] as string), scenarios };
}

export function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    help: false,
    quick: false,
    scenarios: [],
    policies: Object.keys(CONFIG_PRESETS),
    configs: new Map(Object.entries(CONFIG_PRESETS).map(([name, text]) => [name, { text, origin: `preset ${name}` }])),
    rates: undefined,
    stageS: undefined,
    warmupS: undefined,
    timeScale: 1,
    seed: 20260910,
    lagLimitMs: 5,
    earlyStop: true,
    seeds: -1,
    refine: -1,
    out: join(HERE, 'results'),
    docs: false,
    merge: [],
  };
  let policiesGiven = false;
  const list = (v: string | undefined): string[] => (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') o.help = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--scenarios') o.scenarios = list(next());
    else if (a === '--policies') {
      o.policies = list(next());
      policiesGiven = true;
    }
    else if (a === '--rates') o.rates = list(next()).map(Number);
    else if (a === '--stage-s') o.stageS = Number(next());
    else if (a === '--warmup-s') o.warmupS = Number(next());
    else if (a === '--time-scale') o.timeScale = Number(next());
    else if (a === '--seed') o.seed = Number(next());
    else if (a === '--lag-limit-ms') o.lagLimitMs = Number(next());
    else if (a === '--no-early-stop') o.earlyStop = false;
    else if (a === '--seeds') o.seeds = Number(next());
    else if (a === '--refine') o.refine = Number(next());
    else if (a === '--out') o.out = resolve(next());
    else if (a === '--docs') o.docs = true;
    else if (a === '--merge') o.merge = list(next()).map(mergeSource);
    else throw new Error(`unknown option ${a} (epp bench routing --help lists the options)`);
  }
  if (o.scenarios.length === 0) o.scenarios = o.quick ? [...QUICK_SCENARIOS] : [...FULL_SCENARIOS];
  if (o.quick && !policiesGiven) o.policies = [...QUICK_POLICIES];
  if (o.seeds < 0) o.seeds = o.quick ? 1 : 3;
  if (o.refine < 0) o.refine = o.quick ? 0 : 3;
  if (!Number.isInteger(o.seeds) || o.seeds < 1) throw new Error('--seeds needs a positive integer');
  if (!Number.isInteger(o.refine) || o.refine < 0) throw new Error('--refine needs an integer >= 0');
  for (const s of o.scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  o.policies = o.policies.map((p) => {
    const eq = p.indexOf('=');
    if (eq < 0) return p;
    const name = p.slice(0, eq);
    const path = resolve(p.slice(eq + 1));
    o.configs.set(name, { text: readFileSync(path, 'utf8'), origin: path });
    return name;
  });
  for (const p of o.policies) {
    if (!o.configs.has(p)) throw new Error(`unknown policy ${p}; known: ${Object.keys(CONFIG_PRESETS).join(', ')}, or name=path/to/config.yaml`);
  }
  return o;
}

// ------------------------------------------------------------------ metrics scraping

interface ServerSample {
  readonly counters: Map<string, number>;
}

function get(url: string): Promise<string> {
  return new Promise((resolveGet, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolveGet(body));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

const WANTED = [
  'vllm:prefix_cache_queries_total',
  'vllm:prefix_cache_hits_total',
  'vllm:num_preemptions_total',
  'vllm:num_requests_waiting',
  'vllm:num_requests_running',
  'vllm:kv_cache_usage_perc',
];

/** Sums (over label sets) of the wanted series, plus the simulator's event-loop lag p99 in ms. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.charCodeAt(0) === 35) continue;
    if (line.startsWith('sim_event_loop_lag_seconds{quantile="0.99"')) {
      out.set('lagP99Ms', Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000);
      continue;
    }
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    const name = brace >= 0 ? line.slice(0, brace) : line.slice(0, line.indexOf(' '));
    if (!WANTED.includes(name)) continue;
    out.set(name, (out.get(name) ?? 0) + Number(line.slice(space + 1)));
  }
  return out;
}

async function scrapeAll(ports: readonly number[]): Promise<ServerSample[]> {
  return Promise.all(ports.map(async (p) => ({ counters: parseMetrics(await get(`http://127.0.0.1:${p}/metrics`)) })));
}

const sumOf = (samples: readonly ServerSample[], key: string): number => samples.reduce((s, x) => s + (x.counters.get(key) ?? 0), 0);

// ------------------------------------------------------------------ child processes

function forkChild(file: string, flag: string): ChildProcess {
  return fork(join(HERE, file), [flag], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

async function startFleetProcess(
  scenario: ScenarioSpec,
  timeScale: number,
  kvEvents: boolean,
): Promise<{ child: ChildProcess; ports: number[]; kvEventsEndpoints: string[] }> {
  const child = forkChild('fleet-process.ts', '--fleet-child');
  const ready = new Promise<{ ports: number[]; kvEventsEndpoints: string[] }>((res, rej) => {
    child.once('message', (m: FleetReply) => (m.type === 'ready' ? res(m) : rej(new Error('fleet did not start'))));
    child.once('exit', (code) => rej(new Error(`fleet process exited (${code})`)));
  });
  // KV-event publishers (ZeroMQ, OS-picked ports) only for the policies that read them: they cost the fleet's
  // process CPU, not simulated time.
  const serverOptions = { ...scenario.serverOptions, ...(kvEvents ? { kvEventsEndpoint: 'tcp://127.0.0.1:*' } : {}) };
  child.send({ type: 'start', servers: scenario.servers, timeScale, serverOptions, perServer: scenario.perServer ?? {} } satisfies FleetStart);
  const r = await ready;
  return { child, ports: r.ports, kvEventsEndpoints: r.kvEventsEndpoints };
}

async function stopFleetProcess(child: ChildProcess): Promise<void> {
  const closed = new Promise<void>((res) => child.once('exit', () => res()));
  child.send({ type: 'close' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await closed;
  clearTimeout(timer);
}

// ------------------------------------------------------------------ one policy run

interface Tick {
  readonly realMs: number;
  readonly waiting: number;
  readonly kvUsage: number;
  readonly simLagP99Ms: number;
  readonly gatewayLagP99Ms: number;
}

const fmtS = (ms: number): string => `${Math.floor(ms / 60000)}m${String(Math.floor((ms % 60000) / 1000)).padStart(2, '0')}s`;

async function runPolicy(
  scenario: ScenarioSpec,
  load: LoadSpec,
  policy: string,
  o: Options,
  label: string,
  benchStart: number,
): Promise<PolicyResult> {
  const t0 = performance.now();
  const given = o.configs.get(policy) as { text: string; origin: string };
  const config = { ...given, text: configForScenario(given.text, scenario) };
  const kvEvents = presetNeedsKvEvents(config.text);
  const { child: fleet, ports, kvEventsEndpoints } = await startFleetProcess(scenario, o.timeScale, kvEvents);
  // With KV events, the endpoints (and their event addresses, as labels) go through an endpoints file.
  let discovery: { endpoints: string[] } | { endpointsFile: string } = { endpoints: ports.map((p) => `127.0.0.1:${p}`) };
  if (kvEvents) {
    const file = join(o.out, `endpoints-${process.pid}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        endpoints: ports.map((p, i) => ({ address: '127.0.0.1', port: p, name: `sim-${i}`, labels: kvEventsLabels({ kvEventsEndpoint: kvEventsEndpoints[i]! }) })),
      }),
    );
    discovery = { endpointsFile: file };
  }
  const epp = await startEpp({
    extProc: false,
    grpcPort: 0,
    grpcHealthPort: -1,
    host: '127.0.0.1',
    secureServing: false,
    gateway: { port: 0, host: '127.0.0.1' },
    discovery: { ...discovery, refreshIntervalMs: Math.round(50 * o.timeScale) },
    config,
    logger: silentLogger(),
    shutdownGraceMs: 500,
  });
  const store = epp.store;
  const deadline = Date.now() + 15_000;
  while (!(store.endpoints().length === ports.length && store.endpoints().every((e) => e.metrics.updateTime > 0)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }

  const gwLag = monitorEventLoopDelay({ resolution: 5 });
  gwLag.enable();
  const ticks: Tick[] = [];
  const poll = setInterval(() => {
    // The histogram includes the 5 ms sampling resolution; subtract it so an idle loop reads ~0.
    const gatewayLagP99Ms = Math.max(0, gwLag.percentile(99) / 1e6 - 5);
    gwLag.reset();
    void scrapeAll(ports).then(
      (s) =>
        ticks.push({
          realMs: Date.now(),
          waiting: sumOf(s, 'vllm:num_requests_waiting'),
          kvUsage: mean(s.map((x) => x.counters.get('vllm:kv_cache_usage_perc') ?? 0)),
          simLagP99Ms: Math.max(...s.map((x) => x.counters.get('lagP99Ms') ?? 0)),
          gatewayLagP99Ms,
        }),
      () => {},
    );
  }, 1000);

  const boundaries: { stage: number; realMs: number; samples: Promise<ServerSample[]> }[] = [];
  const resets = scenario.reset !== undefined ? new CacheResetter(ports[scenario.reset.server] as number, scenario.reset.everyS, o.timeScale, scenario.reset.force === true) : undefined;
  const loadgen = forkChild('loadgen.ts', '--loadgen-child');
  resets?.start();
  const isTty = process.stderr.isTTY === true;
  let lastLine = 0;
  const result = await new Promise<{ stages: ClientStageStats[] }>((res, rej) => {
    loadgen.on('message', (m: LoadgenMessage) => {
      if (m.type === 'phase') boundaries.push({ stage: m.stage, realMs: m.realMs, samples: scrapeAll(ports) });
      else if (m.type === 'progress') {
        const stage = m.stage < 0 ? 'warm-up' : m.stage >= load.stages.length ? 'drain' : `stage ${m.stage + 1}/${load.stages.length} (${load.stages[m.stage]?.rate} req/s)`;
        const line = `${label} ${policy}: ${stage} sent ${m.sent} done ${m.done} in flight ${m.outstanding} | elapsed ${fmtS(performance.now() - benchStart)}`;
        if (isTty) process.stderr.write(`\r\x1b[2K${line}`);
        else if (Date.now() - lastLine > 15_000) {
          process.stderr.write(`${line}\n`);
          lastLine = Date.now();
        }
      } else if (m.type === 'stopped') {
        process.stderr.write(`${isTty ? '\n' : ''}${label} ${policy}: overloaded after ${load.stages[m.afterStage]?.rate} req/s (${m.outstanding} in flight); remaining stages skipped\n`);
      } else if (m.type === 'result') res(m);
    });
    loadgen.once('exit', (code) => (code === 0 ? undefined : rej(new Error(`load generator exited (${code})`))));
    loadgen.send({
      type: 'run',
      scenario,
      load,
      gatewayUrl: `http://127.0.0.1:${epp.gatewayPort}/v1`,
      serverUrls: ports.map((p) => `http://127.0.0.1:${p}`),
      model: DEFAULT_MODEL_NAME,
      timeScale: o.timeScale,
      earlyStopBacklogS: o.earlyStop ? 10 : 0,
      drainS: 20,
    } satisfies LoadgenRun);
  });
  if (isTty) process.stderr.write('\n');
  resets?.stop();
  clearInterval(poll);
  gwLag.disable();
  const snaps = await Promise.all(boundaries.map(async (b) => ({ ...b, s: await b.samples })));
  await epp.close();
  await stopFleetProcess(fleet);

  const stages: StageResult[] = result.stages.map((c) => {
    const start = snaps.find((b) => b.stage === c.stage);
    const end = snaps.find((b) => b.stage > c.stage);
    const delta = (key: string): number => (start && end ? sumOf(end.s, key) - sumOf(start.s, key) : Number.NaN);
    const inStage = start && end ? ticks.filter((t) => t.realMs >= start.realMs && t.realMs < end.realMs) : [];
    const shares = Object.values(c.serverShare);
    const lim = o.lagLimitMs * o.timeScale;
    const simLag = inStage.map((t) => t.simLagP99Ms);
    const gwLagList = inStage.map((t) => t.gatewayLagP99Ms);
    const simLagMean = mean(simLag);
    const gwLagMean = mean(gwLagList);
    return {
      ...c,
      hitRatio: delta('vllm:prefix_cache_hits_total') / delta('vllm:prefix_cache_queries_total'),
      preemptions: delta('vllm:num_preemptions_total'),
      waitingMean: mean(inStage.map((t) => t.waiting)),
      waitingMax: Math.max(0, ...inStage.map((t) => t.waiting)),
      kvUsageMean: mean(inStage.map((t) => t.kvUsage)),
      imbalance: shares.length === 0 ? Number.NaN : Math.max(...shares, 0) / (c.sent / scenario.servers),
      simLagP99Ms: { mean: simLagMean, max: Math.max(0, ...simLag) },
      gatewayLagP99Ms: { mean: gwLagMean, max: Math.max(0, ...gwLagList) },
      invalid: !c.skipped && (simLagMean > lim || gwLagMean > lim || c.loadgenLagP99Ms > lim),
    };
  });
  const sustained = maxSustained(stages);
  return {
    policy,
    seed: load.seed,
    stages,
    maxSustainedRate: sustained.rate,
    sustainedRateInvalid: sustained.invalid,
    wallS: (performance.now() - t0) / 1000,
    ...(resets ? { resets: resets.summary() } : {}),
  };
}

function post(url: string): Promise<number> {
  return new Promise((resolvePost, reject) => {
    const req = http.request(url, { method: 'POST', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolvePost(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/**
 * sp-reset: every `everyS` simulated seconds, `POST /reset_prefix_cache` on one server. Forced (the scenario's
 * `force`), with `?reset_running_requests=true`: the simulator preempts the running requests and resets at once,
 * as vLLM does. Otherwise the simulator refuses (409) while requests hold blocks, as vLLM does; a refused reset
 * is retried every 100 simulated ms until it is accepted or the next period starts (then that period counts as
 * missed) — what an operator's retrying script gets, and under sustained load such moments can be rare. The
 * counts (done / missed / 409s, mean delay) are in the result.
 */
class CacheResetter {
  readonly #url: string;
  readonly #periodMs: number;
  readonly #retryMs: number;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #pendingSince = 0;
  #done = 0;
  #missed = 0;
  #refused = 0;
  readonly #delays: number[] = [];
  readonly #timeScale: number;

  constructor(port: number, everyS: number, timeScale: number, force: boolean) {
    this.#url = `http://127.0.0.1:${port}/reset_prefix_cache${force ? '?reset_running_requests=true' : ''}`;
    this.#periodMs = everyS * 1000 * timeScale;
    this.#retryMs = 100 * timeScale;
    this.#timeScale = timeScale;
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#pendingSince > 0) this.#missed++;
      this.#pendingSince = Date.now();
      clearTimeout(this.#retry);
      this.#attempt();
    }, this.#periodMs);
  }

  #attempt(): void {
    void post(this.#url).then(
      (status) => {
        if (this.#pendingSince === 0) return;
        if (status === 200) {
          this.#done++;
          this.#delays.push((Date.now() - this.#pendingSince) / 1000 / this.#timeScale);
          this.#pendingSince = 0;
        } else {
          this.#refused++;
          this.#retry = setTimeout(() => this.#attempt(), this.#retryMs);
        }
      },
      () => {
        if (this.#pendingSince !== 0) this.#retry = setTimeout(() => this.#attempt(), this.#retryMs);
      },
    );
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#retry);
    if (this.#pendingSince > 0) this.#missed++;
    this.#pendingSince = 0;
  }

  summary(): ResetSummary {
    return { done: this.#done, missed: this.#missed, refused: this.#refused, meanDelayS: mean(this.#delays) };
  }
}

// ------------------------------------------------------------------ main

function writeCharts(o: Options, sc: ScenarioResult): void {
  const charts = scenarioCharts(sc);
  for (const dir of o.docs ? [o.out, join(ROOT, 'docs')] : [o.out]) {
    writeFileSync(join(dir, `benchmarks-${sc.scenario}-ttft.svg`), charts.ttft);
    writeFileSync(join(dir, `benchmarks-${sc.scenario}-throughput.svg`), charts.throughput);
  }
}

/** `--merge`: earlier results read together into `merged-<time>.{json,md}` and the charts. */
function mergeFiles(o: Options): void {
  const results = o.merge.map(({ file, scenarios }) => {
    let result: BenchResult;
    try {
      result = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
    } catch (err) {
      throw new Error(`--merge: cannot read ${file} as a routing result: ${err instanceof Error ? err.message : String(err)}`);
    }
    return scenarios === undefined ? result : pickScenarios(result, scenarios, file);
  });
  const merged = mergeResults(results);
  mkdirSync(o.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const sc of merged.scenarios) writeCharts(o, sc);
  writeFileSync(join(o.out, `merged-${stamp}.json`), JSON.stringify(merged, null, 1));
  writeFileSync(join(o.out, `merged-${stamp}.md`), markdownReport(merged) + '\n');
  process.stdout.write(markdownReport(merged) + '\n');
  process.stderr.write(`wrote ${join(o.out, `merged-${stamp}.{json,md}`)} and charts\n`);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (o.merge.length > 0) {
    mergeFiles(o);
    return;
  }
  const benchStart = performance.now();
  const load = defaultLoad({
    quick: o.quick,
    seed: o.seed,
    ...(o.rates ? { rates: o.rates } : {}),
    ...(o.stageS !== undefined ? { stageS: o.stageS } : {}),
    ...(o.warmupS !== undefined ? { warmupS: o.warmupS } : {}),
  });
  const command = `epp bench routing${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;
  const refinePass = (o.refine > 0 ? load.warmup.duration + o.refine * (load.stages[0]?.duration ?? 0) : 0) * o.timeScale;
  const worst = o.scenarios.length * o.policies.length * o.seeds * (totalDurationS(load) * o.timeScale + 5 + refinePass);
  process.stderr.write(
    `routing benchmark: ${o.scenarios.join(', ')} × ${o.policies.length} policies × ${o.seeds} seed(s), ladder ${load.stages.map((s) => s.rate).join('/')} req/s × ${load.stages[0]?.duration} s ` +
      `(warm-up ${load.warmup.rate} req/s × ${load.warmup.duration} s), ${o.refine > 0 ? `${o.refine} refinement rates per knee, ` : ''}time scale ${o.timeScale}; at most ~${Math.ceil(worst / 60)} min\n`,
  );
  const started = new Date().toISOString();
  const loadAverageAtStart = os.loadavg();
  const scenarios: ScenarioResult[] = [];
  mkdirSync(o.out, { recursive: true });
  const stamp = started.replace(/[:.]/g, '-');
  const write = (): BenchResult => {
    const result: BenchResult = {
      meta: {
        command,
        startedAt: started,
        node: process.version,
        cpus: os.cpus().length,
        loadAverageAtStart,
        timeScale: o.timeScale,
        ttftTargetS: 2,
        lagLimitMs: o.lagLimitMs,
        quick: o.quick,
        seeds: o.seeds,
        refine: o.refine,
        wallS: (performance.now() - benchStart) / 1000,
      },
      scenarios,
    };
    writeFileSync(join(o.out, `routing-${stamp}.json`), JSON.stringify(result, null, 1));
    writeFileSync(join(o.out, `routing-${stamp}.md`), markdownReport(result) + '\n');
    return result;
  };
  for (const [si, name] of o.scenarios.entries()) {
    const scenario = SCENARIOS[name] as ScenarioSpec;
    const policies: PolicyResult[] = [];
    // Every policy once per seed, in a seeded order shuffled per seed (bench/support/alternate.ts).
    await repetitions(o.policies, { repetitions: o.seeds, seed: o.seed }, async (policy, rep) => {
      const pi = o.policies.indexOf(policy);
      const seed = o.seed + rep;
      const label = `[${name} ${si + 1}/${o.scenarios.length}, seed ${rep + 1}/${o.seeds}, policy ${pi + 1}/${o.policies.length}]`;
      const seedLoad = { ...load, seed };
      const ladder = await runPolicy(scenario, seedLoad, policy, o, label, benchStart);
      const rates = refineRates(ladder.stages, o.refine);
      let r: PolicyResult = ladder;
      if (rates.length > 0) {
        process.stderr.write(`${label} ${policy}: refining the knee at ${rates.join('/')} req/s\n`);
        const refine = await runPolicy(scenario, { ...seedLoad, stages: rates.map((rate) => ({ rate, duration: load.stages[0]?.duration ?? 10 })) }, policy, o, label, benchStart);
        const combined = combinedMaxSustained(ladder.stages, refine.stages);
        r = {
          ...ladder,
          refineStages: refine.stages,
          ladderMaxSustainedRate: ladder.maxSustainedRate,
          maxSustainedRate: combined.rate,
          sustainedRateInvalid: combined.invalid,
          wallS: ladder.wallS + refine.wallS,
        };
      }
      policies.push(r);
      process.stderr.write(`${label} ${policy}: max rate with TTFT p90 ≤ 2 s = ${r.maxSustainedRate} req/s${r.sustainedRateInvalid ? ' (a stage was flagged INVALID by event-loop lag)' : ''} (${Math.round(r.wallS)} s)\n`);
    });
    policies.sort((a, b) => o.policies.indexOf(a.policy) - o.policies.indexOf(b.policy) || (a.seed ?? 0) - (b.seed ?? 0));
    const sc: ScenarioResult = { scenario: name, description: scenario.description, load, policies };
    scenarios.push(sc);
    writeCharts(o, sc);
    write();
  }
  const result = write();
  process.stdout.write(markdownReport(result) + '\n');
  process.stderr.write(`wrote ${join(o.out, `routing-${stamp}.{json,md}`)} and charts (${fmtS(performance.now() - benchStart)})\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(HERE, 'run.ts')) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench:routing failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
