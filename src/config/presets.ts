/**
 * Named configurations. `upstream-default` is upstream's built-in default, loaded when no config is given
 * (faithful to upstream). `epp-default` is what the embedded demo runs: the same scorers and weights, with
 * the picker returning a fallback endpoint so the gateway can retry a refused connection. The routing
 * benchmark (docs/benchmarks.md) compares both; tuning lands here.
 */
import { CONFIG_API_VERSION, CONFIG_KIND, DEFAULT_CONFIG_TEXT } from './schema.ts';

export const UPSTREAM_DEFAULT_CONFIG_TEXT = DEFAULT_CONFIG_TEXT;

export const EPP_DEFAULT_CONFIG_TEXT = `apiVersion: ${CONFIG_API_VERSION}
kind: ${CONFIG_KIND}
plugins:
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

export const CONFIG_PRESETS: Readonly<Record<string, string>> = {
  'upstream-default': UPSTREAM_DEFAULT_CONFIG_TEXT,
  'epp-default': EPP_DEFAULT_CONFIG_TEXT,
};
