/**
 * `global-strict-fairness-policy` (epp-spec §6.4): across all flows of a band, dispatch the item that is
 * best by the band's ordering policy, whichever flow it belongs to. With FCFS ordering this is one global
 * first-come-first-served queue per band: flows get no protection from each other.
 */
import { z } from 'zod';
import type { BandView, FairnessPolicy, FlowQueueView, QueueItem } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';

export const GLOBAL_STRICT_FAIRNESS_POLICY_TYPE = 'global-strict-fairness-policy';

export class GlobalStrictFairnessPolicy implements FairnessPolicy {
  readonly typedName: TypedName;
  constructor(name: string = GLOBAL_STRICT_FAIRNESS_POLICY_TYPE) {
    this.typedName = { type: GLOBAL_STRICT_FAIRNESS_POLICY_TYPE, name };
  }

  selectFlow(band: BandView): FlowQueueView | undefined {
    let best: FlowQueueView | undefined;
    let bestHead: QueueItem | undefined;
    for (const flow of band.flows) {
      const head = flow.peek();
      if (head === undefined) continue;
      if (bestHead === undefined || band.ordering.compare(head, bestHead) < 0) {
        best = flow;
        bestHead = head;
      }
    }
    return best;
  }
}

export const globalStrictFairnessPolicyFactory: PluginFactory = (name, parameters) => {
  const p = new GlobalStrictFairnessPolicy(name);
  parsePluginParameters(p.typedName, z.strictObject({}), parameters);
  return p;
};
