/** `fcfs-ordering-policy` (epp-spec §6.4): first come, first served (earlier enqueue first). */
import { z } from 'zod';
import type { OrderingPolicy, QueueItem } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';

export const FCFS_ORDERING_POLICY_TYPE = 'fcfs-ordering-policy';

export class FcfsOrderingPolicy implements OrderingPolicy {
  readonly typedName: TypedName;
  constructor(name: string = FCFS_ORDERING_POLICY_TYPE) {
    this.typedName = { type: FCFS_ORDERING_POLICY_TYPE, name };
  }
  compare(a: QueueItem, b: QueueItem): number {
    return a.enqueuedAt - b.enqueuedAt || a.seq - b.seq;
  }
}

export const fcfsOrderingPolicyFactory: PluginFactory = (name, parameters) => {
  const p = new FcfsOrderingPolicy(name);
  parsePluginParameters(p.typedName, z.strictObject({}), parameters);
  return p;
};
