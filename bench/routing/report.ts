/** Result types of the routing benchmark and its writers: Markdown tables and hand-written SVG line charts. */
import { formatSpread, median, spread, type Spread } from '../support/stats.ts';
import type { ClientStageStats } from './stats.ts';
import type { LoadSpec } from './workload.ts';

export interface StageResult extends ClientStageStats {
  /** Δ prefix-cache hits / Δ queries over the stage, all servers (NaN when no queries). */
  readonly hitRatio: number;
  readonly preemptions: number;
  /** Mean and max over 1 s samples of the summed waiting queues. */
  readonly waitingMean: number;
  readonly waitingMax: number;
  readonly kvUsageMean: number;
  /** max / mean of the per-server request share (1 = perfectly even). */
  readonly imbalance: number;
  /** Event-loop delay p99 (real ms), mean and max over 1 s windows. */
  readonly simLagP99Ms: { readonly mean: number; readonly max: number };
  readonly gatewayLagP99Ms: { readonly mean: number; readonly max: number };
  /** Lag says the machine, not the fleet, limited this stage. */
  readonly invalid: boolean;
}

/** sp-reset: resets accepted, periods whose reset was refused until the next one, 409s, mean accept delay (sim s). */
export interface ResetSummary {
  readonly done: number;
  readonly missed: number;
  readonly refused: number;
  readonly meanDelayS: number;
}

export interface PolicyResult {
  readonly policy: string;
  /** The workload seed of this run (one run per seed and policy). */
  readonly seed?: number;
  readonly stages: readonly StageResult[];
  /** Highest offered rate before the first stage failing TTFT p90 ≤ target or errors ≤ 1 % (0 = none). */
  readonly maxSustainedRate: number;
  /** A stage up to the first failing one was flagged invalid. */
  readonly sustainedRateInvalid: boolean;
  readonly wallS: number;
  readonly resets?: ResetSummary;
  /** The knee refinement pass (seeds.ts): a second short ladder inside the ladder's knee bracket. */
  readonly refineStages?: readonly StageResult[];
  /** The ladder's own max sustained rate (`maxSustainedRate` combines it with the refinement). */
  readonly ladderMaxSustainedRate?: number;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly description: string;
  readonly load: LoadSpec;
  readonly policies: readonly PolicyResult[];
}

/** One run a merged result was read from. */
export interface MergedSource {
  readonly command: string;
  readonly startedAt: string;
  readonly loadAverageAtStart: readonly number[];
  /** Only these scenarios were taken from it (`--merge file.json:a+b`). */
  readonly scenarios?: readonly string[];
}

export interface BenchResult {
  readonly meta: {
    readonly command: string;
    readonly startedAt: string;
    readonly node: string;
    readonly cpus: number;
    readonly loadAverageAtStart: readonly number[];
    readonly timeScale: number;
    readonly ttftTargetS: number;
    readonly lagLimitMs: number;
    readonly quick: boolean;
    /** Seeds per scenario and policy (a merge: the most any had). */
    readonly seeds?: number;
    /** Set by `mergeResults` when some scenario or policy has fewer seeds than `seeds`: the fewest. */
    readonly seedsMin?: number;
    readonly refine?: number;
    readonly wallS: number;
    /** Set by `pickScenarios`: the only scenarios a merge took from this run. */
    readonly takenScenarios?: readonly string[];
    /**
     * Set by `mergeResults`: the runs this result was read together from (one line each in the report); a merged
     * result merged again passes its own sources on, so a report redrawn from it names every run.
     */
    readonly mergedFrom?: readonly MergedSource[];
  };
  readonly scenarios: readonly ScenarioResult[];
}

/**
 * A result with only the named scenarios (`--merge file.json:a+b`): a run that measured several scenarios can give
 * some of them to a merged report while another run gives the rest (e.g. a scenario rerun with another ladder).
 * Naming a scenario the run did not measure is an error, so a typo does not silently drop a scenario.
 */
