/**
 * Flow-control benchmark.
 *
 * 1. Enqueue → dispatch overhead. One op = `director.route()` for a small chat request on an unsaturated pool
 *    (16 endpoints, the micro-benchmarks' default plugins (bench/support/default-plugins.ts), concurrency-detector), from the call until
 *    the routing decision, then the request is completed (its in-flight slot released) before the next op. Run
 *    with the `flowControl` gate (every request goes through the flow controller: enqueue, dispatch cycle,
 *    in-flight accounting) and without it (default admission) in the same process, so the difference is the
 *    flow controller's cost. Also the engine alone: `enqueueAndWait()` → resolved, on the same pool. Each
 *    variant is warmed until its median stops moving, then the variants run once per repetition (≥ 3) in a
 *    seeded shuffled order; medians and p99 in microseconds, as median [min–max] over repetitions.
 * 2. Idle CPU with 1,000 queued requests: the pool saturated (every slot taken), 1,000 requests queued
 *    (TTL 10 min), then the process's CPU share of one core over a quiet window — (a) with nothing happening,
 *    (b) with metrics arriving as the data layer would deliver them (16 endpoints × 20 commits/s, each a
 *    wake-up of the dispatcher). Dispatch cycles in the window are counted.
 * Left out: the ext_proc/gRPC and HTTP transport (measured by bench:response-path and bench:gateway), scraping
 * (bench:scrape), and the model servers (no sleeps stand in for them).
 *
 * Usage: npm run bench:flow-control [-- --ops 20000 --reps 5 --seed 1 --idle-ms 3000]
 */
import { setMaxListeners } from 'node:events';
import { parseArgs } from 'node:util';
import { Datastore, parseStaticEndpoints } from '../src/datalayer/index.ts';
import { EMPTY_METRICS } from '../src/framework/datalayer.ts';
import type { InferenceRequest } from '../src/framework/request.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { startEpp } from '../src/server/bootstrap.ts';
import type { RunningEpp } from '../src/server/bootstrap-options.ts';
import { createRandomSource } from '../src/util/random.ts';
import { describeWarmUp, repetitions, warmUntilSteady } from './support/alternate.ts';
import { BENCH_DEFAULT_PLUGINS, benchConfigText } from './support/default-plugins.ts';
import { printRunInfo } from './support/run-info.ts';
import { formatSpread, median, percentiles, spread } from './support/stats.ts';

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '20000' },
    reps: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    'idle-ms': { type: 'string', default: '3000' },
  },
});
const OPS = Number(args.ops);
const REPS = Math.max(3, Number(args.reps));
const SEED = Number(args.seed);
const IDLE_MS = Number(args['idle-ms']);
const ENDPOINTS = 16;

/** The micro-benchmarks' default plugins (`approx-322`) plus the concurrency detector as saturation detector. */
function config(flowControl: boolean, maxConcurrency: number): string {
  const preset = benchConfigText(BENCH_DEFAULT_PLUGINS).replace(
    /^plugins:\n/m,
    `plugins:\n- type: concurrency-detector\n  parameters: {maxConcurrency: ${maxConcurrency}}\n`,
  );
  return `${preset}featureGates: [${flowControl ? 'flowControl' : ''}]
saturationDetector: {pluginRef: concurrency-detector}
${flowControl ? 'flowControl: {defaultRequestTTL: 10m}\n' : ''}`;
}

function store(): Datastore {
  const s = new Datastore();
  s.replaceAll(parseStaticEndpoints(Array.from({ length: ENDPOINTS }, (_, i) => `127.0.1.${i + 1}:8000`), 'default'));
  s.setPoolKnown(true);
  return s;
}

async function epp(flowControl: boolean, maxConcurrency = 100): Promise<RunningEpp> {
  return startEpp({
    grpcPort: 0,
    grpcHealthPort: -1,
    host: '127.0.0.1',
    secureServing: false,
    store: store(),
    logger: silentLogger(),
    random: createRandomSource(1),
    shutdownGraceMs: 100,
    config: { text: config(flowControl, maxConcurrency), origin: 'bench' },
  });
}

const BODY = new TextEncoder().encode(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello there' }] }));
let seq = 0;
function input(signal: AbortSignal) {
  return { headers: { 'content-type': 'application/json' }, requestId: `r${seq++}`, body: BODY, path: '/v1/chat/completions', proxyMetadata: {}, receivedAt: Date.now(), signal };
}

async function routeSamples(e: RunningEpp, n: number): Promise<number[]> {
  const out: number[] = new Array(n);
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const d = await e.director.route(input(ac.signal));
    out[i] = (performance.now() - t0) * 1000;
    await d.response.abort('bench: done');
  }
  return out;
}

