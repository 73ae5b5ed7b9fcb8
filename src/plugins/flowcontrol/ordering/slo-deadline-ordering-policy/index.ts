/**
 * `slo-deadline-ordering-policy` (epp-spec §6.4): earliest SLO deadline first, deadline = request received
 * time + header `x-slo-ttft-ms` (integer milliseconds; missing, invalid or negative → never); ties by received
 * time, then arrival order. The header is parsed once per request.
 */
import { z } from 'zod';
import type { OrderingPolicy, QueueItem } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';

export const SLO_DEADLINE_ORDERING_POLICY_TYPE = 'slo-deadline-ordering-policy';
const SLO_TTFT_HEADER = 'x-slo-ttft-ms';

function cmp(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class SloDeadlineOrderingPolicy implements OrderingPolicy {
  readonly typedName: TypedName;
  readonly #deadlines = new WeakMap<InferenceRequest, number>();
  constructor(name: string = SLO_DEADLINE_ORDERING_POLICY_TYPE) {
    this.typedName = { type: SLO_DEADLINE_ORDERING_POLICY_TYPE, name };
  }

  deadline(item: QueueItem): number {
    const r = item.request;
    let d = this.#deadlines.get(r);
    if (d === undefined) {
      // Request headers are lower-cased by the data planes, so this lookup is case-insensitive.
      const raw = r.headers[SLO_TTFT_HEADER];
      const ms = raw !== undefined && /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
      d = Number.isFinite(ms) ? r.receivedAt + ms : Number.POSITIVE_INFINITY;
      this.#deadlines.set(r, d);
    }
    return d;
  }

  compare(a: QueueItem, b: QueueItem): number {
    return cmp(this.deadline(a), this.deadline(b)) || a.request.receivedAt - b.request.receivedAt || a.seq - b.seq;
  }
}

export const sloDeadlineOrderingPolicyFactory: PluginFactory = (name, parameters) => {
  const p = new SloDeadlineOrderingPolicy(name);
  parsePluginParameters(p.typedName, z.strictObject({}), parameters);
  return p;
};