export function pickScenarios(result: BenchResult, names: readonly string[], source: string): BenchResult {
  const have = result.scenarios.map((sc) => sc.scenario);
  for (const n of names) if (!have.includes(n)) throw new Error(`--merge: ${source} has no scenario ${n} (it has ${have.join(', ')})`);
  return {
    ...result,
    meta: { ...result.meta, takenScenarios: names },
    scenarios: result.scenarios.filter((sc) => names.includes(sc.scenario)),
  };
}

/**
 * Reads split runs together (`epp bench routing --merge a.json,b.json`): a documented run split by seed or by
 * scenario across lock holds becomes one result, per scenario the policies' runs of every file, so the summary's
 * medians and the charts cover all seeds. A (scenario, policy, seed) found twice is an error (merging a run with
 * itself would count its seed twice); runs of one scenario with different ladders are allowed (the knee is per run).
 */
export function mergeResults(results: readonly BenchResult[]): BenchResult {
  const first = results[0];
  if (first === undefined) throw new Error('mergeResults: no results to merge');
  const byScenario = new Map<string, { sc: ScenarioResult; runs: PolicyResult[] }>();
  const seen = new Set<string>();
  for (const r of results) {
    for (const sc of r.scenarios) {
      let entry = byScenario.get(sc.scenario);
      if (entry === undefined) {
        entry = { sc, runs: [] };
        byScenario.set(sc.scenario, entry);
      }
      for (const p of sc.policies) {
        const key = `${sc.scenario}\u0000${p.policy}\u0000${p.seed ?? r.meta.startedAt}`;
        if (seen.has(key)) throw new Error(`mergeResults: ${sc.scenario} / ${p.policy} / seed ${p.seed ?? '?'} appears in two results`);
        seen.add(key);
        entry.runs.push(p);
      }
    }
  }
  const order = (runs: readonly PolicyResult[]): PolicyResult[] => {
    const names = [...new Set(runs.map((p) => p.policy))];
    return [...runs].sort((a, b) => names.indexOf(a.policy) - names.indexOf(b.policy) || (a.seed ?? 0) - (b.seed ?? 0));
  };
  // Seeds per scenario and policy = its runs ((scenario, policy, seed) is unique, checked above); a scenario rerun
  // with more seeds than the others makes a range.
  const counts = [...byScenario.values()].flatMap(({ runs }) => {
    const perPolicy = new Map<string, number>();
    for (const p of runs) perPolicy.set(p.policy, (perPolicy.get(p.policy) ?? 0) + 1);
    return [...perPolicy.values()];
  });
  const seeds = Math.max(1, ...counts);
  const seedsMin = Math.min(seeds, ...counts);
  const mergedFrom = results.flatMap((r): MergedSource[] =>
    r.meta.mergedFrom !== undefined
      ? [...r.meta.mergedFrom]
      : [{ command: r.meta.command, startedAt: r.meta.startedAt, loadAverageAtStart: r.meta.loadAverageAtStart, ...(r.meta.takenScenarios ? { scenarios: r.meta.takenScenarios } : {}) }],
  );
  // What described one source run (its seed range, the scenarios taken from it) does not describe the merge.
  const { seedsMin: _seedsMin, takenScenarios: _taken, ...firstMeta } = first.meta;
  return {
    meta: {
      ...firstMeta,
      command: `epp bench routing --merge (${mergedFrom.length} runs)`,
      seeds,
      ...(seedsMin < seeds ? { seedsMin } : {}),
      wallS: results.reduce((s, r) => s + r.meta.wallS, 0),
      mergedFrom,
    },
    scenarios: [...byScenario.values()].map(({ sc, runs }) => ({ ...sc, policies: order(runs) })),
  };
}

export const TTFT_TARGET_S = 2;
export const MAX_ERROR_FRACTION = 0.01;

