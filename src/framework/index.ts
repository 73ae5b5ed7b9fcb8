/**
 * The public API for plugin authors: `import type { Scorer } from 'endpoint-picker'`. This module is the
 * package's `exports["."]`; everything it re-exports is a stable contract (semver: a breaking change here
 * is a major version). Runtime internals (director, scheduler, servers) are deliberately not exported.
 *
 * Contracts are documented where they are declared (call counts, order, sync/async, errors); the authoring
 * guide is docs/plugins.md.
 */
export type { Clock, Logger, Plugin, PluginFactory, PluginHandle, PluginTypeRegistry, RandomSource, RegisterPlugins, TypedName } from './plugin.ts';
export { typedNameString } from './plugin.ts';
export { parsePluginParameters } from './params.ts';
export type { ApiType, InferenceRequest, ParsedRequestBody, Usage } from './request.ts';
export { promptText } from './request.ts';
export type { Endpoint, EndpointMetadata, EndpointMetrics } from './datalayer.ts';
export { EMPTY_METRICS, joinHostPort } from './datalayer.ts';
export type { Candidate, CycleState, Filter, Picker, ProfileHandler, ProfileRunResult, ScoredCandidate, Scorer, ScorerCategory, SchedulingProfile, SchedulingResult } from './scheduling.ts';
export type {
  Admitter,
  DataConsumer,
  DataProducer,
  DynamicMetadata,
  Outcome,
  PreRequestHook,
  ResponseChunk,
  ResponseChunkHook,
  ResponseCompleteHook,
  ResponseHeadersHook,
  ResponseInfo,
} from './requestcontrol.ts';
export type { Parser, ResponseParser } from './parser.ts';
export type { DataSource, Extractor, ExtractOutcome, MetricsDraft, MetricType, PollOptions, PrometheusFamilies, PrometheusFamily, PrometheusSample } from './datasource.ts';
export { PROMETHEUS_FAMILIES } from './datasource.ts';
export type { InFlightRequests } from './inflight.ts';
export type { PluginMetrics, PrecisePrefixMetricsSource, PrefixIndexMetricsSource, TokenSourceMetricsSource } from './plugin-metrics.ts';
export type { BandView, FairnessPolicy, FlowQueueView, OrderingPolicy, PoolLoad, QueueItem, SaturationDetector, UsageLimitPolicy } from './flowcontrol.ts';
export type { EppErrorCode } from './errors.ts';
export { EppConfigError, EppError, toError } from './errors.ts';
export type { InFlightLoad, LatencyPredictionInfo, PrefixCacheMatchInfo } from './attributes.ts';
export { InFlightLoadKey, LatencyPredictionInfoKey, PrefixCacheMatchInfoKey, inFlightLoadOf, latencyPredictionInfoOf, prefixCacheMatchInfoOf } from './attributes.ts';
