/**
 * `edf-ordering-policy` (epp-spec §6.4): earliest deadline first, deadline = enqueue time + the item's
 * effective TTL (no TTL → never); ties by enqueue time, then arrival order.
 */
import { z } from 'zod';
import type { OrderingPolicy, QueueItem } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';

export const EDF_ORDERING_POLICY_TYPE = 'edf-ordering-policy';

function edfDeadline(item: QueueItem): number {
  return item.ttlMs > 0 ? item.enqueuedAt + item.ttlMs : Number.POSITIVE_INFINITY;
}

function cmp(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class EdfOrderingPolicy implements OrderingPolicy {
  readonly typedName: TypedName;
  constructor(name: string = EDF_ORDERING_POLICY_TYPE) {
    this.typedName = { type: EDF_ORDERING_POLICY_TYPE, name };
  }
  compare(a: QueueItem, b: QueueItem): number {
    return cmp(edfDeadline(a), edfDeadline(b)) || a.enqueuedAt - b.enqueuedAt || a.seq - b.seq;
  }
}

export const edfOrderingPolicyFactory: PluginFactory = (name, parameters) => {
  const p = new EdfOrderingPolicy(name);
  parsePluginParameters(p.typedName, z.strictObject({}), parameters);
  return p;
};
