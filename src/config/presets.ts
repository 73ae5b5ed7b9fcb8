/**
 * Named configurations: every routing policy the routing benchmark compares (docs/benchmarks.md) is one of
 * these, loaded through the same config path as a user's file.
 *
 * - `upstream-default`: upstream's built-in default, loaded when no config is given (faithful to upstream):
 *   queue 2, kv-cache 2, prefix 3, max-score picker.
 * - `epp-default`: what `epp demo` runs: upstream's scoring plus a fallback endpoint for gateway retries.
 * - `bounded-affinity`: experimental load-bounded prefix affinity (the benchmark's tuning candidate).
 * - baselines: `round-robin`, `random`, `least-outstanding-requests` (router-side least-loaded),
 *   `prefix-only` (prefix-cache scorer alone).
 */
import { CONFIG_API_VERSION, CONFIG_KIND, DEFAULT_CONFIG_TEXT } from './schema.ts';

export const UPSTREAM_DEFAULT_CONFIG_TEXT = DEFAULT_CONFIG_TEXT;

const header = `apiVersion: ${CONFIG_API_VERSION}
kind: ${CONFIG_KIND}
`;

/**
 * What `epp demo` runs: upstream's scoring (queue ×2, kv-cache ×2, prefix ×3, max-score) with one change — the
 * picker also returns a fallback endpoint, so the embedded gateway can retry a refused connection. Routing
 * decisions are those of `upstream-default`. The routing benchmark found no policy that beats it on sp-main
 * (docs/benchmarks.md, "Tuning"); `bounded-affinity` is the best candidate so far and stays available by name.
 */
export const EPP_DEFAULT_CONFIG_TEXT = `${header}plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
`;

/**
 * Experimental: prefix affinity bounded by load. `bounded-prefix-affinity-filter` keeps a request on the
 * endpoints that hold its prefix until they have `maxOutstandingRequests` requests outstanding from this EPP,
 * then lets it spill over to any endpoint that is not saturated; among the survivors the least-outstanding
 * endpoint wins, the prefix score breaking near-ties. The picker returns a fallback endpoint so the gateway
 * can retry a refused connection. Why these numbers: docs/benchmarks.md ("Tuning epp-default").
 */
export const BOUNDED_AFFINITY_CONFIG_TEXT = `${header}plugins:
- type: bounded-prefix-affinity-filter
  parameters:
    affinityThreshold: 0.5
    maxOutstandingRequests: 40
- type: least-outstanding-requests-scorer
- type: prefix-cache-scorer
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: bounded-prefix-affinity-filter
  - pluginRef: least-outstanding-requests-scorer
    weight: 1
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
`;

export const ROUND_ROBIN_CONFIG_TEXT = `${header}plugins:
- type: round-robin-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: round-robin-picker
`;

export const RANDOM_CONFIG_TEXT = `${header}plugins:
- type: random-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
`;

export const LEAST_OUTSTANDING_REQUESTS_CONFIG_TEXT = `${header}plugins:
- type: least-outstanding-requests-scorer
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: least-outstanding-requests-scorer
  - pluginRef: max-score-picker
`;

export const PREFIX_ONLY_CONFIG_TEXT = `${header}plugins:
- type: prefix-cache-scorer
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
  - pluginRef: max-score-picker
`;

export const CONFIG_PRESETS: Readonly<Record<string, string>> = {
  'round-robin': ROUND_ROBIN_CONFIG_TEXT,
  random: RANDOM_CONFIG_TEXT,
  'least-outstanding-requests': LEAST_OUTSTANDING_REQUESTS_CONFIG_TEXT,
  'upstream-default': UPSTREAM_DEFAULT_CONFIG_TEXT,
  'prefix-only': PREFIX_ONLY_CONFIG_TEXT,
  'epp-default': EPP_DEFAULT_CONFIG_TEXT,
  'bounded-affinity': BOUNDED_AFFINITY_CONFIG_TEXT,
};
