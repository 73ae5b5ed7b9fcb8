/**
 * `npm run bench:replicas`: does a fleet of EPP replicas route as well as one? A simulated vLLM fleet with a
 * scarce KV cache (own process), N embedded-gateway replicas (this process), a load generator that sends every
 * request to a replica picked at random (seeded), and a real redis-server on loopback. Arms, per seed:
 *   1 replica · N unsynced · N synced over Redis · N synced with 100 ms and 1 s injected Redis lag
 * (a node:net proxy delaying each direction by half the lag). Measured per arm: the true prefix hit ratio
 * (Σ cached prompt tokens the simulators report / Σ prompt tokens), TTFT p50/p90, errors; the sync cost
 * (process CPU vs the unsynced arm, published bytes/s, apply lag p50/p99 from epp_ha_sync_lag_seconds);
 * request-path time (prefix/in-flight producers + scheduler, per request) p50/p99 and event-loop delay p99.
 * Reported as medians over seeds and ratios to the 1-replica arm.
 *
 *   npm run bench:replicas -- [--replicas 3] [--seeds 3] [--rate 12] [--seconds 20] [--json out.json]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { silentLogger } from '../src/observability/logger.ts';
import { ApproxPrefixCacheProducer } from '../src/plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { InFlightLoadProducer } from '../src/plugins/requestcontrol/inflight-load-producer/index.ts';
import { Scheduler } from '../src/runtime/scheduler.ts';
import { startEpp } from '../src/server/bootstrap.ts';
import type { RunningEpp } from '../src/server/bootstrap-options.ts';
import { sharedPrefixPrompts } from '../src/sim/shared-prefix-workload.ts';
import { createRandomSource } from '../src/util/random.ts';
import type { FleetReply, FleetStart } from './routing/fleet-process.ts';
import { RedisServer } from '../test/support/redis.ts';
import { quantiles } from './routing/stats.ts';

const { values: args } = parseArgs({
  options: {
    replicas: { type: 'string', default: '3' },
    seeds: { type: 'string', default: '3' },
    rate: { type: 'string', default: '12' },
    seconds: { type: 'string', default: '20' },
    servers: { type: 'string', default: '4' },
    'kv-blocks': { type: 'string', default: '320' },
    json: { type: 'string' },
    svg: { type: 'string' },
    'from-json': { type: 'string' },
  },
});
const N = Number(args.replicas);
const SEEDS = Number(args.seeds);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const SERVERS = Number(args.servers);
const KV_BLOCKS = Number(args['kv-blocks']);
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

// ---------------------------------------------------------------- request-path timing (bench-only wrappers)

let pathMs = new WeakMap<object, number>();
let pathRequests: object[] = [];
function timed<T extends object>(proto: T, method: keyof T): void {
  const original = proto[method] as unknown as (...a: unknown[]) => unknown;
  (proto as Record<string, unknown>)[method as string] = function (this: unknown, ...a: unknown[]) {
    const t0 = performance.now();
    const out = original.apply(this, a);
    const req = a[0] as object;
    const prev = pathMs.get(req);
    if (prev === undefined) pathRequests.push(req);
    pathMs.set(req, (prev ?? 0) + performance.now() - t0);
    return out;
  };
}
timed(ApproxPrefixCacheProducer.prototype, 'prepareData');
timed(ApproxPrefixCacheProducer.prototype, 'preRequest');
timed(InFlightLoadProducer.prototype, 'prepareData');
timed(InFlightLoadProducer.prototype, 'preRequest');
timed(Scheduler.prototype, 'schedule');

// ---------------------------------------------------------------- infrastructure

/** Forwards to `target`, delaying every chunk by `delayMs` in each direction (order kept). */
async function delayProxy(target: number, delayMs: number): Promise<{ port: number; server: Server }> {
  const server = createServer((c) => {
    const u = createConnection({ port: target, host: '127.0.0.1' });
    c.on('data', (d) => setTimeout(() => u.write(d), delayMs));
    u.on('data', (d) => setTimeout(() => c.write(d), delayMs));
    const end = () => {
      c.destroy();
      u.destroy();
    };
    c.on('error', end).on('close', end);
    u.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, server };
}

async function startFleetProcess(seed: number): Promise<{ child: ChildProcess; endpoints: string[] }> {
  const child = fork(new URL('./routing/fleet-process.ts', import.meta.url), ['--fleet-child'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const ready = new Promise<FleetReply>((r) => child.once('message', (m) => r(m as FleetReply)));
  child.send({ type: 'start', servers: SERVERS, timeScale: 1, serverOptions: { kvCacheSize: KV_BLOCKS, maxModelLen: 2048, seed, maxNumSeqs: 64 }, perServer: {} } satisfies FleetStart);
  const m = await ready;
  if (m.type !== 'ready') throw new Error('fleet did not start');
  return { child, endpoints: m.ports.map((p) => `127.0.0.1:${p}`) };
}

async function stopFleet(child: ChildProcess): Promise<void> {
  const done = new Promise((r) => child.once('exit', r));
  child.send({ type: 'close' });
  await done;
}

function config(redisUrl: string | undefined): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
- type: inflight-load-producer
- type: prefix-cache-scorer
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: token-load-scorer
- type: metrics-data-source
- type: core-metrics-extractor
${redisUrl ? `- name: ha\n  type: redis-cross-replica-syncer\n  parameters:\n    url: ${redisUrl}\n    commandTimeoutMs: 3000\n` : ''}schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: token-load-scorer
    weight: 1
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
${redisUrl ? '  crossReplicaSyncerPluginRef: ha\n  crossReplicaSyncInterval: 50ms\n' : ''}`;
}

// ---------------------------------------------------------------- one arm

interface ArmResult {
  readonly arm: string;
  readonly seed: number;
  readonly hitRatio: number;
  readonly ttftP50Ms: number;
  readonly ttftP90Ms: number;
  readonly errors: number;
  readonly sent: number;
  readonly cpuMsPerS: number;
  readonly publishedBytesPerS: number;
  readonly lagP50Ms: number;
  readonly lagP99Ms: number;
  readonly pathP50Us: number;
  readonly pathP99Us: number;
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
}

async function histogramQuantileMs(epps: RunningEpp[], q: number): Promise<number> {
  // From the epp_ha_sync_lag_seconds buckets summed over replicas: the upper bound of the bucket holding q.
  // Read through prom-client's get(), which runs the collect hook that folds the aggregated observations in.
  const cumulative = new Map<number, number>();
  for (const e of epps) {
    const metric = e.metrics.registry.getSingleMetric('epp_ha_sync_lag_seconds');
    if (metric === undefined) continue;
    for (const v of (await metric.get()).values) {
      if (!((v as { metricName?: string }).metricName ?? '').endsWith('_bucket')) continue;
      const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
      cumulative.set(le, (cumulative.get(le) ?? 0) + v.value);
    }
  }
  const count = cumulative.get(Number.POSITIVE_INFINITY) ?? 0;
  if (count === 0) return Number.NaN;
  for (const le of [...cumulative.keys()].sort((a, b) => a - b)) if ((cumulative.get(le) as number) >= q * count) return le * 1000;
  return Number.POSITIVE_INFINITY;
}

async function runArm(arm: string, replicas: number, redisUrl: string | undefined, seed: number): Promise<ArmResult> {
  const { child, endpoints } = await startFleetProcess(seed);
  const epps: RunningEpp[] = [];
  for (let i = 0; i < replicas; i++) {
    epps.push(
      await startEpp({
        grpcPort: 0,
        extProc: false,
        grpcHealthPort: -1,
        secureServing: false,
        gateway: { port: 0, host: '127.0.0.1' },
        config: { text: config(redisUrl), origin: `${arm} replica ${i}` },
        discovery: { endpoints, refreshIntervalMs: 50 },
        logger: silentLogger(),
        random: createRandomSource(seed * 31 + i),
        shutdownGraceMs: 2000,
      }),
    );
  }
  for (const e of epps) await e.sync?.ready;
  await new Promise((r) => setTimeout(r, 300)); // first scrapes
  const { prompts } = sharedPrefixPrompts({ groups: 48, promptsPerGroup: 64, systemPromptTokens: 512, questionTokens: 48, seed, order: 'shuffled' });
  const rnd = createRandomSource(seed);
  pathMs = new WeakMap();
  pathRequests = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const total = Math.round(RATE * SECONDS);
  let cached = 0;
  let promptTokens = 0;
  let errors = 0;
  const ttft: number[] = [];
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const epp = epps[Math.floor(rnd.next() * epps.length)] as RunningEpp;
    const started = performance.now();
    inflight.push(
      (async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${epp.gatewayPort}/v1/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: MODEL, prompt: prompts[i % prompts.length], max_tokens: 8, stream: true, stream_options: { include_usage: true } }),
          });
          if (res.status !== 200 || !res.body) {
            errors++;
            await res.arrayBuffer().catch(() => undefined);
            return;
          }
          let first = true;
          let text = '';
          for await (const chunk of res.body) {
            if (first) {
              ttft.push(performance.now() - started);
              first = false;
            }
            text += Buffer.from(chunk as Uint8Array).toString();
          }
          const m = /"prompt_tokens":(\d+).*?"cached_tokens":(\d+)/.exec(text);
          if (m) {
            promptTokens += Number(m[1]);
            cached += Number(m[2]);
          } else errors++;
        } catch {
          errors++;
        }
      })(),
    );
  }
  await Promise.all(inflight);
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  // The first requests of an arm pay JIT warm-up on a fresh replica: leave the first 10 % out.
  const path = quantiles(pathRequests.slice(Math.floor(pathRequests.length / 10)).map((r) => pathMs.get(r) ?? 0));
  const published = epps.reduce((s, e) => s + (e.sync?.stats.publishedBytes ?? 0), 0);
  const q = quantiles(ttft);
  const result: ArmResult = {
    arm,
    seed,
    hitRatio: promptTokens > 0 ? cached / promptTokens : Number.NaN,
    ttftP50Ms: q.p50,
    ttftP90Ms: q.p90,
    errors,
    sent: total,
    cpuMsPerS: (cpu.user + cpu.system) / 1000 / elapsedS,
    publishedBytesPerS: published / elapsedS,
    lagP50Ms: await histogramQuantileMs(epps, 0.5),
    lagP99Ms: await histogramQuantileMs(epps, 0.99),
    pathP50Us: path.p50 * 1000,
    pathP99Us: path.p99 * 1000,
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
  };
  await Promise.all(epps.map((e) => e.close()));
  await stopFleet(child);
  return result;
}

// ---------------------------------------------------------------- main

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? (s[(s.length - 1) >> 1] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

const results: ArmResult[] = [];
const armNames = ['1 replica', `${N} unsynced`, `${N} synced`, `${N} synced +100 ms`, `${N} synced +1 s`];
if (args['from-json']) {
  results.push(...(JSON.parse(readFileSync(args['from-json'], 'utf8')) as { results: ArmResult[] }).results);
} else {
  const redis = await RedisServer.start();
  const flush = async (): Promise<void> => {
    const c = redis.client();
    await c.flushall();
    c.disconnect();
  };
  const lag100 = await delayProxy(redis.port, 50);
  const lag1000 = await delayProxy(redis.port, 500);
  const arms: Array<[string, number, string | undefined]> = [
    ['1 replica', 1, undefined],
    [`${N} unsynced`, N, undefined],
    [`${N} synced`, N, redis.url],
    [`${N} synced +100 ms`, N, `redis://127.0.0.1:${lag100.port}`],
    [`${N} synced +1 s`, N, `redis://127.0.0.1:${lag1000.port}`],
  ];

  try {
    for (let seed = 1; seed <= SEEDS; seed++) {
      for (const [arm, n, url] of arms) {
        await flush();
        const r = await runArm(arm, n, url, seed);
        results.push(r);
        process.stderr.write(`seed ${seed} ${arm}: hit ${r.hitRatio.toFixed(3)} ttft p50 ${r.ttftP50Ms.toFixed(0)} p90 ${r.ttftP90Ms.toFixed(0)} ms, errors ${r.errors}/${r.sent}, path p99 ${r.pathP99Us.toFixed(0)} µs\n`);
      }
    }
  } finally {
    await redis.kill();
    lag100.server.close();
    lag1000.server.close();
  }


}
const base = results.filter((r) => r.arm === '1 replica');
const unsynced = results.filter((r) => r.arm === `${N} unsynced`);
const m = (rs: ArmResult[], k: keyof ArmResult): number => median(rs.map((r) => r[k] as number));
const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '—');
const lines = [
  `Replicas benchmark: ${SERVERS} simulated servers × ${KV_BLOCKS} KV blocks, ${RATE} req/s for ${SECONDS} s, 48 prefix groups × 512-token system prompts, replica picked at random; medians over ${SEEDS} seeds.`,
  '',
  '| arm | hit ratio | × 1 replica | TTFT p50 ms | × | TTFT p90 ms | × | errors | published kB/s | apply lag p50 / p99 ms | request path p50 / p99 µs | loop delay p99 / max ms | CPU ms/s (process) |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const arm of armNames) {
  const rs = results.filter((r) => r.arm === arm);
  lines.push(
    `| ${arm} | ${f(m(rs, 'hitRatio'), 3)} | ${f(m(rs, 'hitRatio') / m(base, 'hitRatio'))} | ${f(m(rs, 'ttftP50Ms'), 0)} | ${f(m(rs, 'ttftP50Ms') / m(base, 'ttftP50Ms'))} | ${f(m(rs, 'ttftP90Ms'), 0)} | ${f(m(rs, 'ttftP90Ms') / m(base, 'ttftP90Ms'))} | ` +
      `${rs.reduce((s, r) => s + r.errors, 0)} | ${f(m(rs, 'publishedBytesPerS') / 1000, 1)} | ${f(m(rs, 'lagP50Ms'), 1)} / ${f(m(rs, 'lagP99Ms'), 1)} | ${f(m(rs, 'pathP50Us'), 0)} / ${f(m(rs, 'pathP99Us'), 0)} | ${f(m(rs, 'loopDelayP99Ms'), 1)} / ${f(m(rs, 'loopDelayMaxMs'), 1)} | ${f(m(rs, 'cpuMsPerS'), 0)} |`,
  );
}
const synced = results.filter((r) => r.arm === `${N} synced`);
lines.push(
  '',
  `Sync cost per replica ≈ (CPU synced − CPU unsynced) / ${N} = ${f((m(synced, 'cpuMsPerS') - m(unsynced, 'cpuMsPerS')) / N / 10, 1)} % of a core; request path p99 synced − unsynced = ${f(m(synced, 'pathP99Us') - m(unsynced, 'pathP99Us'), 0)} µs.`,
);
process.stdout.write(`${lines.join('\n')}\n`);
if (args.json) writeFileSync(args.json, JSON.stringify({ args, results }, null, 2));
if (args.svg) writeFileSync(args.svg, barChart(armNames.map((arm) => {
  const rs = results.filter((r) => r.arm === arm);
  return { arm, hit: m(rs, 'hitRatio') / m(base, 'hitRatio'), p50: m(rs, 'ttftP50Ms') / m(base, 'ttftP50Ms'), p90: m(rs, 'ttftP90Ms') / m(base, 'ttftP90Ms') };
})));

