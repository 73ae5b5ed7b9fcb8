/**
 * Flow-control benchmark.
 *
 * 1. Enqueue → dispatch overhead. One op = `director.route()` for a small chat request on an unsaturated pool
 *    (16 endpoints, random picker, concurrency-detector), from the call until the routing decision, then the
 *    request is completed (its in-flight slot released) before the next op. Run with the `flowControl` gate
 *    (every request goes through the flow controller: enqueue, dispatch cycle, in-flight accounting) and
 *    without it (default admission) in the same process, interleaved in rounds, so the difference is the
 *    flow controller's cost. Also the engine alone: `enqueueAndWait()` → resolved, on the same pool.
 *    Medians and p99 in microseconds.
 * 2. Idle CPU with 1,000 queued requests: the pool saturated (every slot taken), 1,000 requests queued
 *    (TTL 10 min), then the process's CPU share of one core over a quiet window — (a) with nothing happening,
 *    (b) with metrics arriving as the data layer would deliver them (16 endpoints × 20 commits/s, each a
 *    wake-up of the dispatcher). Dispatch cycles in the window are counted.
 * Left out: the ext_proc/gRPC and HTTP transport (measured by bench:response-path and bench:gateway), scraping
 * (bench:scrape), and the model servers (no sleeps stand in for them).
 *
 * Usage: npm run bench:flow-control [-- --ops 20000 --rounds 5 --idle-ms 3000]
 */
import { setMaxListeners } from 'node:events';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Datastore, parseStaticEndpoints } from '../src/datalayer/index.ts';
import { EMPTY_METRICS } from '../src/framework/datalayer.ts';
import type { InferenceRequest } from '../src/framework/request.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { startEpp, type RunningEpp } from '../src/server/epp.ts';
import { createRandomSource } from '../src/util/random.ts';

const { values: args } = parseArgs({
  options: { ops: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' }, 'idle-ms': { type: 'string', default: '3000' } },
});
const OPS = Number(args.ops);
const ROUNDS = Number(args.rounds);
const IDLE_MS = Number(args['idle-ms']);
const ENDPOINTS = 16;

function config(flowControl: boolean, maxConcurrency: number): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [${flowControl ? 'flowControl' : ''}]
plugins:
- type: random-picker
- type: concurrency-detector
  parameters: {maxConcurrency: ${maxConcurrency}}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: random-picker}]
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

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
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
  const fc: number[] = [];
  const base: number[] = [];
  const engine: number[] = [];
  await routeSamples(withFc, 2000); // warm-up
  await routeSamples(without, 2000);
  await engineSamples(withFc, 2000);
  const per = Math.ceil(OPS / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    base.push(...(await routeSamples(without, per)));
    fc.push(...(await routeSamples(withFc, per)));
    engine.push(...(await engineSamples(withFc, per)));
  }
  const m = { base: quantile(base, 0.5), fc: quantile(fc, 0.5) };
  console.log(`\nEnqueue → dispatch overhead (${fc.length} ops per variant, ${ROUNDS} interleaved rounds, ${ENDPOINTS} endpoints, unsaturated)`);
  console.log(`  route(), default admission (baseline): median ${m.base.toFixed(1)} µs   p99 ${quantile(base, 0.99).toFixed(1)} µs`);
  console.log(`  route(), flow control:                 median ${m.fc.toFixed(1)} µs   p99 ${quantile(fc, 0.99).toFixed(1)} µs`);
  console.log(`  flow control adds:                     median ${(m.fc - m.base).toFixed(1)} µs   (${(m.fc / m.base).toFixed(2)}× the baseline route())`);
  console.log(`  engine alone, enqueueAndWait → resolved: median ${quantile(engine, 0.5).toFixed(1)} µs   p99 ${quantile(engine, 0.99).toFixed(1)} µs`);
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
  const ds = e.director.store as Datastore;
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

console.log(`flow-control bench — node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}`);
await overhead();
await idle();
