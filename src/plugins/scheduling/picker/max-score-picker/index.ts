/**
 * `max-score-picker`: the highest-scored candidates, ties broken uniformly at random (epp-spec §3.2).
 *
 * Upstream shuffles, then stable-sorts by score. For the common `maxNumOfEndpoints: 1` we do the equivalent
 * in one pass: keep the best so far and, on the k-th tie, take the newcomer with probability 1/k (reservoir
 * sampling), which picks uniformly among the maxima without allocating and draws randomness only on ties.
 */
import { parsePluginParameters } from '../../../../framework/params.ts';
import { DEFAULT_MAX_NUM_OF_ENDPOINTS, pickerParametersSchema } from '../picker-parameters.ts';
import type { PluginFactory, RandomSource, TypedName } from '../../../../framework/plugin.ts';
import type { CycleState, Picker, ProfileRunResult, ScoredCandidate } from '../../../../framework/scheduling.ts';
import { randomIndex, shuffleInPlace } from '../../../../util/random.ts';

export const MAX_SCORE_PICKER_TYPE = 'max-score-picker';

export class MaxScorePicker implements Picker {
  readonly typedName: TypedName;
  readonly maxNumOfEndpoints: number;
  readonly #random: RandomSource;

  constructor(name: string, random: RandomSource, maxNumOfEndpoints = DEFAULT_MAX_NUM_OF_ENDPOINTS) {
    this.typedName = { type: MAX_SCORE_PICKER_TYPE, name };
    this.#random = random;
    this.maxNumOfEndpoints = maxNumOfEndpoints;
  }

  pick(_cycle: CycleState, scored: readonly ScoredCandidate[]): ProfileRunResult {
    const n = scored.length;
    if (n === 0) throw new Error('no endpoints available for the given request');
    if (this.maxNumOfEndpoints === 1 || n === 1) {
      let best = scored[0] as ScoredCandidate;
      let ties = 1;
      for (let i = 1; i < n; i++) {
        const s = scored[i] as ScoredCandidate;
        if (s.score > best.score) {
          best = s;
          ties = 1;
        } else if (s.score === best.score) {
          ties++;
          if (randomIndex(this.#random, ties) === 0) best = s;
        }
      }
      return { targets: [best.candidate] };
    }
    // Shuffle, then a stable sort: equal scores keep their (random) relative order.
    const order = shuffleInPlace(this.#random, scored.slice());
    order.sort((a, b) => b.score - a.score);
    const count = Math.min(this.maxNumOfEndpoints, n);
    const targets = new Array(count);
    for (let i = 0; i < count; i++) targets[i] = (order[i] as ScoredCandidate).candidate;
    return { targets };
  }
}

export const maxScorePickerFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: MAX_SCORE_PICKER_TYPE, name };
  const params = parsePluginParameters(typedName, pickerParametersSchema, parameters);
  return new MaxScorePicker(name, handle.random, params.maxNumOfEndpoints);
};
