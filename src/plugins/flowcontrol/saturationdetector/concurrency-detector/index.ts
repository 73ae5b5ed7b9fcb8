/**
 * `concurrency-detector` (epp-spec §6.3, §3.3): saturation from the requests (or estimated tokens) this EPP
 * has in flight, against a fixed capacity per endpoint.
 *
 * Saturation = Σ in-flight / Σ capacity over the endpoints given (capacity per endpoint = `maxConcurrency`, or
 * `maxTokenConcurrency` in tokens mode), where Σ in-flight also counts requests admitted but not yet bound to
 * an endpoint, so a dispatch is visible to the very next dispatch cycle. No endpoints → 1.0.
 *
 * Upstream read an endpoint attribute nobody wrote on the shared endpoints, so its saturation was always 0.
 * Here the runtime binds the live in-flight counts (`PoolLoad`), updated on admission, scheduling and
 * completion (exactly once per request, whatever the outcome).
 *
 * As a scheduling filter it keeps endpoints whose in-flight count is below `trunc(limit × (1 + headroom))`;
 * when none pass the result is empty (fail-closed: the request fails scheduling with 429).
 */
import { z } from 'zod';
import type { InFlightLoad } from '../../../../framework/attributes.ts';
import type { Endpoint } from '../../../../framework/datalayer.ts';
import type { PoolLoad, PoolLoadConsumer, SaturationDetector } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { Candidate, CycleState, Filter } from '../../../../framework/scheduling.ts';

export const CONCURRENCY_DETECTOR_TYPE = 'concurrency-detector';

export interface ConcurrencyDetectorParameters {
  readonly concurrencyMode: 'requests' | 'tokens';
  readonly maxConcurrency: number;
  readonly maxTokenConcurrency: number;
  readonly headroom: number;
}

const parametersSchema = z.strictObject({
  concurrencyMode: z.enum(['requests', 'tokens'], { error: "concurrencyMode must be 'requests' or 'tokens'" }).default('requests'),
  maxConcurrency: z.number().int('maxConcurrency must be an integer').positive('maxConcurrency must be strictly positive').default(100),
  maxTokenConcurrency: z.number().int('maxTokenConcurrency must be an integer').positive('maxTokenConcurrency must be strictly positive').default(1_000_000),
  headroom: z.number().min(0, 'headroom must be >= 0').default(0),
});

const NO_LOAD: PoolLoad = { loadOf: () => ({ requests: 0, tokens: 0 }), unbound: () => ({ requests: 0, tokens: 0 }) };

export class ConcurrencyDetector implements SaturationDetector, Filter, PoolLoadConsumer {
  readonly typedName: TypedName;
  readonly params: ConcurrencyDetectorParameters;
  #load: PoolLoad = NO_LOAD;

  constructor(name: string, params: ConcurrencyDetectorParameters) {
    this.typedName = { type: CONCURRENCY_DETECTOR_TYPE, name };
    this.params = params;
  }

  bindPoolLoad(load: PoolLoad): void {
    this.#load = load;
  }

  #amount(l: InFlightLoad): number {
    return this.params.concurrencyMode === 'tokens' ? l.tokens : l.requests;
  }

  #limit(): number {
    return this.params.concurrencyMode === 'tokens' ? this.params.maxTokenConcurrency : this.params.maxConcurrency;
  }

  saturation(endpoints: readonly Endpoint[]): number {
    const capacity = endpoints.length * this.#limit();
    if (capacity <= 0) return 1;
    let inFlight = this.#amount(this.#load.unbound());
    for (const ep of endpoints) inFlight += this.#amount(this.#load.loadOf(ep.metadata.name));
    return inFlight / capacity;
  }

  filter(_cycle: CycleState, _request: InferenceRequest, candidates: readonly Candidate[]): readonly Candidate[] {
    const limit = Math.trunc(this.#limit() * (1 + this.params.headroom));
    return candidates.filter((c) => this.#amount(this.#load.loadOf(c.endpoint.metadata.name)) < limit);
  }
}

export const concurrencyDetectorFactory: PluginFactory = (name, parameters) => {
  const p = parsePluginParameters({ type: CONCURRENCY_DETECTOR_TYPE, name }, parametersSchema, parameters);
  return new ConcurrencyDetector(name, p);
};
