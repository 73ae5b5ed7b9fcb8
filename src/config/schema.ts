/**
 * The `EndpointPickerConfig` document (epp-spec §4.1), validated strictly: unknown fields are errors.
 */
import { z } from 'zod';

export const CONFIG_API_VERSION = 'inference.networking.x-k8s.io/v1alpha1';
export const CONFIG_KIND = 'EndpointPickerConfig';

export const KNOWN_FEATURE_GATES = ['dataLayer', 'enableLegacyMetrics', 'flowControl'] as const;

const pluginRef = z.string().min(1, 'must not be empty');

const pluginSpec = z.strictObject({
  name: z.string().min(1).optional(),
  type: z.string({ error: 'is required' }).min(1, 'is required'),
  parameters: z.unknown().optional(),
});

const profilePluginRef = z.strictObject({
  pluginRef: z.string({ error: "is missing a 'pluginRef'" }).min(1, "is missing a 'pluginRef'"),
  weight: z.number().optional(),
});

const profile = z.strictObject({
  name: z.string({ error: 'is missing a name' }).min(1, 'is missing a name'),
  plugins: z.array(profilePluginRef).default([]),
});

const quantity = z.union([z.number(), z.string()]);

const priorityBand = z.strictObject({
  priority: z.number().int(),
  maxBytes: quantity.optional(),
  maxRequests: quantity.optional(),
  fairnessPolicyRef: z.string().optional(),
  orderingPolicyRef: z.string().optional(),
});

export const endpointPickerConfigSchema = z.strictObject({
  apiVersion: z.literal(CONFIG_API_VERSION, { error: `must be ${CONFIG_API_VERSION}` }),
  kind: z.literal(CONFIG_KIND, { error: `must be ${CONFIG_KIND}` }),
  featureGates: z.array(z.string()).nullish(),
  plugins: z.array(pluginSpec).nullish(),
  schedulingProfiles: z.array(profile).nullish(),
  saturationDetector: z.strictObject({ pluginRef: z.string().optional() }).nullish(),
  dataLayer: z
    .strictObject({
      sources: z
        .array(
          z.strictObject({
            pluginRef,
            extractors: z.array(z.strictObject({ pluginRef })).default([]),
          }),
        )
        .default([]),
      /** llm-d's field: the cross-replica syncer plugin (e.g. type redis-cross-replica-syncer). */
      crossReplicaSyncerPluginRef: z.string().min(1, 'must not be empty').optional(),
      /** llm-d's field: how often replicas publish their gauges (Go duration, default 50ms here). */
      crossReplicaSyncInterval: z.string({ error: 'expected a Go duration string such as 50ms' }).optional(),
      /** llm-d's newer spelling of the two fields above. */
      crossReplica: z
        .strictObject({
          syncerPluginRef: z.string().min(1, 'must not be empty').optional(),
          syncInterval: z.string({ error: 'expected a Go duration string such as 50ms' }).optional(),
        })
        .optional(),
    })
    .nullish(),
  flowControl: z
    .strictObject({
      maxBytes: quantity.optional(),
      maxRequests: quantity.optional(),
      defaultRequestTTL: z.string().optional(),
      defaultPriorityBand: priorityBand.partial().optional(),
      priorityBands: z.array(priorityBand).optional(),
      usageLimitPolicyPluginRef: z.string().optional(),
    })
    .nullish(),
  parser: z.strictObject({ pluginRef: z.string().optional() }).nullish(),
});

export type EndpointPickerConfig = z.infer<typeof endpointPickerConfigSchema>;

/** Upstream's built-in default (epp-spec §4.3), used when neither --config-file nor --config-text is given. */
export const DEFAULT_CONFIG_TEXT = `apiVersion: ${CONFIG_API_VERSION}
kind: ${CONFIG_KIND}
featureGates: []
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: metrics-data-source
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
`;
