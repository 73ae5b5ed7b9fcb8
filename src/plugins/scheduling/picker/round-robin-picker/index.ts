/**
 * `round-robin-picker`: ignores scores and cycles through the candidates in endpoint-name order, one step per
 * scheduling cycle (a plain load balancer, the baseline of the routing benchmark). With
 * `maxNumOfEndpoints > 1` the fallbacks are the next endpoints in the same order.
 *
 * The rotation is a counter over picks, taken modulo the current candidate count, so endpoints joining or
 * leaving the pool shift the rotation but never stall it.
 */
import { parsePluginParameters } from '../../../../framework/params.ts';
import { DEFAULT_MAX_NUM_OF_ENDPOINTS, pickerParametersSchema } from '../picker-parameters.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { Candidate, CycleState, Picker, ProfileRunResult, ScoredCandidate } from '../../../../framework/scheduling.ts';

export const ROUND_ROBIN_PICKER_TYPE = 'round-robin-picker';

const byName = (a: ScoredCandidate, b: ScoredCandidate): number => {
  const x = a.candidate.endpoint.metadata.name;
  const y = b.candidate.endpoint.metadata.name;
  return x < y ? -1 : x > y ? 1 : 0;
};

export class RoundRobinPicker implements Picker {
  readonly typedName: TypedName;
  readonly maxNumOfEndpoints: number;
  #next = 0;

  constructor(name: string = ROUND_ROBIN_PICKER_TYPE, maxNumOfEndpoints = DEFAULT_MAX_NUM_OF_ENDPOINTS) {
    this.typedName = { type: ROUND_ROBIN_PICKER_TYPE, name };
    this.maxNumOfEndpoints = maxNumOfEndpoints;
  }

  pick(_cycle: CycleState, scored: readonly ScoredCandidate[]): ProfileRunResult {
    const n = scored.length;
    if (n === 0) throw new Error('no endpoints available for the given request');
    const order = scored.slice().sort(byName);
    const start = this.#next % n;
    this.#next = (this.#next + 1) % Number.MAX_SAFE_INTEGER;
    const count = Math.min(this.maxNumOfEndpoints, n);
    const targets: Candidate[] = new Array(count);
    for (let i = 0; i < count; i++) targets[i] = (order[(start + i) % n] as ScoredCandidate).candidate;
    return { targets };
  }
}

export const roundRobinPickerFactory: PluginFactory = (name, parameters) => {
  const params = parsePluginParameters({ type: ROUND_ROBIN_PICKER_TYPE, name }, pickerParametersSchema, parameters);
  return new RoundRobinPicker(name, params.maxNumOfEndpoints);
};
