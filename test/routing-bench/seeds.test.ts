/** Seeds and knee refinement: pure functions over stage results. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StageResult } from '../../bench/routing/report.ts';
import { summarisePolicies } from '../../bench/routing/report.ts';
import { combinedMaxSustained, refineRates } from '../../bench/routing/seeds.ts';

/** A stage at `rate` with TTFT p90 `p90` (pass ≤ 2 s), or skipped. */
function stage(rate: number, p90: number | 'skip', invalid = false): StageResult {
  const skipped = p90 === 'skip';
  return {
    stage: 0, rate, durationS: 10, skipped, sent: skipped ? 0 : 100, ok: 100, errors: 0, timeouts: 0, errorKinds: {},
    achievedReqPerS: rate, outputTokPerS: 0,
    ttftS: { p50: 0, p90: skipped ? Number.NaN : p90, p99: 0 }, itlS: { p50: 0, p90: 0, p99: 0 }, ntpotS: { p50: 0, p90: 0, p99: 0 }, e2eS: { p50: 0, p90: 0, p99: 0 },
    serverShare: {}, loadgenLagP99Ms: 0, hitRatio: 0, preemptions: 0, waitingMean: 0, waitingMax: 0, kvUsageMean: 0, imbalance: 1,
    simLagP99Ms: { mean: 0, max: 0 }, gatewayLagP99Ms: { mean: 0, max: 0 }, invalid,
  };
}

test('refineRates: evenly spaced inside the knee bracket, rounded to 0.5', () => {
  const ladder = [stage(8, 0.1), stage(12, 0.2), stage(16, 3), stage(24, 'skip')];
  assert.deepEqual(refineRates(ladder, 3), [13, 14, 15]);
  assert.deepEqual(refineRates(ladder, 1), [14]);
  assert.deepEqual(refineRates([stage(24, 0.1), stage(30, 5)], 4), [25, 26.5, 27.5, 29]);
  assert.deepEqual(refineRates(ladder, 0), []);
});

test('refineRates: nothing to refine without a bracket', () => {
  assert.deepEqual(refineRates([stage(8, 0.1), stage(12, 0.2)], 3), [], 'top passed: "at least"');
  assert.deepEqual(refineRates([stage(8, 5), stage(12, 'skip')], 3), [], 'first rate failed');
  assert.deepEqual(refineRates([stage(8, 0.1), stage(9, 3)], 3), [8.5], 'a bracket narrower than the steps');
});

test('combinedMaxSustained: the highest rate passing before the first failure of either pass', () => {
  const ladder = [stage(8, 0.1), stage(12, 0.2), stage(16, 3)];
  assert.deepEqual(combinedMaxSustained(ladder, undefined), { rate: 12, invalid: false });
  assert.deepEqual(combinedMaxSustained(ladder, [stage(13, 0.5), stage(14, 1.9), stage(15, 2.5)]), { rate: 14, invalid: false });
  assert.deepEqual(combinedMaxSustained(ladder, [stage(13, 2.5), stage(14, 0.5)]), { rate: 12, invalid: false }, 'a pass after a failure does not count');
  assert.deepEqual(combinedMaxSustained(ladder, [stage(13, 0.5, true), stage(14, 3)]), { rate: 13, invalid: true });
});

test('summarisePolicies: per-seed rates, median and range per policy, flagged if any seed was', () => {
  const s = summarisePolicies([
    { policy: 'a', seed: 1, maxSustainedRate: 12, sustainedRateInvalid: false },
    { policy: 'b', seed: 1, maxSustainedRate: 30, sustainedRateInvalid: false },
    { policy: 'a', seed: 2, maxSustainedRate: 14, sustainedRateInvalid: false },
    { policy: 'b', seed: 2, maxSustainedRate: 27, sustainedRateInvalid: true },
    { policy: 'a', seed: 3, maxSustainedRate: 13, sustainedRateInvalid: false },
    { policy: 'b', seed: 3, maxSustainedRate: 33, sustainedRateInvalid: false },
  ]);
  assert.deepEqual(s.map((p) => [p.policy, p.perSeed, p.rate.median, p.rate.min, p.rate.max, p.flagged]), [
    ['a', [12, 14, 13], 13, 12, 14, false],
    ['b', [30, 27, 33], 30, 27, 33, true],
  ]);
});

