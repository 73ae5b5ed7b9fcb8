/**
 * PairTable benchmark (`npm run bench:pair-table`): the longest single call and the total time of filling a table
 * to N keys and draining it again, with the incremental resize (what the indexes use) against the one-call resize
 * it replaced, alternated in one process.
 *
 * The one-call baseline is the same class with every resize finished (`finishResize`) at the call that starts it:
 * exactly the former behaviour, with no second implementation to drift.
 * Keys are uniform 64-bit values (hashes), payload one word, as in the approximate index's holders table. Each
 * repetition fills 0 → N keys, then removes them in insertion order back to 0, timing every call with
 * `process.hrtime.bigint()` (≈ 0.1 µs of its own per call, the same in both variants). Reported per variant:
 * median over repetitions of the longest call, the 99.99th percentile call, and the total time (fill + drain), with
 * [min–max]; ratios incremental / one-call within the run.
 *
 * Usage: npm run bench:pair-table [-- --keys 1000000 --reps 5 --seed 1]
 */
import { parseArgs } from 'node:util';
import { PairTable } from '../src/util/pair-table.ts';
import { Xoshiro128StarStar } from '../src/util/random.ts';
import { repetitions } from './support/alternate.ts';
import { printRunInfo } from './support/run-info.ts';
import { formatSpread, percentile, spread } from './support/stats.ts';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    reps: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
  },
});
const N = Number(args.keys);
const REPS = Number(args.reps);
const SEED = Number(args.seed);
if (!Number.isInteger(N) || N < 1000 || !Number.isInteger(REPS) || REPS < 1) {
  console.error('--keys must be an integer ≥ 1000 and --reps ≥ 1');
  process.exit(2);
}

type Variant = 'incremental' | 'one-call';
interface Run {
  maxUs: number;
  p9999Us: number;
  totalMs: number;
}

const keysHi = new Uint32Array(N);
const keysLo = new Uint32Array(N);
const rng = new Xoshiro128StarStar(SEED);
for (let i = 0; i < N; i++) {
  keysHi[i] = rng.nextUint32();
  keysLo[i] = rng.nextUint32();
}

function run(variant: Variant): Run {
  const t = new PairTable(1, 16);
  const times = new Float64Array(2 * N);
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    const s = t.insert(keysHi[i] as number, keysLo[i] as number);
    t.data[t.off(s)] = i;
    if (variant === 'one-call' && t.resizing) t.finishResize();
    times[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    t.removeAt(t.find(keysHi[i] as number, keysLo[i] as number));
    if (variant === 'one-call' && t.resizing) t.finishResize();
    times[N + i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  const totalMs = Number(process.hrtime.bigint() - start) / 1e6;
  if (t.size !== 0) throw new Error(`table not drained: ${t.size} keys left`);
  let maxUs = 0;
  for (let i = 0; i < times.length; i++) if ((times[i] as number) > maxUs) maxUs = times[i] as number;
  return { maxUs, p9999Us: percentile(times, 99.99), totalMs };
}

printRunInfo('bench:pair-table', [`${N.toLocaleString('en-US')} keys filled then drained per repetition, ${REPS} repetitions, variants alternated in a seeded order`]);
run('incremental'); // warm both code paths before measuring
run('one-call');
const results = await repetitions<Variant, Run>(['incremental', 'one-call'], { repetitions: REPS, seed: SEED }, (v) => run(v));
const inc = results.get('incremental') as Run[];
const one = results.get('one-call') as Run[];
const ratio = (f: (r: Run) => number): string => formatSpread(spread(inc.map((r, i) => f(r) / f(one[i] as Run))), 3);
console.log('\n| figure | incremental | one-call resize | incremental / one-call (per repetition) |');
console.log('|---|---|---|---|');
for (const [label, f, digits] of [
  ['longest call, µs', (r: Run) => r.maxUs, 0],
  ['99.99th percentile call, µs', (r: Run) => r.p9999Us, 2],
  ['total, ms', (r: Run) => r.totalMs, 0],
] as const) {
  console.log(`| ${label} | ${formatSpread(spread(inc.map(f)), digits)} | ${formatSpread(spread(one.map(f)), digits)} | ${ratio(f)} |`);
}
