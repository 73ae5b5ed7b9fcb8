/** The benchmarks' shared helpers: percentiles, per-repetition spread, seeded alternation, steady-state warm-up, stall/GC attribution, CPU pinning. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeWarmUp, repetitions, warmUntilSteady } from '../../bench/support/alternate.ts';
import { formatSpread, median, percentile, percentiles, spread } from '../../bench/support/stats.ts';
import { pinPlanFromEnv } from '../../bench/support/pin.ts';
import { classifyStalls, openSchedstat, stallCause, startStallSampler } from '../../bench/support/stalls.ts';

test('percentiles are nearest-rank on a sorted copy; NaN when empty', () => {
  const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.deepEqual(percentiles(xs, [0, 10, 50, 90, 99, 100]), [1, 1, 5, 9, 10, 10]);
  assert.deepEqual(xs, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('spread: median and range of the finite per-repetition values, formatted as median [min–max]', () => {
  const s = spread([12, 10, Number.NaN, 15]);
  assert.deepEqual(s, { median: 12, min: 10, max: 15, n: 3 });
  assert.equal(formatSpread(s), '12 [10–15]');
  assert.equal(formatSpread(spread([1.25, 1.5, 2]), 2), '1.50 [1.25–2.00]');
  assert.equal(formatSpread(spread([Number.NaN])), '–');
});

test('repetitions: every variant once per repetition, a seeded order that changes between repetitions', async () => {
  const variants = ['a', 'b', 'c', 'd'] as const;
  const orders: string[][] = [];
  const calls: string[] = [];
  const out = await repetitions(variants, { repetitions: 6, seed: 3, onRepetition: (_r, order) => orders.push([...order]) }, (v, rep) => {
    calls.push(v);
    return `${v}${rep}`;
  });
  assert.deepEqual(calls, orders.flat());
  for (const order of orders) assert.deepEqual([...order].sort(), [...variants]);
  assert.ok(new Set(orders.map((o) => o.join())).size > 1, 'the order is shuffled per repetition');
  for (const v of variants) assert.deepEqual(out.get(v), [0, 1, 2, 3, 4, 5].map((r) => `${v}${r}`));
  const again: string[][] = [];
  await repetitions(variants, { repetitions: 6, seed: 3, onRepetition: (_r, order) => again.push([...order]) }, () => 0);
  assert.deepEqual(again, orders, 'same seed, same orders');
});

test('warmUntilSteady stops once the figure stops moving, and says so when it never does', async () => {
  const settling = [100, 60, 40, 31, 30, 30.5, 30.2, 30.1];
  let i = 0;
  const w = await warmUntilSteady(() => settling[i++] as number, { tolerance: 0.05, stableRounds: 2 });
  assert.equal(w.steady, true);
  assert.equal(w.rounds, 6);
  assert.equal(describeWarmUp(w), 'steady after 6 rounds');

  let flip = false;
  const never = await warmUntilSteady(() => ((flip = !flip) ? 10 : 20), { maxRounds: 5 });
  assert.equal(never.steady, false);
  assert.equal(never.rounds, 5);
  assert.match(describeWarmUp(never, 0), /^NOT steady after 5 rounds \(last 3: 10, 20, 10\)$/);
});

test('classifyStalls: a stall a GC overlaps counts as such; only the delay no collection explains is "beyond GC"', () => {
  const stalls = [
    { start: 100, end: 104, delayMs: 4 }, // fully inside a 5 ms scavenge
    { start: 200, end: 206, delayMs: 6 }, // 3 ms of GC inside, 3 ms left: beyond
    { start: 300, end: 303, delayMs: 3 }, // no GC at all: beyond
    { start: 400, end: 403.5, delayMs: 3.5 }, // 2 ms of GC inside, 1.5 ms left: explained
  ];
  const gcs = [
    { start: 99, durationMs: 5, kind: 'minor' as const },
    { start: 203, durationMs: 10, kind: 'minor' as const },
    { start: 250, durationMs: 20, kind: 'major' as const }, // between stalls: overlaps none
    { start: 401, durationMs: 1, kind: 'minor' as const },
    { start: 402.5, durationMs: 1, kind: 'minor' as const },
  ];
  const { causes, ...gcOnly } = classifyStalls(stalls, gcs, 2);
  assert.deepEqual(gcOnly, { stalls: 4, withGc: 3, beyondGc: 2, worstBeyondGcMs: 3 });
  assert.equal(causes, undefined, 'no thread times, no causes');
  assert.deepEqual(classifyStalls([], gcs, 2).stalls, 0);
});

test('stallCause: the run-queue wait, then GC, then sleep are taken away in turn; a stall still over the threshold is on-CPU', () => {
  // A 1 ms timer due at `start`, seen at `end`: the window the thread times cover is end − start + 1 ms.
  const at = (delayMs: number, cpuMs: number, waitMs: number) => ({ start: 0, end: delayMs, delayMs, thread: { cpuMs, waitMs } });
  assert.equal(stallCause(at(3, 1, 2.5), 0, 2, 1), 'descheduled', 'another process had the core for most of it');
  assert.equal(stallCause(at(3, 3.5, 0.2), 2, 2, 1), 'gc', 'a 2 ms scavenge on the main thread');
  assert.equal(stallCause(at(3, 0.3, 0.1), 0, 2, 1), 'asleep', 'neither running nor runnable: the tick itself was late');
  assert.equal(stallCause(at(3, 3.8, 0.2), 0.5, 2, 1), 'on-cpu', '3.3 ms of our own code in the window');
  // Mixed: 1.5 ms of our code is not enough on its own once the 1.5 ms wait is taken away.
  assert.equal(stallCause(at(2.5, 2, 1.5), 0, 2, 1), 'descheduled');
  assert.equal(stallCause({ start: 0, end: 3, delayMs: 3 }, 0, 2, 1), undefined, 'no thread times, no cause');
});

test('classifyStalls with thread times: counts by cause, totals, and the worst non-GC on-CPU time in a stall', () => {
  const stalls = [
    { start: 10, end: 13, delayMs: 3, thread: { cpuMs: 1, waitMs: 2.5 } }, // descheduled
    { start: 20, end: 23, delayMs: 3, thread: { cpuMs: 3.5, waitMs: 0.2 } }, // GC: 2 ms scavenge from 19.5
    { start: 30, end: 33, delayMs: 3, thread: { cpuMs: 3.9, waitMs: 0 } }, // on-CPU
  ];
  const gcs = [{ start: 19.5, durationMs: 2, kind: 'minor' as const }];
  const c = classifyStalls(stalls, gcs, 2);
  assert.equal(c.withGc, 1, 'the scavenge overlaps the late part of the second stall');
  assert.deepEqual(c.causes, { descheduled: 1, gc: 1, asleep: 0, onCpu: 1, worstOnCpuMs: 3.9, descheduledMs: 2.7, gcMs: 2, onCpuMs: 1 + 1.5 + 3.9 });
});

test("schedstat: the main thread's on-CPU time is read where Linux has it, and a missing file is a reason, not a crash", { skip: process.platform !== 'linux' }, () => {
  const s = openSchedstat();
  if (!('read' in s)) return; // a kernel without schedstats: the sampler says so instead
  const a = new Float64Array(3);
  const b = new Float64Array(3);
  assert.ok(s.read(a));
  let x = 0;
  for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
  assert.ok(s.read(b) && x > 0);
  assert.ok((b[0] as number) > (a[0] as number), 'on-CPU ns grow while the thread computes');
  s.close();
  const missing = openSchedstat(2 ** 30);
  assert.ok('unavailable' in missing && /schedstat/.test(missing.unavailable));
  const off = startStallSampler(2, { schedstat: false });
  assert.match(off.schedstat, /^unavailable/);
  off.stop();
});

test('profile summary: only the busy window after the first matching frame counts, idle apart, by function, category, entry and phase', async () => {
  const { summarize } = await import('../../bench/support/profile-summary.ts');
  const f = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, lineNumber: 0 }, children });
  const root = 'file:///work/x';
  const profile = {
    nodes: [
      f(1, '(root)', '', [2, 3, 4, 7]),
      f(2, 'loadModules', 'node:internal/modules/esm/loader'),
      f(3, 'handleDataFrame', 'file:///n/node_modules/@grpc/grpc-js/build/src/server-interceptors.js', [5]),
      f(4, '(idle)', ''),
      f(5, 'onData', `${root}/src/server/extproc/stream.ts`, [6]),
      f(6, 'write', 'node:internal/streams/writable'),
      f(7, '(garbage collector)', ''),
    ],
    // timeDeltas[i + 1] is charged to samples[i].
    samples: [2, 3, 6, 4, 7, 5],
    timeDeltas: [0, 100, 10, 20, 1000, 5, 7],
  };
  const s = summarize(profile, /handleDataFrame/, [/^onData /]);
  assert.equal(s.busyUs, 10 + 20 + 5 + 7, 'start-up before the window and idle are left out');
  assert.equal(s.idleUs, 1000);
  assert.equal(s.byCategory.get('@grpc/grpc-js'), 10);
  assert.equal(s.byCategory.get('node:streams'), 20);
  assert.equal(s.byCategory.get('src/server'), 7);
  assert.equal(s.byCategory.get('(gc)'), 5);
  assert.equal(s.byEntry.get('onData src/server/extproc/stream.ts:1'), 27, 'node time charged to the project frame that called it');
  assert.equal(s.byPhase.get('^onData '), 27);
  assert.equal(s.byPhase.get('(other)'), 15);
});

test('BENCH_PIN: <server cpus>/<client cpus>, unset means unpinned, anything else is refused with the form to use', () => {
  assert.equal(pinPlanFromEnv({}), undefined);
  assert.equal(pinPlanFromEnv({ BENCH_PIN: '' }), undefined);
  assert.deepEqual(pinPlanFromEnv({ BENCH_PIN: '1/0' }), { server: '1', client: '0' });
  assert.deepEqual(pinPlanFromEnv({ BENCH_PIN: '2-3/0,1' }), { server: '2-3', client: '0,1' });
  assert.throws(() => pinPlanFromEnv({ BENCH_PIN: '1' }), /BENCH_PIN=1: expected <server cpus>\/<client cpus>, e\.g\. BENCH_PIN=1\/0/);
});
