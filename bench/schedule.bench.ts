/**
 * Scheduling benchmark: the cost of one scheduling decision with upstream's default profile, against a
 * random pick measured in the same run.
 *
 * One op ("default") is what the director does per request between admission and preRequest:
 *   build the per-request candidates (endpoint snapshot + fresh attribute map) for N endpoints,
 *   run `approx-prefix-cache-producer.prepareData` (hash a ~3 KB prompt into 16-token blocks, match them
 *   against a warm index), then `Scheduler.schedule` with queue-scorer ×2, kv-cache-utilization-scorer ×2,
 *   prefix-cache-scorer ×3 and max-score-picker under single-profile-handler.
 * The baseline op ("random") builds the same candidates and schedules with a profile holding only
 * `random-picker` (no producer, no scorers): the floor of the scheduling path.
 *
 * Method: every (size, variant) pair is set up first, then warmed until its median stops moving (not "smaller
 * sizes run first and warm the code": at 100 endpoints that read 20 µs after the smaller sizes and 132 µs when
 * 100 ran first), then measured in ≥ 3 repetitions with the pairs in a seeded shuffled order per repetition.
 * Each cell is the median of the per-repetition medians, with their min–max.
 *
 * Left out on purpose: request parsing, admission, preRequest (index update), metrics recording (no
 * EppMetrics passed) and any I/O. No sleeps. Times are medians over batches; allocation is approximate:
 * heap growth over a run with no GC in between (run with --expose-gc and a large young generation, which the
 * script arranges by re-executing itself).
 *
 * The warm index holds each of 16 system prompts on 4 endpoints; `--hot-prefix` puts every system prompt on
 * every endpoint instead (the worst case for matching: every block has N holders).
 *
 * Usage: npm run bench:schedule [-- --quick] [--hot-prefix] [--sizes 5,25,100,500] [--reps 5] [--seed 1]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Endpoint } from '../src/framework/datalayer.ts';
import type { InferenceRequest } from '../src/framework/request.ts';
import type { Candidate } from '../src/framework/scheduling.ts';
import {
  ApproxPrefixCacheProducer,
  approxPrefixCacheProducerFactory,
} from '../src/plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { MaxScorePicker } from '../src/plugins/scheduling/picker/max-score-picker/index.ts';
import { RandomPicker } from '../src/plugins/scheduling/picker/random-picker/index.ts';
import { SingleProfileHandler } from '../src/plugins/scheduling/profile/single-profile-handler/index.ts';
import { KvCacheUtilizationScorer } from '../src/plugins/scheduling/scorer/kv-cache-utilization-scorer/index.ts';
import { PrefixCacheScorer } from '../src/plugins/scheduling/scorer/prefix-cache-scorer/index.ts';
import { QueueScorer } from '../src/plugins/scheduling/scorer/queue-scorer/index.ts';
import { makeEndpoint, makeHandle, makeRequest, makeSchedulingResult } from '../test/support/plugin-fixtures.ts';
import { Scheduler } from '../src/runtime/scheduler.ts';
import { Xoshiro128StarStar } from '../src/util/random.ts';
import { describeWarmUp, repetitions, warmUntilSteady } from './support/alternate.ts';
import { printRunInfo } from './support/run-info.ts';
import { formatSpread, percentiles, spread } from './support/stats.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  // Re-run with a collectable heap and a young generation large enough that a measuring run triggers no GC.
  const script = fileURLToPath(import.meta.url);
  const res = spawnSync(
    process.execPath,
    ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', ...process.execArgv, script, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(res.status ?? 1);
}

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'hot-prefix': { type: 'boolean', default: false },
    sizes: { type: 'string', default: '5,25,100,500' },
    reps: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
  },
});
const QUICK = args.quick as boolean;
const HOT_PREFIX = args['hot-prefix'] as boolean;
const SIZES = (args.sizes as string).split(',').map(Number);
const REPS = Math.max(3, Number(args.reps));
const SEED = Number(args.seed);
const BATCHES = QUICK ? 60 : 300;
printRunInfo('bench:schedule', ['scheduling decision, default profile vs random pick, same process']);
const SYSTEM_PROMPTS = 16;
const REQUESTS = 64;
const random = new Xoshiro128StarStar(2024);

function fleet(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) =>
    makeEndpoint(
      `pod-${i}-rank-0`,
      {
        waitingQueueSize: Math.floor(random.next() * 20),
        runningRequestsSize: Math.floor(random.next() * 64),
        kvCacheUsagePercent: random.next(),
        cacheBlockSize: 16,
        cacheNumBlocks: 30_000,
        updateTime: 1,
      },
      { address: `10.1.${i >> 8}.${i & 255}`, port: 8000 },
    ),
  );
}

function systemPrompt(k: number): string {
  return `System prompt #${k}: you are an assistant for team ${k}. `.repeat(60); // ≈ 3 KB
}

function requests(): InferenceRequest[] {
  return Array.from({ length: REQUESTS }, (_, i) =>
    makeRequest({
      requestId: `r${i}`,
      payload: { model: 'llama', prompt: `${systemPrompt(i % SYSTEM_PROMPTS)}Question ${i}: what is ${i} squared?` },
      targetModel: 'llama',
    }),
  );
}

function candidatesFor(endpoints: readonly Endpoint[]): Candidate[] {
  const out: Candidate[] = new Array(endpoints.length);
  for (let i = 0; i < endpoints.length; i++) out[i] = { endpoint: endpoints[i] as Endpoint, attributes: new Map() };
  return out;
}

interface Op {
  run(request: InferenceRequest): unknown;
}

function setup(n: number): { def: Op; rnd: Op; reqs: InferenceRequest[] } {
  const endpoints = fleet(n);
  const handle = makeHandle({ endpoints, random });
  const producer = approxPrefixCacheProducerFactory('approx-prefix-cache-producer', undefined, handle) as ApproxPrefixCacheProducer;
  const reqs = requests();
  // Warm index: each system prompt cached on a few endpoints (or on all, with --hot-prefix), as after traffic.
  const placements = HOT_PREFIX ? SYSTEM_PROMPTS * n : SYSTEM_PROMPTS * 4;
  for (let k = 0; k < placements; k++) {
    const warm = makeRequest({ payload: { model: 'llama', prompt: systemPrompt(k % SYSTEM_PROMPTS) }, targetModel: 'llama' });
    const cands = candidatesFor(endpoints);
    producer.prepareData(warm, cands);
    const target = HOT_PREFIX ? Math.floor(k / SYSTEM_PROMPTS) : (k * 7) % n;
    producer.preRequest(warm, makeSchedulingResult({ default: [cands[target] as Candidate] }));
  }
  const defaultScheduler = new Scheduler(new SingleProfileHandler(), [
    {
      name: 'default',
      filters: [],
      scorers: [
        { scorer: new QueueScorer(), weight: 2 },
        { scorer: new KvCacheUtilizationScorer(), weight: 2 },
        { scorer: new PrefixCacheScorer('prefix-cache-scorer', handle.logger), weight: 3 },
      ],
      picker: new MaxScorePicker('max-score-picker', random),
    },
  ]);
  const randomScheduler = new Scheduler(new SingleProfileHandler(), [
    { name: 'default', filters: [], scorers: [], picker: new RandomPicker('random-picker', random) },
  ]);
  return {
    reqs,
    def: {
      run(request) {
        const cands = candidatesFor(endpoints);
        producer.prepareData(request, cands);
        return defaultScheduler.schedule(request, cands);
      },
    },
    rnd: {
      run(request) {
        return randomScheduler.schedule(request, candidatesFor(endpoints));
      },
    },
  };
}

interface Result {
  readonly medianUs: number;
  readonly p90Us: number;
}

/** One measuring window: `batches` timed batches of `batch` ops; per-op median and p90 over the batches. */
function window(op: Op, reqs: readonly InferenceRequest[], n: number, batches: number): Result {
  // Batch so that one timed batch lasts ≈ 1 ms or more.
  const batch = Math.max(1, Math.round(400 / n));
  const perOpUs: number[] = new Array(batches);
  let sink: unknown;
  let r = 0;
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink = op.run(reqs[r++ % reqs.length] as InferenceRequest);
    perOpUs[b] = Number(process.hrtime.bigint() - t0) / 1000 / batch;
  }
  if (sink === undefined) throw new Error('unreachable');
  const [medianUs, p90Us] = percentiles(perOpUs, [50, 90]) as [number, number];
  return { medianUs, p90Us };
}

