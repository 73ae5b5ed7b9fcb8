/**
 * `random-picker`: `maxNumOfEndpoints` distinct candidates chosen uniformly at random, ignoring scores
 * (epp-spec §3.2).
 */
import { parsePluginParameters } from '../../../../framework/params.ts';
import { DEFAULT_MAX_NUM_OF_ENDPOINTS, pickerParametersSchema } from '../picker-parameters.ts';
import type { PluginFactory, RandomSource, TypedName } from '../../../../framework/plugin.ts';
import type { Candidate, CycleState, Picker, ProfileRunResult, ScoredCandidate } from '../../../../framework/scheduling.ts';
import { sampleIndices } from '../../../../util/random.ts';

export const RANDOM_PICKER_TYPE = 'random-picker';

export class RandomPicker implements Picker {
  readonly typedName: TypedName;
  readonly maxNumOfEndpoints: number;
  readonly #random: RandomSource;

  constructor(name: string, random: RandomSource, maxNumOfEndpoints = DEFAULT_MAX_NUM_OF_ENDPOINTS) {
    this.typedName = { type: RANDOM_PICKER_TYPE, name };
    this.#random = random;
    this.maxNumOfEndpoints = maxNumOfEndpoints;
  }

  pick(_cycle: CycleState, scored: readonly ScoredCandidate[]): ProfileRunResult {
    if (scored.length === 0) throw new Error('no endpoints available for the given request');
    const indices = sampleIndices(this.#random, scored.length, this.maxNumOfEndpoints);
    const targets: Candidate[] = new Array(indices.length);
    for (let i = 0; i < indices.length; i++) targets[i] = (scored[indices[i] as number] as ScoredCandidate).candidate;
    return { targets };
  }
}

export const randomPickerFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: RANDOM_PICKER_TYPE, name };
  const params = parsePluginParameters(typedName, pickerParametersSchema, parameters);
  return new RandomPicker(name, handle.random, params.maxNumOfEndpoints);
};
