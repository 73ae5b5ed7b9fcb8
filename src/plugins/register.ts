/**
 * The single list of built-in plugin types. Each entry maps an upstream type string to its factory.
 * Keep one line per type, grouped by area; the registry rejects duplicates at startup.
 */
import type { PluginFactory } from '../framework/plugin.ts';
import { approxPrefixCacheProducerFactory } from './requestcontrol/approx-prefix-cache-producer/index.ts';
import { inFlightLoadProducerFactory } from './requestcontrol/inflight-load-producer/index.ts';
import { headerBasedTestingFilterFactory } from './scheduling/filter/header-based-testing-filter/index.ts';
import { prefixCacheAffinityFilterFactory } from './scheduling/filter/prefix-cache-affinity-filter/index.ts';
import { kvCacheUtilizationScorerFactory } from './scheduling/scorer/kv-cache-utilization-scorer/index.ts';
import { loraAffinityScorerFactory } from './scheduling/scorer/lora-affinity-scorer/index.ts';
import { prefixCacheScorerFactory } from './scheduling/scorer/prefix-cache-scorer/index.ts';
import { queueScorerFactory } from './scheduling/scorer/queue-scorer/index.ts';
import { runningRequestsSizeScorerFactory } from './scheduling/scorer/running-requests-size-scorer/index.ts';
import { tokenLoadScorerFactory } from './scheduling/scorer/token-load-scorer/index.ts';
import { InFlightLoadKey, PrefixCacheMatchInfoKey } from '../framework/attributes.ts';
import { OPENAI_PARSER_TYPE, openAiParserFactory } from './parser/openai-parser/index.ts';
import { REQUEST_ATTRIBUTE_REPORTER_TYPE, requestAttributeReporterFactory } from './requestcontrol/request-attribute-reporter/index.ts';
import { MAX_SCORE_PICKER_TYPE, maxScorePickerFactory } from './scheduling/picker/max-score-picker/index.ts';
import { RANDOM_PICKER_TYPE, randomPickerFactory } from './scheduling/picker/random-picker/index.ts';
import { WEIGHTED_RANDOM_PICKER_TYPE, weightedRandomPickerFactory } from './scheduling/picker/weighted-random-picker/index.ts';
import { ROUND_ROBIN_PICKER_TYPE, roundRobinPickerFactory } from './scheduling/picker/round-robin-picker/index.ts';
import { LEAST_OUTSTANDING_REQUESTS_SCORER_TYPE, leastOutstandingRequestsScorerFactory } from './scheduling/scorer/least-outstanding-requests-scorer/index.ts';
import { BOUNDED_PREFIX_AFFINITY_FILTER_TYPE, boundedPrefixAffinityFilterFactory } from './scheduling/filter/bounded-prefix-affinity-filter/index.ts';
import { SINGLE_PROFILE_HANDLER_TYPE, singleProfileHandlerFactory } from './scheduling/profile/single-profile-handler/index.ts';
import { METRICS_DATA_SOURCE_TYPE, metricsDataSourceFactory } from './datalayer/source/metrics-data-source/index.ts';
import { CORE_METRICS_EXTRACTOR_TYPE, coreMetricsExtractorFactory } from './datalayer/extractor/core-metrics-extractor/index.ts';
import { REDIS_CROSS_REPLICA_SYNCER_TYPE, redisCrossReplicaSyncerFactory } from './datalayer/syncer/redis-cross-replica-syncer/index.ts';
import { UTILIZATION_DETECTOR_TYPE, utilizationDetectorFactory } from './flowcontrol/saturationdetector/utilization-detector/index.ts';
import { CONCURRENCY_DETECTOR_TYPE, concurrencyDetectorFactory } from './flowcontrol/saturationdetector/concurrency-detector/index.ts';
import { GLOBAL_STRICT_FAIRNESS_POLICY_TYPE, globalStrictFairnessPolicyFactory } from './flowcontrol/fairness/global-strict-fairness-policy/index.ts';
import { ROUND_ROBIN_FAIRNESS_POLICY_TYPE, roundRobinFairnessPolicyFactory } from './flowcontrol/fairness/round-robin-fairness-policy/index.ts';
import { FCFS_ORDERING_POLICY_TYPE, fcfsOrderingPolicyFactory } from './flowcontrol/ordering/fcfs-ordering-policy/index.ts';
import { EDF_ORDERING_POLICY_TYPE, edfOrderingPolicyFactory } from './flowcontrol/ordering/edf-ordering-policy/index.ts';
import { SLO_DEADLINE_ORDERING_POLICY_TYPE, sloDeadlineOrderingPolicyFactory } from './flowcontrol/ordering/slo-deadline-ordering-policy/index.ts';
import { STATIC_USAGE_LIMIT_POLICY_TYPE, staticUsageLimitPolicyFactory } from './flowcontrol/usagelimit/static-usage-limit-policy/index.ts';
import { PRECISE_PREFIX_CACHE_PRODUCER_TYPE, precisePrefixCacheProducerFactory } from './requestcontrol/precise-prefix-cache-producer/index.ts';
import { TOKEN_PRODUCER_TYPE, tokenProducerFactory } from './requestcontrol/token-producer/index.ts';
import { TokenizedPromptKey } from '../framework/attributes.ts';
import { PASSTHROUGH_PARSER_TYPE, passthroughParserFactory } from './parser/passthrough-parser/index.ts';
import { VLLMGRPC_PARSER_TYPE, vllmGrpcParserFactory } from './parser/vllmgrpc-parser/index.ts';
import { DESTINATION_ENDPOINT_SERVED_VERIFIER_TYPE, destinationEndpointServedVerifierFactory } from './requestcontrol/destination-endpoint-served-verifier/index.ts';
import { ENDPOINT_NOTIFICATION_SOURCE_TYPE, endpointNotificationSourceFactory } from './datalayer/source/endpoint-notification-source/index.ts';
import { K8S_NOTIFICATION_SOURCE_TYPE, k8sNotificationSourceFactory } from './datalayer/source/k8s-notification-source/index.ts';
import { PREFILL_LOAD_PRODUCER_TYPE, prefillLoadProducerFactory } from './requestcontrol/prefill-load-producer/index.ts';
import { KV_COST_SCORER_TYPE, kvCostScorerFactory } from './scheduling/scorer/kv-cost-scorer/index.ts';
import { NO_HIT_LRU_SCORER_TYPE, noHitLruScorerFactory } from './scheduling/scorer/no-hit-lru-scorer/index.ts';
import { PRECISE_PREFIX_CACHE_SCORER_TYPE, precisePrefixCacheScorerFactory } from './scheduling/scorer/precise-prefix-cache-scorer/index.ts';
import { PrefillLoadKey } from '../framework/attributes.ts';