/** Allocation: heap growth over a short run right after a full GC; retried smaller if a GC slipped in. */
function bytesPerOp(op: Op, reqs: readonly InferenceRequest[], n: number): number {
  let ops = Math.max(20, Math.round(20_000 / n));
  let sink: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < ops; i++) sink = op.run(reqs[i % reqs.length] as InferenceRequest);
    const grown = process.memoryUsage().heapUsed - before;
    if (grown > 0 && sink !== undefined) return grown / ops;
    ops = Math.max(5, Math.floor(ops / 2));
  }
  return Number.NaN;
}

type Variant = `${number}/${'default' | 'random'}`;
const setups = new Map<number, ReturnType<typeof setup>>();
for (const n of SIZES) setups.set(n, setup(n));
const opOf = (v: Variant): { op: Op; n: number; reqs: InferenceRequest[] } => {
  const [size, kind] = v.split('/') as [string, 'default' | 'random'];
  const s = setups.get(Number(size)) as ReturnType<typeof setup>;
  return { op: kind === 'default' ? s.def : s.rnd, n: Number(size), reqs: s.reqs };
};
const variants: Variant[] = SIZES.flatMap((n) => [`${n}/default` as const, `${n}/random` as const]);

// Warm every variant until its median stops moving (JIT tiers, inline caches, the index's hidden classes),
// in the order given, then measure all of them in a shuffled order per repetition.
const warm: string[] = [];
for (const v of variants) {
  const { op, n, reqs } = opOf(v);
  const w = await warmUntilSteady(() => window(op, reqs, n, 40).medianUs, { minRounds: 5, maxRounds: QUICK ? 20 : 60, tolerance: 0.05, stableRounds: 3 });
  warm.push(`${v} ${describeWarmUp(w)}`);
}
const perRep = await repetitions(variants, { repetitions: REPS, seed: SEED }, (v) => {
  const { op, n, reqs } = opOf(v);
  return window(op, reqs, n, BATCHES);
});
const alloc = new Map(variants.map((v) => {
  const { op, n, reqs } = opOf(v);
  return [v, bytesPerOp(op, reqs, n)] as const;
}));

