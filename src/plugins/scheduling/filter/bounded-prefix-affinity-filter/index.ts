/**
 * `bounded-prefix-affinity-filter`: prefix affinity with bounded load. A request goes to the endpoints that
 * likely hold its prompt prefix ("holders": prefix-cache score matchBlocks / totalBlocks ≥
 * `affinityThreshold`) as long as one of them is not saturated; once every holder is saturated, or no
 * endpoint holds the prefix, the request may go to any endpoint that is not saturated, so a hot prefix spills
 * over to (and is then cached on) more endpoints instead of queueing behind one.
 *
 * Saturated = this EPP has ≥ `maxOutstandingRequests` requests outstanding there (`InFlightLoad.requests`,
 * instant) and — when `loadFactor` > 0 — also ≥ `loadFactor` × the mean outstanding over the candidates (the
 * bound of consistent hashing with bounded loads, so a uniformly busy fleet keeps its locality and only a
 * holder busier than its share spills); or the server reports more than `maxWaitingRequests` waiting
 * (`waitingQueueSize`, as of the last scrape; −1 disables this test). With `serverReportedLoad`, an endpoint's
 * load in both bounds is the larger of this EPP's outstanding requests and the server's own count, running +
 * waiting as of the last scrape, so traffic this EPP never routed (a second gateway, clients calling the server
 * directly) counts too. When every candidate is saturated all candidates are kept (fail-open: the scorers after
 * this filter pick the least bad one).
 *
 * Result, in order: unsaturated holders if any; else unsaturated candidates if any; else all candidates.
 * Unlike `prefix-cache-affinity-filter` it needs no latency predictor to let go of an overloaded holder.
 */
import { z } from 'zod';
import { InFlightLoadKey, inFlightLoadOf, PrefixCacheMatchInfoKey, prefixCacheMatchInfoOf } from '../../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { DataConsumer } from '../../../../framework/requestcontrol.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { Candidate, CycleState, Filter } from '../../../../framework/scheduling.ts';

export const BOUNDED_PREFIX_AFFINITY_FILTER_TYPE = 'bounded-prefix-affinity-filter';

const parametersSchema = z.strictObject({
  affinityThreshold: z
    .number({ error: 'expected a number in (0, 1]' })
    .gt(0, 'expected a number in (0, 1]')
    .max(1, 'expected a number in (0, 1]')
    .default(0.5),
  maxOutstandingRequests: z
    .number({ error: 'expected an integer >= 1' })
    .int('expected an integer >= 1')
    .min(1, 'expected an integer >= 1')
    .default(24),
  loadFactor: z
    .number({ error: 'expected 0 (off) or a number >= 1' })
    .refine((v) => v === 0 || v >= 1, 'expected 0 (off) or a number >= 1')
    .default(0),
  maxWaitingRequests: z
    .number({ error: 'expected an integer >= -1' })
    .int('expected an integer >= -1')
    .min(-1, 'expected an integer >= -1')
    .default(-1),
  serverReportedLoad: z.boolean({ error: 'expected true or false' }).default(false),
});

export type BoundedPrefixAffinityFilterConfig = z.infer<typeof parametersSchema>;

export class BoundedPrefixAffinityFilter implements Filter, DataConsumer {
  readonly typedName: TypedName;
  readonly config: Readonly<BoundedPrefixAffinityFilterConfig>;
  readonly consumes: readonly string[] = [PrefixCacheMatchInfoKey, InFlightLoadKey];

  constructor(name: string = BOUNDED_PREFIX_AFFINITY_FILTER_TYPE, config: Partial<BoundedPrefixAffinityFilterConfig> = {}) {
    this.typedName = { type: BOUNDED_PREFIX_AFFINITY_FILTER_TYPE, name };
    this.config = Object.freeze(parametersSchema.parse(config));
  }

  /**
   * The endpoint's load in requests: this EPP's outstanding requests, or with `serverReportedLoad` the larger of
   * those and the server's running + waiting (the scrape lags this EPP's own count, which is instant).
   */
  #loadOf(c: Candidate): number {
    const own = inFlightLoadOf(c.attributes)?.requests ?? 0;
    if (!this.config.serverReportedLoad) return own;
    const m = c.endpoint.metrics;
    return Math.max(own, m.runningRequestsSize + m.waitingQueueSize);
  }

  filter(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): readonly Candidate[] {
    if (candidates.length <= 1) return candidates;
    const { affinityThreshold, maxOutstandingRequests, loadFactor, maxWaitingRequests } = this.config;
    // Each candidate's load, read once: the bound needs the mean, the saturation test each one.
    const loads = candidates.map((c) => this.#loadOf(c));
    // Saturated at max(`maxOutstandingRequests`, `loadFactor` × the mean load over the candidates).
    let bound = maxOutstandingRequests;
    if (loadFactor > 0) bound = Math.max(bound, (loadFactor * loads.reduce((a, b) => a + b, 0)) / candidates.length);
    const holders: Candidate[] = [];
    const open: Candidate[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i] as Candidate;
      const saturated = (loads[i] as number) >= bound || (maxWaitingRequests >= 0 && c.endpoint.metrics.waitingQueueSize > maxWaitingRequests);
      if (saturated) continue;
      open.push(c);
      const info = prefixCacheMatchInfoOf(c.attributes);
      if (info !== undefined && info.totalBlocks > 0 && info.matchBlocks / info.totalBlocks >= affinityThreshold) holders.push(c);
    }
    if (holders.length > 0) return holders;
    return open.length > 0 ? open : candidates;
  }
}

export const boundedPrefixAffinityFilterFactory: PluginFactory = (name, parameters) => {
  const config = parsePluginParameters({ type: BOUNDED_PREFIX_AFFINITY_FILTER_TYPE, name }, parametersSchema, parameters);
  return new BoundedPrefixAffinityFilter(name, config);
};
