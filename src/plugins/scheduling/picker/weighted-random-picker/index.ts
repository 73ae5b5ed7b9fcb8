/**
 * `weighted-random-picker`: samples `maxNumOfEndpoints` distinct candidates without replacement, each with
 * probability proportional to its score (epp-spec §3.2), by weighted reservoir sampling (Efraimidis–Spirakis
 * A-Res): every candidate with score s > 0 draws u ∈ (0, 1) and gets key u^(1/s); the largest keys win.
 *
 * We compare ln(u)/s instead of u^(1/s) (same order, since ln is increasing) so that small scores cannot
 * underflow to a key of 0 and lose their chance. Candidates with score ≤ 0 never beat a positive one; they
 * fill remaining slots in random order. When no score is positive the picker behaves like `random-picker`.
 */
import { parsePluginParameters } from '../../../../framework/params.ts';
import { DEFAULT_MAX_NUM_OF_ENDPOINTS, pickerParametersSchema } from '../picker-parameters.ts';
import type { PluginFactory, RandomSource, TypedName } from '../../../../framework/plugin.ts';
import type { Candidate, CycleState, Picker, ProfileRunResult, ScoredCandidate } from '../../../../framework/scheduling.ts';
import { sampleIndices, shuffleInPlace } from '../../../../util/random.ts';

export const WEIGHTED_RANDOM_PICKER_TYPE = 'weighted-random-picker';
/** Substitute for u = 0 (upstream's constant), so ln(u) stays finite. */
const MIN_UNIFORM = 1e-10;

export class WeightedRandomPicker implements Picker {
  readonly typedName: TypedName;
  readonly maxNumOfEndpoints: number;
  readonly #random: RandomSource;

  constructor(name: string, random: RandomSource, maxNumOfEndpoints = DEFAULT_MAX_NUM_OF_ENDPOINTS) {
    this.typedName = { type: WEIGHTED_RANDOM_PICKER_TYPE, name };
    this.#random = random;
    this.maxNumOfEndpoints = maxNumOfEndpoints;
  }

  #logKey(score: number): number {
    if (!(score > 0)) return -Infinity;
    const u = this.#random.next();
    return Math.log(u === 0 ? MIN_UNIFORM : u) / score;
  }

  pick(_cycle: CycleState, scored: readonly ScoredCandidate[]): ProfileRunResult {
    const n = scored.length;
    if (n === 0) throw new Error('no endpoints available for the given request');
    let anyPositive = false;
    for (let i = 0; i < n && !anyPositive; i++) anyPositive = (scored[i] as ScoredCandidate).score > 0;
    if (!anyPositive) {
      const indices = sampleIndices(this.#random, n, this.maxNumOfEndpoints);
      return { targets: indices.map((i) => (scored[i] as ScoredCandidate).candidate) };
    }
    if (this.maxNumOfEndpoints === 1) {
      let bestKey = -Infinity;
      let best = scored[0] as ScoredCandidate;
      for (let i = 0; i < n; i++) {
        const s = scored[i] as ScoredCandidate;
        const key = this.#logKey(s.score);
        if (key > bestKey) {
          bestKey = key;
          best = s;
        }
      }
      return { targets: [best.candidate] };
    }
    // Shuffle first so that the score ≤ 0 candidates (all key −∞) fill leftover slots in random order.
    const order = shuffleInPlace(this.#random, scored.map((s) => ({ candidate: s.candidate, key: this.#logKey(s.score) })));
    order.sort((a, b) => (a.key === b.key ? 0 : b.key > a.key ? 1 : -1));
    const count = Math.min(this.maxNumOfEndpoints, n);
    const targets: Candidate[] = new Array(count);
    for (let i = 0; i < count; i++) targets[i] = (order[i] as { candidate: Candidate }).candidate;
    return { targets };
  }
}

export const weightedRandomPickerFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: WEIGHTED_RANDOM_PICKER_TYPE, name };
  const params = parsePluginParameters(typedName, pickerParametersSchema, parameters);
  return new WeightedRandomPicker(name, handle.random, params.maxNumOfEndpoints);
};