test('summaryTable: median [min–max] over seeds, every seed, ratios of medians, "≥" at the ladder top', async () => {
  const { summaryTable } = await import('../../bench/routing/report.ts');
  const { defaultLoad } = await import('../../bench/routing/workload.ts');
  const run = (policy: string, seed: number, rates: number[], passUpTo: number, refined?: number) => ({
    policy,
    seed,
    stages: rates.map((r) => stage(r, r <= passUpTo ? 0.5 : 5)),
    maxSustainedRate: refined ?? passUpTo,
    sustainedRateInvalid: false,
    wallS: 1,
  });
  const rates = [8, 12, 16];
  const table = summaryTable({
    scenario: 'x',
    description: '',
    load: defaultLoad({ rates }),
    policies: [
      run('round-robin', 1, rates, 8),
      run('round-robin', 2, rates, 8, 10.5),
      run('upstream-default', 1, rates, 12),
      run('upstream-default', 2, rates, 12),
      run('mine', 1, rates, 16),
      run('mine', 2, rates, 16),
    ],
  });
  const row = (name: string) => table.split('\n').find((l) => l.startsWith(`| ${name} |`)) as string;
  assert.match(row('round-robin'), /^\| round-robin \| 9\.3 \[8\.0–10\.5\] \| 8, 10\.5 \| 1\.00× \| 0\.77× \|/);
  assert.match(row('upstream-default'), /^\| upstream-default \| 12 \[12–12\] \| 12, 12 \| 1\.30× \| 1\.00× \|/);
  assert.match(row('mine'), /^\| mine \| 16 \[16–16\] \| ≥16, ≥16 \| 1\.73× \| 1\.33× \| 0 % \|/);
});

test('fleetCeiling: the most completed in one stage over every policy, seed and refinement; invalid stages left out; "× ceiling" per policy', async () => {
  const { fleetCeiling, summaryTable } = await import('../../bench/routing/report.ts');
  const { defaultLoad } = await import('../../bench/routing/workload.ts');
  const at = (rate: number, p90: number, achieved: number, hitRatio: number, invalid = false): StageResult => ({ ...stage(rate, p90, invalid), achievedReqPerS: achieved, hitRatio });
  const sc = {
    scenario: 'x',
    description: '',
    load: defaultLoad({ rates: [24, 36, 48] }),
    policies: [
      { policy: 'upstream-default', seed: 1, stages: [at(24, 0.1, 23, 0.9), at(36, 1, 33, 0.99), at(48, 5, 40, 0.99)], maxSustainedRate: 36, sustainedRateInvalid: false, wallS: 1 },
      // The most completed, but in a stage the machine limited: not the fleet's ceiling.
      { policy: 'mine', seed: 1, stages: [at(24, 0.1, 23, 0.9), at(36, 1, 34, 0.99), at(48, 4, 47, 0.99, true)], maxSustainedRate: 40, sustainedRateInvalid: false, wallS: 1,
        refineStages: [at(40, 1.5, 41, 0.98), at(44, 3, 30, 0.98)] },
    ],
  };
  assert.deepEqual(fleetCeiling(sc), { achieved: 41, policy: 'mine', seed: 1, offered: 40, hitRatio: 0.98 });
  const table = summaryTable(sc);
  const row = (name: string) => table.split('\n').find((l) => l.startsWith(`| ${name} |`)) as string;
  assert.match(row('upstream-default'), /\| 0\.88× \| 0\.99 \| ok \|$/, '36 / 41');
  assert.match(row('mine'), /\| 0\.98× \|/, '40 / 41');
  assert.match(table, /Ceiling: at most 41\.0 req\/s completed in one stage \(mine, seed 1, offered 40 req\/s, hit ratio 0\.98\)/);
  assert.equal(fleetCeiling({ ...sc, policies: [] }), undefined);
});

