/**
 * `utilization-detector` (epp-spec §6.3, §3.3): saturation from scraped model-server metrics.
 *
 * Saturation = mean over endpoints of `max(waitingQueue / queueDepthThreshold, kvUsage / kvCacheUtilThreshold)`,
 * where an endpoint whose metrics were never scraped or are older than `metricsStalenessThreshold` counts
 * as 1.0 (saturated: we do not know, so we do not pile more on). An empty list is saturated.
 *
 * As a scheduling filter it keeps endpoints with fresh metrics below both thresholds scaled by `1 + headroom`;
 * when none pass it returns all of them (fail-open: scheduling still has a choice, admission sheds load).
 */
import { z } from 'zod';
import type { Endpoint } from '../../../../framework/datalayer.ts';
import type { SaturationDetector } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { Clock, PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { Candidate, CycleState, Filter } from '../../../../framework/scheduling.ts';
import { parseGoDuration } from '../../../../util/duration.ts';

export const UTILIZATION_DETECTOR_TYPE = 'utilization-detector';

export interface UtilizationDetectorParameters {
  readonly queueDepthThreshold: number;
  readonly kvCacheUtilThreshold: number;
  readonly metricsStalenessThresholdMs: number;
  readonly headroom: number;
}

const DEFAULT_UTILIZATION_PARAMETERS: UtilizationDetectorParameters = Object.freeze({
  queueDepthThreshold: 5,
  kvCacheUtilThreshold: 0.8,
  metricsStalenessThresholdMs: 200,
  headroom: 0,
});

const duration = z.string().transform((s, ctx) => {
  try {
    const ms = parseGoDuration(s);
    if (ms <= 0) ctx.addIssue({ code: 'custom', message: `must be strictly positive, got ${s}` });
    return ms;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const parametersSchema = z.strictObject({
  queueDepthThreshold: z.number().positive('queueDepthThreshold must be strictly positive').default(5),
  kvCacheUtilThreshold: z.number().gt(0, 'kvCacheUtilThreshold must be in (0, 1]').max(1, 'kvCacheUtilThreshold must be in (0, 1]').default(0.8),
  metricsStalenessThreshold: duration.default(200),
  headroom: z.number().min(0, 'headroom must be >= 0').default(0),
});

export class UtilizationDetector implements SaturationDetector, Filter {
  readonly typedName: TypedName;
  readonly params: UtilizationDetectorParameters;
  readonly #clock: Clock;

  constructor(name: string, clock: Clock, params: UtilizationDetectorParameters = DEFAULT_UTILIZATION_PARAMETERS) {
    this.typedName = { type: UTILIZATION_DETECTOR_TYPE, name };
    this.params = params;
    this.#clock = clock;
  }

  saturation(endpoints: readonly Endpoint[]): number {
    const n = endpoints.length;
    if (n === 0) return 1;
    const { queueDepthThreshold: q, kvCacheUtilThreshold: kv, metricsStalenessThresholdMs: stale } = this.params;
    const now = this.#clock.now();
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const m = (endpoints[i] as Endpoint).metrics;
      if (m.updateTime === 0 || now - m.updateTime > stale) sum += 1;
      else sum += Math.max(m.waitingQueueSize / q, m.kvCacheUsagePercent / kv);
    }
    return sum / n;
  }

  filter(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): readonly Candidate[] {
    const { queueDepthThreshold: q, kvCacheUtilThreshold: kv, metricsStalenessThresholdMs: stale, headroom } = this.params;
    const qLimit = q * (1 + headroom);
    const kvLimit = kv * (1 + headroom);
    const now = this.#clock.now();
    const out = candidates.filter((c) => {
      const m = c.endpoint.metrics;
      return m.updateTime !== 0 && now - m.updateTime <= stale && m.waitingQueueSize < qLimit && m.kvCacheUsagePercent < kvLimit;
    });
    return out.length === 0 ? candidates : out;
  }
}

export const utilizationDetectorFactory: PluginFactory = (name, parameters, handle) => {
  const p = parsePluginParameters({ type: UTILIZATION_DETECTOR_TYPE, name }, parametersSchema, parameters);
  return new UtilizationDetector(name, handle.clock, {
    queueDepthThreshold: p.queueDepthThreshold,
    kvCacheUtilThreshold: p.kvCacheUtilThreshold,
    metricsStalenessThresholdMs: p.metricsStalenessThreshold,
    headroom: p.headroom,
  });
};
