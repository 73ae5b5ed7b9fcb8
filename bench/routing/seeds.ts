/**
 * Statistics across seeds and the knee refinement of the routing benchmark (issue 18, point 3).
 *
 * - Every (scenario, policy) runs once per seed; each seed's max sustained rate is computed on its own, and
 *   the report gives their median and range (`bench/support/stats.ts`), never a pooled figure.
 * - Refinement: the ladder brackets a policy's knee between its last passing rate and the first failing one.
 *   A second, short ladder (fresh fleet, same warm-up and seed) then measures `steps` evenly spaced rates
 *   inside that bracket, so the ladder's step size does not decide a winner. The seed's max sustained rate is
 *   the highest rate passing before the first failure in either pass.
 */
import { maxSustained, type StageResult } from './report.ts';

/** Rates strictly inside the ladder's knee bracket (rounded to 0.5 req/s), or none when there is no bracket. */
export function refineRates(ladder: readonly StageResult[], steps: number): number[] {
  if (steps <= 0) return [];
  const { rate: lo } = maxSustained(ladder);
  const hi = ladder.find((s) => s.rate > lo && !s.skipped)?.rate;
  // No failure (the ladder's top passed: "at least"), or the first rate failed (nothing below is measured).
  if (hi === undefined || lo <= 0) return [];
  const out: number[] = [];
  for (let i = 1; i <= steps; i++) {
    const r = Math.round((lo + ((hi - lo) * i) / (steps + 1)) * 2) / 2;
    if (r > lo && r < hi && !out.includes(r)) out.push(r);
  }
  return out;
}

/** A seed's max sustained rate from its ladder and (optional) refinement pass, and whether lag flagged a stage. */
export function combinedMaxSustained(ladder: readonly StageResult[], refine: readonly StageResult[] | undefined): { rate: number; invalid: boolean } {
  const a = maxSustained(ladder);
  if (refine === undefined || refine.length === 0) return a;
  const b = maxSustained(refine);
  return { rate: Math.max(a.rate, b.rate), invalid: a.invalid || b.invalid };
}
