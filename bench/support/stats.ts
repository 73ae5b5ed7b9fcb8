/**
 * Statistics shared by the benchmarks: nearest-rank percentiles of one sample, and the summary of a figure
 * measured once per repetition (its median and spread across repetitions).
 */

/** Nearest-rank percentile `p` (0–100) of `values`; NaN when empty. Sorts a copy. */
export function percentile(values: ArrayLike<number>, p: number): number {
  return percentiles(values, [p])[0] as number;
}

/** Several nearest-rank percentiles of `values` with one sort; NaN each when empty. */
export function percentiles(values: ArrayLike<number>, ps: readonly number[]): number[] {
  const sorted = Float64Array.from(values).sort();
  return ps.map((p) => {
    if (sorted.length === 0) return Number.NaN;
    const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
    return sorted[rank - 1] as number;
  });
}

/** The middle value (mean of the two middle ones for an even count); NaN when empty. */
export function median(values: ArrayLike<number>): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** A figure taken once per repetition: the median of the per-repetition values and their range. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(perRepetition: readonly number[]): Spread {
  const finite = perRepetition.filter((x) => Number.isFinite(x));
  return {
    median: median(finite),
    min: finite.length ? Math.min(...finite) : Number.NaN,
    max: finite.length ? Math.max(...finite) : Number.NaN,
    n: finite.length,
  };
}

/** `median [min–max]`, e.g. `132 [120–151]`. */
export function formatSpread(s: Spread, digits = 0): string {
  if (s.n === 0) return '–';
  const f = (x: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
  return `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
}
