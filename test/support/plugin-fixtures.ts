/**
 * Test fixtures for scheduling and request-control plugin tests: endpoints, candidates, requests, and a
 * plugin handle with a seeded random source, a manual clock and a logger that records what it was told.
 * Used only by `*.test.ts` files and the scheduling benchmark; never imported by a plugin.
 */
import { collectParameterWarnings } from '../../src/framework/params.ts';
import { ManualClock, RecordingLogger } from './doubles.ts';
import type { Endpoint, EndpointMetrics } from '../../src/framework/datalayer.ts';
import { EMPTY_METRICS, joinHostPort } from '../../src/framework/datalayer.ts';
import type { Plugin, PluginHandle, RandomSource } from '../../src/framework/plugin.ts';
import type { ApiType, InferenceRequest } from '../../src/framework/request.ts';
import type { Outcome, ResponseChunk, ResponseInfo } from '../../src/framework/requestcontrol.ts';
import type { Candidate, ProfileRunResult, ScoredCandidate, SchedulingResult } from '../../src/framework/scheduling.ts';
import { Xoshiro128StarStar } from '../../src/util/random.ts';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { PluginMetricSources } from '../../src/runtime/plugin-metrics.ts';

export interface EndpointOptions {
  readonly address?: string;
  readonly port?: number;
  readonly labels?: Record<string, string>;
}

/** An endpoint named `name` with the given metrics over `EMPTY_METRICS`. */
export function makeEndpoint(name: string, metrics: Partial<EndpointMetrics> = {}, opts: EndpointOptions = {}): Endpoint {
  const address = opts.address ?? `10.0.0.${name.length}`;
  const port = opts.port ?? 8000;
  return {
    metadata: {
      name,
      namespace: 'default',
      podName: name,
      address,
      port,
      metricsHost: joinHostPort(address, port),
      labels: opts.labels ?? {},
    },
    metrics: { ...EMPTY_METRICS, ...metrics },
    hostPort: joinHostPort(address, port),
  };
}

/** A candidate (fresh attribute map) for `endpoint`, optionally pre-filled. */
export function makeCandidate(endpoint: Endpoint, attributes: Record<string, unknown> = {}): Candidate {
  return { endpoint, attributes: new Map(Object.entries(attributes)) };
}

/** Candidates for endpoints `e0…e(n-1)` with metrics from `metricsOf(i)`. */
export function makeCandidates(n: number, metricsOf: (i: number) => Partial<EndpointMetrics> = () => ({})): Candidate[] {
  return Array.from({ length: n }, (_, i) => makeCandidate(makeEndpoint(`e${i}`, metricsOf(i), { address: `10.0.${i >> 8}.${i & 255}` })));
}

export interface RequestOptions {
  readonly apiType?: ApiType;
  readonly payload?: Record<string, unknown>;
  readonly targetModel?: string;
  readonly headers?: Record<string, string>;
  readonly requestSizeBytes?: number;
  readonly requestId?: string;
}

/** A fresh `InferenceRequest` (a completions request for model `m` unless told otherwise). */
export function makeRequest(opts: RequestOptions = {}): InferenceRequest {
  const targetModel = opts.targetModel ?? 'm';
  const payload = opts.payload ?? { model: targetModel, prompt: 'hello' };
  return {
    requestId: opts.requestId ?? 'req-1',
    incomingModel: targetModel,
    targetModel,
    body: { apiType: opts.apiType ?? 'completions', payload, stream: false },
    headers: { ...(opts.headers ?? {}) },
    priority: 0,
    fairnessId: 'default-flow',
    objectiveKey: '',
    requestSizeBytes: opts.requestSizeBytes ?? JSON.stringify(payload).length,
    receivedAt: 0,
    schedulingResult: undefined,
    signal: new AbortController().signal,
  };
}

/** Scored candidates from `[name, score]` pairs. */
export function makeScored(entries: ReadonlyArray<readonly [string, number]>): ScoredCandidate[] {
  return entries.map(([name, score]) => ({ candidate: makeCandidate(makeEndpoint(name)), score }));
}

/** A scheduling result with one profile per entry; the first entry is primary unless `primary` is given. */
export function makeSchedulingResult(
  profiles: Record<string, readonly Candidate[] | null>,
  primary?: string,
): SchedulingResult {
  const profileResults = new Map<string, ProfileRunResult | null>();
  for (const [name, targets] of Object.entries(profiles)) profileResults.set(name, targets === null ? null : { targets });
  const first = Object.keys(profiles)[0];
  return { profileResults, primaryProfileName: primary ?? first ?? 'default' };
}

export { ManualClock, RecordingLogger };

export interface TestHandle extends PluginHandle {
  readonly logger: RecordingLogger;
  readonly clock: ManualClock;
  /** Replace the pool the handle reports. */
  setEndpoints(endpoints: readonly Endpoint[]): void;
}

export function makeHandle(opts: { seed?: number; random?: RandomSource; endpoints?: readonly Endpoint[] } = {}): TestHandle {
  let pool: readonly Endpoint[] = opts.endpoints ?? [];
  const plugins = new Map<string, Plugin>();
  return {
    logger: new RecordingLogger(),
    clock: new ManualClock(),
    random: opts.random ?? new Xoshiro128StarStar(opts.seed ?? 1),
    plugin: (name) => plugins.get(name),
    endpoints: () => pool,
    inflight: new InFlightTracker(), metrics: new PluginMetricSources(),
    setEndpoints(endpoints) {
      pool = endpoints;
    },
  };
}

/** The error message a factory threw (fails the test when it did not throw). */
export function factoryError(build: () => unknown): string {
  try {
    build();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error('expected the factory to throw');
}

/** Names of candidates, in order. */
export function names(candidates: readonly Candidate[]): string[] {
  return candidates.map((c) => c.endpoint.metadata.name);
}

/**
 * Runs a plugin factory and returns the fields it accepted leniently (unknown keys ignored, values ≤ 0 replaced
 * by upstream's default), as the config loader would log them: `['x']` for an ignored key `x`.
 */
export function lenientFields(build: () => unknown): string[] {
  const fields: string[] = [];
  collectParameterWarnings((field) => fields.push(field), build);
  return fields;
}

/** The response of `request` as response hooks see it: a 200 stream, nothing parsed yet. */
export function makeResponseInfo(request: InferenceRequest): ResponseInfo {
  return { request, targetEndpoint: undefined, status: 200, headers: {}, streaming: true, usage: undefined, proxyMetadata: {}, dynamicMetadata: {} };
}

/** Response chunk number `index` (the first one starts the stream). */
export function makeChunk(index: number, endOfStream = false): ResponseChunk {
  return { index, data: new Uint8Array(), startOfStream: index === 0, endOfStream, usage: undefined, receivedAt: 0 };
}

/** One outcome of each kind a request can end with (response-complete hooks must release on all of them). */
export const ALL_OUTCOMES: readonly Outcome[] = [
  { kind: 'success', usage: undefined },
  { kind: 'upstream-error', status: 503 },
  { kind: 'aborted', reason: 'client disconnected' },
  { kind: 'internal-error', error: new Error('boom') },
];