test('mergeResults: runs split by seed read together give one table over every seed; a run merged twice is an error', async () => {
  const { mergeResults, markdownReport } = await import('../../bench/routing/report.ts');
  const { defaultLoad } = await import('../../bench/routing/workload.ts');
  const rates = [8, 12, 16];
  const run = (policy: string, seed: number, passUpTo: number) => ({
    policy,
    seed,
    stages: rates.map((r) => stage(r, r <= passUpTo ? 0.5 : 5)),
    maxSustainedRate: passUpTo,
    sustainedRateInvalid: false,
    wallS: 60,
  });
  const result = (seed: number, startedAt: string, load: number, ups: number, mine: number) => ({
    meta: { command: `epp bench routing --seed ${seed} --seeds 1`, startedAt, node: 'v20', cpus: 2, loadAverageAtStart: [load, load, load], timeScale: 1, ttftTargetS: 2, lagLimitMs: 5, quick: false, seeds: 1, refine: 0, wallS: 120 },
    scenarios: [{ scenario: 'x', description: 'd', load: defaultLoad({ rates }), policies: [run('mine', seed, mine), run('upstream-default', seed, ups)] }],
  });
  const merged = mergeResults([result(1, 't1', 0.5, 8, 12), result(2, 't2', 1.5, 12, 16), result(3, 't3', 2.5, 8, 16)]);
  assert.equal(merged.meta.seeds, 3);
  assert.equal(merged.meta.wallS, 360);
  assert.deepEqual(merged.scenarios.map((s) => s.scenario), ['x']);
  assert.deepEqual(merged.scenarios[0]?.policies.map((p) => `${p.policy}/${p.seed}`), ['mine/1', 'mine/2', 'mine/3', 'upstream-default/1', 'upstream-default/2', 'upstream-default/3']);
  const md = markdownReport(merged);
  assert.match(md, /^\| mine \| 16 \[12–16\] \| 12, ≥16, ≥16 \| – \| 2\.00× \|/m);
  assert.match(md, /^\| upstream-default \| 8 \[8–12\] \| 8, 12, 8 \|/m);
  // Every source run is named with its load average.
  for (const [seed, load] of [[1, '0.5'], [2, '1.5'], [3, '2.5']] as const) assert.match(md, new RegExp(`--seed ${seed} --seeds 1\` — t${seed}, load average at start ${load} / ${load} / ${load}`));
  assert.match(md, /, 3 seed\(s\), /);
  // One scenario rerun with more seeds: the header gives the range.
  const fourth = result(4, 't4', 0.5, 8, 12);
  const more = { ...fourth, scenarios: fourth.scenarios.map((sc) => ({ ...sc, scenario: 'y' })) };
  const uneven = mergeResults([merged, more]);
  assert.equal(uneven.meta.seeds, 3);
  assert.equal(uneven.meta.seedsMin, 1);
  assert.match(markdownReport(uneven), /, 1–3 seed\(s\) \(per scenario and policy: see "per seed"\), /);
  assert.throws(() => mergeResults([result(1, 't1', 0.5, 8, 12), result(1, 't1b', 0.5, 8, 12)]), /x \/ mine \/ seed 1 appears in two results/);
  assert.throws(() => mergeResults([]), /no results/);
});

test('pickScenarios: a run gives a merge only the scenarios named; a scenario it did not measure is an error', async () => {
  const { pickScenarios } = await import('../../bench/routing/report.ts');
  const { defaultLoad } = await import('../../bench/routing/workload.ts');
  const sc = (scenario: string) => ({ scenario, description: 'd', load: defaultLoad({ rates: [8] }), policies: [] });
  const run = {
    meta: { command: 'c', startedAt: 't', node: 'v20', cpus: 2, loadAverageAtStart: [0, 0, 0], timeScale: 1, ttftTargetS: 2, lagLimitMs: 5, quick: false, seeds: 1, refine: 0, wallS: 1 },
    scenarios: [sc('sp-pressure'), sc('sp-overflow')],
  };
  const picked = pickScenarios(run, ['sp-pressure'], 'po.json');
  assert.deepEqual(picked.scenarios.map((s) => s.scenario), ['sp-pressure']);
  assert.equal(picked.meta.command, 'c', 'the command stays as it was run');
  // The merged report names the run with what was taken from it, and a merged result merged again keeps every source.
  const { mergeResults, markdownReport } = await import('../../bench/routing/report.ts');
  const other = { ...run, meta: { ...run.meta, command: 'd', startedAt: 'u' }, scenarios: [sc('sp-overflow')] };
  const merged = mergeResults([picked, other]);
  assert.match(markdownReport(merged), /^- `c` — t, load average at start 0\.0 \/ 0\.0 \/ 0\.0; only sp-pressure taken from it$/m);
  assert.match(markdownReport(merged), /^- `d` — u, load average at start 0\.0 \/ 0\.0 \/ 0\.0$/m);
  assert.deepEqual(mergeResults([merged]).meta.mergedFrom?.map((m) => m.command), ['c', 'd']);
  assert.match(markdownReport(mergeResults([merged])), /^Command: `epp bench routing --merge \(2 runs\)`/m, 'counts the runs read, not the files');
  assert.throws(() => pickScenarios(run, ['sp-reset'], 'po.json'), /po\.json has no scenario sp-reset \(it has sp-pressure, sp-overflow\)/);
});