const rows: string[][] = [];
for (const n of SIZES) {
  const d = perRep.get(`${n}/default`) as Result[];
  const x = perRep.get(`${n}/random`) as Result[];
  rows.push([
    String(n),
    formatSpread(spread(d.map((r) => r.medianUs)), 1),
    formatSpread(spread(d.map((r) => r.p90Us)), 1),
    ((alloc.get(`${n}/default`) as number) / 1024).toFixed(1),
    formatSpread(spread(x.map((r) => r.medianUs)), 1),
    ((alloc.get(`${n}/random`) as number) / 1024).toFixed(1),
    formatSpread(spread(d.map((r, i) => r.medianUs / (x[i] as Result).medianUs)), 1),
  ]);
}

const header = ['endpoints', 'default µs (median)', 'default µs (p90)', 'default KiB/op', 'random µs (median)', 'random KiB/op', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
console.log(`# warm-up (median of 40-batch rounds within 5 % for 3 rounds): ${warm.join('; ')}`);
console.log(
  `# ${HOT_PREFIX ? 'hot prefix (every endpoint holds every prompt)' : 'each prompt on 4 endpoints'}; one op = candidates + prefix prepareData + schedule; ` +
    `${REPS} repetitions × ${BATCHES} batches per variant, variants in a shuffled order per repetition (seed ${SEED})`,
);
console.log('# cells: median of the per-repetition figures [min–max across repetitions]; ratio = default / random per repetition');
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
