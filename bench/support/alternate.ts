/**
 * A/B alternation and warm-up for benchmarks that compare variants in one run.
 *
 * - `repetitions` runs every variant once per repetition, in an order shuffled per repetition by a seeded
 *   generator (so a variant is not always first after a GC or always last when the machine heats up), and
 *   collects each variant's per-repetition results;
 * - `warmUntilSteady` repeats a warm-up round until its figure stops moving, instead of "run some iterations
 *   and hope" (a benchmark that measures a variant before its code is optimised reports the compiler).
 */
import { createRandomSource, shuffleInPlace } from '../../src/util/random.ts';

export interface RepetitionOptions {
  readonly repetitions: number;
  readonly seed: number;
  /** Called before each repetition with its order (for logging). */
  readonly onRepetition?: (repetition: number, order: readonly string[]) => void;
}

/**
 * Runs `run(variant, repetition)` for every variant in every repetition, in a seeded random order per
 * repetition. Returns the results per variant, in repetition order.
 */
export async function repetitions<V extends string, R>(
  variants: readonly V[],
  options: RepetitionOptions,
  run: (variant: V, repetition: number) => Promise<R> | R,
): Promise<Map<V, R[]>> {
  const rng = createRandomSource(options.seed);
  const out = new Map<V, R[]>(variants.map((v) => [v, []]));
  for (let rep = 0; rep < options.repetitions; rep++) {
    const order = shuffleInPlace(rng, [...variants]);
    options.onRepetition?.(rep, order);
    for (const v of order) (out.get(v) as R[]).push(await run(v, rep));
  }
  return out;
}

export interface WarmUpOptions {
  /** Rounds always run (default 3). */
  readonly minRounds?: number;
  /** Give up after this many rounds (default 30): the figure is then reported as not steady. */
  readonly maxRounds?: number;
  /** Relative change between consecutive rounds counted as "not moving" (default 0.1 = 10 %). */
  readonly tolerance?: number;
  /** Consecutive not-moving rounds required (default 2). */
  readonly stableRounds?: number;
}

export interface WarmUpResult {
  readonly rounds: number;
  readonly steady: boolean;
  /** The figure of each round (e.g. a per-round median), in order. */
  readonly figures: readonly number[];
}

/**
 * Runs `round()` (which does a batch of the benchmark's work and returns a figure such as its median latency)
 * until the figure has changed by less than `tolerance` for `stableRounds` consecutive rounds.
 */
export async function warmUntilSteady(round: () => Promise<number> | number, options: WarmUpOptions = {}): Promise<WarmUpResult> {
  const minRounds = options.minRounds ?? 3;
  const maxRounds = options.maxRounds ?? 30;
  const tolerance = options.tolerance ?? 0.1;
  const stableRounds = options.stableRounds ?? 2;
  const figures: number[] = [];
  let stable = 0;
  while (figures.length < maxRounds) {
    const x = await round();
    const prev = figures.at(-1);
    figures.push(x);
    if (prev !== undefined && Math.abs(x - prev) <= tolerance * Math.abs(prev)) stable++;
    else stable = 0;
    if (figures.length >= minRounds && stable >= stableRounds) return { rounds: figures.length, steady: true, figures };
  }
  return { rounds: figures.length, steady: false, figures };
}

/** `steady after 7 rounds` / `NOT steady after 30 rounds (last 3: 12.1, 14.0, 11.2)`, for the run log. */
export function describeWarmUp(w: WarmUpResult, digits = 1): string {
  if (w.steady) return `steady after ${w.rounds} rounds`;
  return `NOT steady after ${w.rounds} rounds (last 3: ${w.figures.slice(-3).map((x) => x.toFixed(digits)).join(', ')})`;
}
