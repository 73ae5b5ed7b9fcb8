/**
 * `round-robin-fairness-policy` (epp-spec §6.4): flows of a band take turns. Flows are ordered by fairness id;
 * each pick resumes after the flow served last and takes the first one with queued work. Under saturation,
 * two tenants with queued work each get half of the dispatches, whatever their arrival rates.
 */
import { z } from 'zod';
import type { BandView, FairnessPolicy, FlowQueueView } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';

export const ROUND_ROBIN_FAIRNESS_POLICY_TYPE = 'round-robin-fairness-policy';
const LAST = 'round-robin:last';

export class RoundRobinFairnessPolicy implements FairnessPolicy {
  readonly typedName: TypedName;
  constructor(name: string = ROUND_ROBIN_FAIRNESS_POLICY_TYPE) {
    this.typedName = { type: ROUND_ROBIN_FAIRNESS_POLICY_TYPE, name };
  }

  selectFlow(band: BandView): FlowQueueView | undefined {
    const flows = band.flows;
    if (flows.length === 0) return undefined;
    const last = band.state.get(LAST) as string | undefined;
    // flows are sorted by id: start at the first id after the last one served (wrapping around).
    let start = 0;
    if (last !== undefined) {
      start = flows.findIndex((f) => f.fairnessId > last);
      if (start < 0) start = 0;
    }
    for (let i = 0; i < flows.length; i++) {
      const flow = flows[(start + i) % flows.length] as FlowQueueView;
      if (flow.length > 0) {
        band.state.set(LAST, flow.fairnessId);
        return flow;
      }
    }
    return undefined;
  }
}

export const roundRobinFairnessPolicyFactory: PluginFactory = (name, parameters) => {
  const p = new RoundRobinFairnessPolicy(name);
  parsePluginParameters(p.typedName, z.strictObject({}), parameters);
  return p;
};