export function stagePasses(s: StageResult | ClientStageStats, ttftTargetS = TTFT_TARGET_S): boolean {
  if (s.skipped || s.sent === 0) return false;
  return s.ttftS.p90 <= ttftTargetS && (s.errors + s.timeouts) / s.sent <= MAX_ERROR_FRACTION;
}

export function maxSustained(stages: readonly StageResult[], ttftTargetS = TTFT_TARGET_S): { rate: number; invalid: boolean } {
  let rate = 0;
  let invalid = false;
  for (const s of stages) {
    invalid ||= s.invalid;
    if (!stagePasses(s, ttftTargetS)) break;
    rate = s.rate;
  }
  return { rate, invalid };
}

export interface SeedRun {
  readonly policy: string;
  readonly seed?: number;
  readonly maxSustainedRate: number;
  readonly sustainedRateInvalid: boolean;
}

export interface PolicySummary {
  readonly policy: string;
  /** Per-seed max sustained rates, in run order. */
  readonly perSeed: readonly number[];
  readonly rate: Spread;
  /** Some seed's stages up to its knee were flagged by event-loop lag. */
  readonly flagged: boolean;
}

/** Groups runs by policy (first-seen order) and summarises each policy's per-seed max sustained rates. */
export function summarisePolicies(runs: readonly SeedRun[]): PolicySummary[] {
  const by = new Map<string, SeedRun[]>();
  for (const r of runs) {
    const list = by.get(r.policy) ?? [];
    list.push(r);
    by.set(r.policy, list);
  }
  return [...by].map(([policy, list]) => ({
    policy,
    perSeed: list.map((r) => r.maxSustainedRate),
    rate: spread(list.map((r) => r.maxSustainedRate)),
    flagged: list.some((r) => r.sustainedRateInvalid),
  }));
}

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const sec = (x: number): string => (!Number.isFinite(x) ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1));

/** Hit ratio of a run at its knee: the last ladder stage passing the target (NaN when none). */
function kneeHitRatio(p: PolicyResult): number {
  let h = Number.NaN;
  for (const s of p.stages) {
    if (!stagePasses(s)) break;
    h = s.hitRatio;
  }
  return h;
}

/** The most a scenario's fleet completed in one stage: `fleetCeiling`. */
export interface FleetCeiling {
  /** Requests completed per second inside the stage window. */
  readonly achieved: number;
  readonly policy: string;
  readonly seed?: number;
  /** The stage's offered rate. */
  readonly offered: number;
  readonly hitRatio: number;
}

/**
 * The fleet's measured ceiling in a scenario: the most requests any policy completed per second in one stage, over
 * every seed, ladder and refinement stage (stages flagged invalid left out: the machine, not the fleet, set them).
 * Past a policy's knee the servers' queues stay full, so a stage's completions are what the fleet serves at that
 * policy's hit ratio; at the ideal hit ratio it bounds what any router can complete. A max sustained rate can lie
 * somewhat above it, because a short stage absorbs a queue that would not drain. `summaryTable` divides every
 * policy's median by it (× ceiling): a target that needs more than the slack every policy already has is out of
 * reach of routing on this fleet.
 */
export function fleetCeiling(sc: ScenarioResult): FleetCeiling | undefined {
  let best: FleetCeiling | undefined;
  for (const p of sc.policies) {
    for (const s of [...p.stages, ...(p.refineStages ?? [])]) {
      if (s.skipped || s.invalid || !Number.isFinite(s.achievedReqPerS)) continue;
      if (best === undefined || s.achievedReqPerS > best.achieved) {
        best = { achieved: s.achievedReqPerS, policy: p.policy, ...(p.seed !== undefined ? { seed: p.seed } : {}), offered: s.rate, hitRatio: s.hitRatio };
      }
    }
  }
  return best;
}