/** Grouped bars: hit ratio and TTFT p50/p90 of every arm as ratios to the 1-replica arm. */
function barChart(rows: Array<{ arm: string; hit: number; p50: number; p90: number }>): string {
  const W = 720;
  const H = 320;
  const left = 50;
  const bottom = 260;
  const top = 40;
  const max = Math.max(1.4, ...rows.flatMap((r) => [r.hit, r.p50, r.p90].filter(Number.isFinite)));
  const y = (v: number): number => bottom - ((bottom - top) * v) / max;
  const group = (W - left - 20) / rows.length;
  const colors = ['#1f77b4', '#ff7f0e', '#d62728'];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">Replicas: hit ratio and TTFT as × the 1-replica arm (medians over seeds)</text>`,
    `<line x1="${left}" y1="${y(1)}" x2="${W - 10}" y2="${y(1)}" stroke="#888" stroke-dasharray="4 3"/>`,
    `<text x="${left - 4}" y="${y(1) + 4}" text-anchor="end">1.0</text>`,
    `<line x1="${left}" y1="${bottom}" x2="${W - 10}" y2="${bottom}" stroke="#000"/>`,
  ];
  rows.forEach((r, i) => {
    const x0 = left + i * group + 10;
    const bw = (group - 30) / 3;
    [r.hit, r.p50, r.p90].forEach((v, k) => {
      if (!Number.isFinite(v)) return;
      out.push(`<rect x="${x0 + k * bw}" y="${y(v)}" width="${bw - 2}" height="${bottom - y(v)}" fill="${colors[k]}"/>`);
      out.push(`<text x="${x0 + k * bw + bw / 2}" y="${y(v) - 3}" text-anchor="middle" font-size="9">${v.toFixed(2)}</text>`);
    });
    out.push(`<text x="${x0 + (group - 30) / 2}" y="${bottom + 16}" text-anchor="middle">${r.arm}</text>`);
  });
  ['hit ratio', 'TTFT p50', 'TTFT p90'].forEach((name, k) => {
    out.push(`<rect x="${left + k * 110}" y="${H - 22}" width="10" height="10" fill="${colors[k]}"/><text x="${left + k * 110 + 14}" y="${H - 13}">${name}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