export interface PluginTypeRegistration {
  readonly type: string;
  readonly factory: PluginFactory;
}

/**
 * Registers every built-in plugin type and the default producers of the data keys (startup calls it on an
 * empty registry).
 */
export function registerBuiltins(registry: { register(type: string, factory: PluginFactory): void; setDefaultProducer(key: string, type: string): void }): void {
  for (const p of BUILTIN_PLUGINS) registry.register(p.type, p.factory);
  for (const [key, type] of Object.entries(DEFAULT_PRODUCERS)) registry.setDefaultProducer(key, type);
}

export const BUILTIN_PLUGINS: readonly PluginTypeRegistration[] = [
  // --- request control
  { type: 'approx-prefix-cache-producer', factory: approxPrefixCacheProducerFactory },
  { type: 'inflight-load-producer', factory: inFlightLoadProducerFactory },
  { type: REQUEST_ATTRIBUTE_REPORTER_TYPE, factory: requestAttributeReporterFactory },
  { type: PRECISE_PREFIX_CACHE_PRODUCER_TYPE, factory: precisePrefixCacheProducerFactory },
  { type: TOKEN_PRODUCER_TYPE, factory: tokenProducerFactory },
  { type: DESTINATION_ENDPOINT_SERVED_VERIFIER_TYPE, factory: destinationEndpointServedVerifierFactory },
  { type: PREFILL_LOAD_PRODUCER_TYPE, factory: prefillLoadProducerFactory },
  // --- parsers
  { type: OPENAI_PARSER_TYPE, factory: openAiParserFactory },
  { type: PASSTHROUGH_PARSER_TYPE, factory: passthroughParserFactory },
  { type: VLLMGRPC_PARSER_TYPE, factory: vllmGrpcParserFactory },
  // --- scheduling: profile handlers, pickers, scorers, filters
  { type: 'queue-scorer', factory: queueScorerFactory },
  { type: 'kv-cache-utilization-scorer', factory: kvCacheUtilizationScorerFactory },
  { type: 'running-requests-size-scorer', factory: runningRequestsSizeScorerFactory },
  { type: 'lora-affinity-scorer', factory: loraAffinityScorerFactory },
  { type: 'prefix-cache-scorer', factory: prefixCacheScorerFactory },
  { type: 'token-load-scorer', factory: tokenLoadScorerFactory },
  { type: 'prefix-cache-affinity-filter', factory: prefixCacheAffinityFilterFactory },
  { type: 'header-based-testing-filter', factory: headerBasedTestingFilterFactory },
  { type: SINGLE_PROFILE_HANDLER_TYPE, factory: singleProfileHandlerFactory },
  { type: MAX_SCORE_PICKER_TYPE, factory: maxScorePickerFactory },
  { type: RANDOM_PICKER_TYPE, factory: randomPickerFactory },
  { type: WEIGHTED_RANDOM_PICKER_TYPE, factory: weightedRandomPickerFactory },
  { type: ROUND_ROBIN_PICKER_TYPE, factory: roundRobinPickerFactory },
  { type: LEAST_OUTSTANDING_REQUESTS_SCORER_TYPE, factory: leastOutstandingRequestsScorerFactory },
  { type: BOUNDED_PREFIX_AFFINITY_FILTER_TYPE, factory: boundedPrefixAffinityFilterFactory },
  { type: KV_COST_SCORER_TYPE, factory: kvCostScorerFactory },
  { type: NO_HIT_LRU_SCORER_TYPE, factory: noHitLruScorerFactory },
  { type: PRECISE_PREFIX_CACHE_SCORER_TYPE, factory: precisePrefixCacheScorerFactory },
  // --- data layer: sources, extractors
  { type: METRICS_DATA_SOURCE_TYPE, factory: metricsDataSourceFactory },
  { type: CORE_METRICS_EXTRACTOR_TYPE, factory: coreMetricsExtractorFactory },
  { type: REDIS_CROSS_REPLICA_SYNCER_TYPE, factory: redisCrossReplicaSyncerFactory },
  { type: ENDPOINT_NOTIFICATION_SOURCE_TYPE, factory: endpointNotificationSourceFactory },
  { type: K8S_NOTIFICATION_SOURCE_TYPE, factory: k8sNotificationSourceFactory },
  // --- flow control: saturation detectors (also scheduling filters), fairness, ordering, usage limits
  { type: UTILIZATION_DETECTOR_TYPE, factory: utilizationDetectorFactory },
  { type: CONCURRENCY_DETECTOR_TYPE, factory: concurrencyDetectorFactory },
  { type: GLOBAL_STRICT_FAIRNESS_POLICY_TYPE, factory: globalStrictFairnessPolicyFactory },
  { type: ROUND_ROBIN_FAIRNESS_POLICY_TYPE, factory: roundRobinFairnessPolicyFactory },
  { type: FCFS_ORDERING_POLICY_TYPE, factory: fcfsOrderingPolicyFactory },
  { type: EDF_ORDERING_POLICY_TYPE, factory: edfOrderingPolicyFactory },
  { type: SLO_DEADLINE_ORDERING_POLICY_TYPE, factory: sloDeadlineOrderingPolicyFactory },
  { type: STATIC_USAGE_LIMIT_POLICY_TYPE, factory: staticUsageLimitPolicyFactory },
];

/**
 * Producers created automatically (with default parameters, name = type) when a configured plugin consumes a
 * key that no configured plugin produces (upstream runner behaviour, epp-spec §2.3).
 */
const DEFAULT_PRODUCERS: Readonly<Record<string, string>> = {
  [PrefixCacheMatchInfoKey]: 'approx-prefix-cache-producer',
  [InFlightLoadKey]: 'inflight-load-producer',
  [TokenizedPromptKey]: TOKEN_PRODUCER_TYPE,
  [PrefillLoadKey]: PREFILL_LOAD_PRODUCER_TYPE,
};