async function engineSamples(e: RunningEpp, n: number): Promise<number[]> {
  const fc = e.admission.flowController;
  if (!fc) throw new Error('flow control is off');
  const out: number[] = new Array(n);
  const signal = new AbortController().signal;
  const template = { incomingModel: 'm', targetModel: 'm', body: { apiType: 'chat-completions' as const, payload: {}, stream: false }, headers: {}, priority: 0, fairnessId: 'default-flow', objectiveKey: '', requestSizeBytes: BODY.length, receivedAt: 0, schedulingResult: undefined, signal };
  for (let i = 0; i < n; i++) {
    const r: InferenceRequest = { ...template, requestId: `e${i}` };
    const t0 = performance.now();
    await fc.enqueueAndWait(r, signal);
    out[i] = (performance.now() - t0) * 1000;
    e.admission.admission.released(r);
  }
  return out;
}

async function overhead(): Promise<void> {
  const withFc = await epp(true);
  const without = await epp(false);
  type Variant = 'route/default-admission' | 'route/flow-control' | 'engine';
  const sample = (v: Variant, n: number): Promise<number[]> =>
    v === 'engine' ? engineSamples(withFc, n) : routeSamples(v === 'route/flow-control' ? withFc : without, n);
  const variants: Variant[] = ['route/default-admission', 'route/flow-control', 'engine'];
  const warm: string[] = [];
  for (const v of variants) {
    const w = await warmUntilSteady(async () => median(await sample(v, 1000)), { minRounds: 3, maxRounds: 30, tolerance: 0.05 });
    warm.push(`${v} ${describeWarmUp(w)}`);
  }
  const per = Math.ceil(OPS / REPS);
  const reps = await repetitions(variants, { repetitions: REPS, seed: SEED }, async (v) => {
    const [p50, p99] = percentiles(await sample(v, per), [50, 99]) as [number, number];
    return { p50, p99 };
  });
  const base = reps.get('route/default-admission') as Array<{ p50: number; p99: number }>;
  const fc = reps.get('route/flow-control') as Array<{ p50: number; p99: number }>;
  const engine = reps.get('engine') as Array<{ p50: number; p99: number }>;
  const col = (rs: Array<{ p50: number; p99: number }>) => `median ${formatSpread(spread(rs.map((r) => r.p50)), 1)} µs   p99 ${formatSpread(spread(rs.map((r) => r.p99)), 1)} µs`;
  console.log(`\nEnqueue → dispatch overhead (${per} ops per variant per repetition, ${REPS} repetitions in a shuffled order, ${ENDPOINTS} endpoints, unsaturated)`);
  console.log(`  # warm-up (median of 1000 ops within 5 % for 2 rounds): ${warm.join('; ')}`);
  console.log('  # median [min–max] of the per-repetition figures');
  console.log(`  route(), default admission (baseline): ${col(base)}`);
  console.log(`  route(), flow control:                 ${col(fc)}`);
  console.log(
    `  flow control adds:                     median ${formatSpread(spread(fc.map((r, i) => r.p50 - (base[i] as { p50: number }).p50)), 1)} µs   ` +
      `(${formatSpread(spread(fc.map((r, i) => r.p50 / (base[i] as { p50: number }).p50)), 2)}× the baseline route())`,
  );
  console.log(`  engine alone, enqueueAndWait → resolved: ${col(engine)}`);
  await withFc.close();
  await without.close();
}

async function idle(): Promise<void> {
  const e = await epp(true, 1);
  const fc = e.admission.flowController!;
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // one signal shared by the 1,000 queued requests of this bench
  // Take every slot (16 endpoints × 1): the pool is saturated.
  const held = [];
  for (let i = 0; i < ENDPOINTS; i++) held.push(await e.director.route(input(ac.signal)));
  const queued = Array.from({ length: 1000 }, () => e.director.route(input(ac.signal)).catch(() => undefined));
  await new Promise((r) => setTimeout(r, 50));
  if (fc.stats().queued !== 1000) throw new Error(`expected 1000 queued, got ${fc.stats().queued}`);

  const window = async (label: string) => {
    const c0 = fc.stats().cycles;
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const u = process.cpuUsage(u0);
    const wall = performance.now() - t0;
    const cpu = ((u.user + u.system) / 1000 / wall) * 100;
    console.log(`  ${label}: ${cpu.toFixed(2)} % of one core over ${(wall / 1000).toFixed(1)} s, ${fc.stats().cycles - c0} dispatch cycles, ${fc.stats().queued} still queued`);
  };
  console.log(`\nIdle with 1,000 queued requests (pool saturated: ${ENDPOINTS} endpoints × 1 slot)`);
  await window('nothing happening                  ');
  const ds = e.store as Datastore;
  const timers = Array.from({ length: ENDPOINTS }, (_, i) =>
    setInterval(() => ds.commitMetrics(`127.0.1.${i + 1}:8000`, { ...EMPTY_METRICS, updateTime: Date.now() }), 50),
  );
  await window('metrics refresh 16 × 20/s (wake-ups)');
  for (const t of timers) clearInterval(t);
  ac.abort();
  for (const d of held) await d.response.abort('bench: done');
  await Promise.all(queued);
  await e.close();
}

printRunInfo('bench:flow-control', ['EPPs in this process with approx-322 (bench/support/default-plugins.ts) + concurrency-detector; with and without the flowControl gate']);
await overhead();
await idle();