export function summaryTable(sc: ScenarioResult): string {
  const sums = summarisePolicies(sc.policies);
  // A reference policy that was not run has no ratio ('–'), not an infinite one.
  const med = (name: string): number | undefined => sums.find((p) => p.policy === name)?.rate.median;
  const rr = med('round-robin');
  const up = med('upstream-default');
  const best = Math.max(...sums.map((p) => p.rate.median));
  const top = Math.max(...sc.policies.flatMap((p) => p.stages.map((s) => s.rate)));
  const ceiling = fleetCeiling(sc);
  const lines = [
    `| policy | max rate with TTFT p90 ≤ ${TTFT_TARGET_S} s, median [min–max] (req/s) | per seed | × round-robin | × upstream-default | vs best | × ceiling | hit ratio at knee | valid |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const p of sums) {
    const m = p.rate.median;
    const ratio = (d: number | undefined): string => (d === undefined ? '–' : d > 0 ? `${f(m / d)}×` : m > 0 ? '∞' : '–');
    const vsBest = best > 0 ? `${f((m / best - 1) * 100, 0)} %` : '–';
    const runs = sc.policies.filter((r) => r.policy === p.policy);
    const hit = median(runs.map(kneeHitRatio).filter((x) => Number.isFinite(x)));
    const seeds = p.perSeed.map((x) => (x >= top ? `≥${x}` : String(x))).join(', ');
    lines.push(`| ${p.policy} | ${formatSpread(p.rate, p.perSeed.every((x) => x % 1 === 0) && p.rate.median % 1 === 0 ? 0 : 1)} | ${seeds} | ${ratio(rr)} | ${ratio(up)} | ${vsBest} | ${ratio(ceiling?.achieved)} | ${f(hit)} | ${p.flagged ? 'flagged' : 'ok'} |`);
  }
  if (ceiling !== undefined) {
    lines.push(
      '',
      `Ceiling: at most ${f(ceiling.achieved, 1)} req/s completed in one stage (${ceiling.policy}${ceiling.seed !== undefined ? `, seed ${ceiling.seed}` : ''}, ` +
        `offered ${ceiling.offered} req/s, hit ratio ${f(ceiling.hitRatio)}); × ceiling = the median max sustained rate / it.`,
    );
  }
  const resets = sc.policies.filter((p) => p.resets !== undefined);
  if (resets.length > 0) {
    lines.push('', 'Cache resets (accepted / periods not accepted before the next one or the end of the run / 409s, mean accept delay s):');
    for (const p of resets) {
      const r = p.resets as ResetSummary;
      lines.push(`${p.policy} seed ${p.seed ?? '–'}: ${r.done} / ${r.missed} / ${r.refused}, ${f(r.meanDelayS)} s`);
    }
  }
  return lines.join('\n');
}

export function detailTable(sc: ScenarioResult): string {
  const lines = [
    '| policy | offered req/s | achieved req/s | out tok/s | TTFT p50 / p90 / p99 s | ITL p50 / p90 ms | NTPOT p50 ms | e2e p50 / p90 s | err / timeout | hit ratio | preempt | waiting mean / max | share max/mean | lag p99 sim / gw ms | |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const p of sc.policies) {
    const label = `${p.policy}${p.seed !== undefined && sc.policies.some((q) => q.policy === p.policy && q.seed !== p.seed) ? ` (seed ${p.seed})` : ''}`;
    const all = [...p.stages.map((s) => ({ s, tag: '' })), ...(p.refineStages ?? []).map((s) => ({ s, tag: ' (refine)' }))];
    for (const { s, tag } of all) {
      if (s.skipped) {
        lines.push(`| ${label} | ${s.rate}${tag} | not run (overloaded at a lower rate) |  |  |  |  |  |  |  |  |  |  |  |  |`);
        continue;
      }
      lines.push(
        `| ${label} | ${s.rate}${tag} | ${f(s.achievedReqPerS, 1)} | ${f(s.outputTokPerS, 0)} | ${sec(s.ttftS.p50)} / ${sec(s.ttftS.p90)} / ${sec(s.ttftS.p99)} | ` +
          `${f(s.itlS.p50 * 1000, 1)} / ${f(s.itlS.p90 * 1000, 1)} | ${f(s.ntpotS.p50 * 1000, 1)} | ${sec(s.e2eS.p50)} / ${sec(s.e2eS.p90)} | ${s.errors} / ${s.timeouts} | ` +
          `${f(s.hitRatio)} | ${s.preemptions} | ${f(s.waitingMean, 1)} / ${s.waitingMax} | ${f(s.imbalance)} | ${f(s.simLagP99Ms.mean, 1)} / ${f(s.gatewayLagP99Ms.mean, 1)} | ` +
          `${stagePasses(s) ? '✓' : '✗'}${s.invalid ? ' INVALID' : ''} |`,
      );
    }
  }
  return lines.join('\n');
}

/** "3 seed(s)", or for a merge whose scenarios have different seed counts "1–5 seed(s) (per scenario …)". */
function seedsText(meta: BenchResult['meta']): string {
  const seeds = meta.seeds ?? 1;
  return meta.seedsMin === undefined ? `${seeds} seed(s)` : `${meta.seedsMin}–${seeds} seed(s) (per scenario and policy: see "per seed")`;
}

export function markdownReport(r: BenchResult): string {
  const out: string[] = [];
  out.push(`Command: \`${r.meta.command}\` — ${r.meta.startedAt}, Node ${r.meta.node}, ${r.meta.cpus} CPUs, load average at start ${r.meta.loadAverageAtStart.map((x) => x.toFixed(1)).join(' / ')}, time scale ${r.meta.timeScale}, ${seedsText(r.meta)}, ${r.meta.refine ?? 0} refinement rates per knee, wall ${Math.round(r.meta.wallS / 60)} min.`);
  for (const m of r.meta.mergedFrom ?? []) {
    const taken = m.scenarios !== undefined ? `; only ${m.scenarios.join(', ')} taken from it` : '';
    out.push(`- \`${m.command}\` — ${m.startedAt}, load average at start ${m.loadAverageAtStart.map((x) => x.toFixed(1)).join(' / ')}${taken}`);
  }
  for (const sc of r.scenarios) {
    out.push('', `### ${sc.scenario}`, '', sc.description, '', summaryTable(sc), '', '<details><summary>Per stage</summary>', '', detailTable(sc), '', '</details>');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- SVG line charts (no dependencies)

const COLORS: Readonly<Record<string, string>> = {
  'round-robin': '#d62728',
  random: '#ff7f0e',
  'least-outstanding-requests': '#8c564b',
  'upstream-default': '#1f77b4',
  'prefix-only': '#9467bd',
  'epp-default': '#2ca02c',
  'bounded-affinity': '#17becf',
  'approx-sticky': '#bcbd22',
  'precise-322': '#aec7e8',
  'precise-sticky': '#e377c2',
  'precise-cost': '#7f7f7f',
  'precise-bounded': '#98df8a',
};
const FALLBACK_COLORS = ['#bcbd22', '#7f7f7f', '#e377c2', '#aec7e8'];

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A simple line chart: linear x, linear or log10 y, one polyline per series, legend, optional reference line. */
export function lineChart(opts: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logY?: boolean;
  yMin?: number;
  yMax?: number;
  refY?: { value: number; label: string };
}): string {
  const W = 720;
  const H = 400;
  const m = { l: 70, r: 200, t: 40, b: 50 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const xs = opts.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = opts.series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => Number.isFinite(y) && (!opts.logY || y > 0));
  const xMin = 0;
  const xMax = Math.max(1, ...xs);
  let yMin = opts.yMin ?? (opts.logY ? Math.min(...ys, 1) : 0);
  let yMax = opts.yMax ?? Math.max(...ys, opts.refY?.value ?? 0, 1e-9);
  if (opts.logY) {
    yMin = 10 ** Math.floor(Math.log10(Math.max(yMin, 1e-3)));
    yMax = 10 ** Math.ceil(Math.log10(Math.max(yMax, yMin * 10)));
  } else {
    const step = niceStep(yMax / 5);
    yMax = Math.ceil(yMax / step) * step;
  }
  const X = (x: number): number => m.l + ((x - xMin) / (xMax - xMin)) * pw;
  const Y = (y: number): number => {
    const v = opts.logY ? (Math.log10(Math.max(y, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)) : (y - yMin) / (yMax - yMin);
    return m.t + ph - Math.min(1, Math.max(0, v)) * ph;
  };
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>`);
  // y grid and labels
  const yTicks: number[] = [];
  if (opts.logY) for (let v = yMin; v <= yMax * 1.0001; v *= 10) yTicks.push(v);
  else {
    const step = niceStep(yMax / 5);
    for (let v = 0; v <= yMax + 1e-9; v += step) yTicks.push(v);
  }
  for (const v of yTicks) {
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 8}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${v >= 1 || v === 0 ? +v.toFixed(0) : +v.toPrecision(1)}</text>`);
  }
  const xStep = niceStep(xMax / 8);
  for (let v = 0; v <= xMax + 1e-9; v += xStep) {
    parts.push(`<line x1="${X(v).toFixed(1)}" x2="${X(v).toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${X(v).toFixed(1)}" y="${m.t + ph + 18}" text-anchor="middle">${+v.toFixed(2)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  if (opts.refY) {
    const y = Y(opts.refY.value).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#555" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${m.l + 6}" y="${Number(y) - 5}" fill="#555">${esc(opts.refY.label)}</text>`);
  }
  opts.series.forEach((s, i) => {
    const color = COLORS[s.name] ?? FALLBACK_COLORS[i % FALLBACK_COLORS.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (pts.length > 0) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')}"/>`);
      for (const p of pts) parts.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    const ly = m.t + 10 + i * 20;
    parts.push(`<line x1="${m.l + pw + 15}" x2="${m.l + pw + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${m.l + pw + 46}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const n = raw / p;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * p;
}

/** The two charts of a scenario: TTFT p90 vs offered rate (log y) and output throughput vs offered rate. */
export function scenarioCharts(sc: ScenarioResult): { ttft: string; throughput: string } {
  // One series per policy: per offered rate, the median over seeds (ladder and refinement stages alike).
  const names = [...new Set(sc.policies.map((p) => p.policy))];
  const series = (pick: (s: StageResult) => number): Series[] =>
    names.map((name) => {
      const byRate = new Map<number, number[]>();
      for (const p of sc.policies.filter((q) => q.policy === name)) {
        for (const s of [...p.stages, ...(p.refineStages ?? [])]) {
          if (s.skipped) continue;
          byRate.set(s.rate, [...(byRate.get(s.rate) ?? []), pick(s)]);
        }
      }
      return { name, points: [...byRate].sort((a, b) => a[0] - b[0]).map(([rate, v]) => [rate, median(v)] as const) };
    });
  return {
    ttft: lineChart({
      title: `${sc.scenario}: TTFT p90 vs offered rate`,
      xLabel: 'offered rate (req/s, simulated)',
      yLabel: 'TTFT p90 (s, log scale)',
      logY: true,
      yMin: 0.01,
      refY: { value: TTFT_TARGET_S, label: `${TTFT_TARGET_S} s target` },
      series: series((s) => s.ttftS.p90),
    }),
    throughput: lineChart({
      title: `${sc.scenario}: output throughput vs offered rate`,
      xLabel: 'offered rate (req/s, simulated)',
      yLabel: 'output tokens/s (simulated)',
      series: series((s) => s.outputTokPerS),
    }),
  };
}
