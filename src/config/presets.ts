/**
 * Named configurations: every routing policy the routing benchmark compares (docs/benchmarks.md) is one of
 * these, loaded through the same config path as a user's file.
 *
 * - `upstream-default`: upstream's built-in default, loaded when no config is given (faithful to upstream):
 *   queue 2, kv-cache 2, prefix 3, max-score picker.
 * - `epp-default`: what `epp demo` runs: load-bounded prefix affinity over the precise KV-event index (the routing
 *   of `precise-bounded`), with a fallback endpoint for gateway retries.
 * - `bounded-affinity`: load-bounded prefix affinity (wins on hot prefixes; see docs/benchmarks.md).
 * - baselines: `round-robin`, `random`, `least-outstanding-requests` (router-side least-loaded),
 *   `prefix-only` (prefix-cache scorer alone).
 * - issue 18's comparison: `approx-sticky` (sticky until saturated, approximate index), `precise-322`
 *   (upstream's weights over the precise index), `precise-sticky`, `precise-cost` (Dynamo-style cost scorer),
 *   `precise-bounded` (`bounded-affinity` over the precise index).
 */
import { CONFIG_API_VERSION, CONFIG_KIND, DEFAULT_CONFIG_TEXT } from './schema.ts';

const UPSTREAM_DEFAULT_CONFIG_TEXT = DEFAULT_CONFIG_TEXT;

const header = `apiVersion: ${CONFIG_API_VERSION}
kind: ${CONFIG_KIND}
`;

/** Upstream's weighted profile (queue 2, kv-cache 2, prefix 3), max-score with a fallback: plugins and profile. */
const WEIGHTED_322_WITH_FALLBACK = `- type: queue-scorer
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
 * epp-default's routing before issue 18, and `upstream-default`'s with a fallback endpoint: upstream's scoring over
 * the approximate index. Not a preset; the micro-benchmarks (gateway, response path, flow control) run it, as their
 * fake upstreams publish no KV events, so their figures stay comparable across the switch.
 */
export const APPROX_322_WITH_FALLBACK_CONFIG_TEXT = `${header}plugins:
${WEIGHTED_322_WITH_FALLBACK}`;

/**
 * Prefix affinity bounded by load (consistent hashing with bounded loads). `bounded-prefix-affinity-filter`
 * keeps a request on the endpoints that hold its prefix until such an endpoint has both ≥ 32 requests
 * outstanding from this EPP (the simulated servers' `max-num-seqs`: beyond it they queue) and ≥ 1.25 × the
 * fleet's mean — a uniformly busy fleet keeps its locality, a hot prefix spills over to the least-loaded
 * endpoints (which then cache it too). Among the survivors the least-outstanding endpoint wins, the prefix
 * score (×3) breaking near-ties and deciding when everything is saturated; a fallback endpoint for the
 * gateway's retry. Best on hot prefixes (sp-skewed), behind upstream's scoring with a slow server (sp-hetero):
 * docs/benchmarks.md. On servers with a larger `max-num-seqs`, raise `maxOutstandingRequests` to it.
 */
const BOUNDED_AFFINITY_PLUGINS_AND_PROFILE = `- type: bounded-prefix-affinity-filter
  parameters:
    affinityThreshold: 0.5
    maxOutstandingRequests: 32
    loadFactor: 1.25
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
const BOUNDED_AFFINITY_CONFIG_TEXT = `${header}plugins:
${BOUNDED_AFFINITY_PLUGINS_AND_PROFILE}`;

/** Where `token-producer` gets a request's token ids (src/plugins/requestcontrol/token-producer/README.md). */
export type TokenBackend = 'sim' | 'render' | 'local';

/**
 * The precise index fed by the engines' KV events (docs/precise-prefix.md). The event endpoints come from each
 * endpoint's `endpoint-picker.io/kv-events-endpoint` label (`epp demo` and the routing benchmark write them into an
 * endpoints file; on Kubernetes, vLLM's `--kv-events-config` binds `tcp://*:5557`, the default the producer dials).
 * Token ids: `sim` ports the simulator's tokenizer in process (exact for the simulated fleet, wrong for any real
 * model); `render` asks the engine (`/v1/completions/render`, vLLM); `local` tokenizes in process with the model's
 * tokenizer.json while a parity check against render agrees.
 */
function precisePlugins(tokens: TokenBackend): string {
  return `- type: token-producer
  parameters:
    backend: ${tokens}
- type: precise-prefix-cache-producer
  parameters:
    blockSize: 16
`;
}
const PRECISE_PLUGINS = precisePlugins('sim');

/**
 * What `epp demo` / `npm start` runs: prefix affinity bounded by load (`bounded-affinity`'s filter, scorers and
 * fallback endpoint) over the precise prefix index fed by the engines' KV events — the routing of
 * `precise-bounded`. Why (docs/benchmarks.md, "Status (issue 18)", medians of 3 seeds against upstream-default):
 * where the router's picture stays wrong (sp-second-gateway) the precise index wins (2.00×); bounded affinity wins
 * hot prefixes (sp-skewed 1.40×) and a slow server (sp-hetero 1.11×), where precise-322 falls 20–30 % behind; on
 * the other scenarios it equals the best policy measured, except sp-overflow (119 % of the fleet's KV cache), one
 * refinement step (−10 %) behind upstream-default.
 * `maxOutstandingRequests` (32) is the simulated servers' `max-num-seqs`: set it to your
 * servers' value.
 *
 * `tokens` is the token-producer backend. The preset (`tokens` = `sim`) fits the simulated fleet the demo starts;
 * against real servers use `render` (the engine's render endpoint, exact; `epp demo --endpoints` does) or `local`
 * (the model's tokenizer.json, checked against render). Endpoints whose events do not arrive (no
 * `--kv-events-config`, unreachable port), and requests without token ids, are scored by the approximate index.
 */
export function eppDefaultConfigText(tokens: TokenBackend = 'sim'): string {
  return `${header}plugins:
${precisePlugins(tokens)}${BOUNDED_AFFINITY_PLUGINS_AND_PROFILE}`;
}
export const EPP_DEFAULT_CONFIG_TEXT = eppDefaultConfigText('sim');

const ROUND_ROBIN_CONFIG_TEXT = `${header}plugins:
- type: round-robin-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: round-robin-picker
`;

const RANDOM_CONFIG_TEXT = `${header}plugins:
- type: random-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
`;

const LEAST_OUTSTANDING_REQUESTS_CONFIG_TEXT = `${header}plugins:
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

const PREFIX_ONLY_CONFIG_TEXT = `${header}plugins:
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

/**
 * Sticky-until-saturated parameters for the simulated fleet (sim-spec §6.3 step costs: a 2,048-token uncached
 * chunk ≈ 12 ms + 204.8 ms → ≈ 9.4k prefill tokens/s; `epp calibrate`-style recipe in docs/benchmarks.md), and a
 * penalty of half the benchmark's 2 s TTFT target. Calibrate both against your own servers.
 */
const SIM_PEAK_PREFILL_THROUGHPUT = 9400;
const STICKY_MAX_TTFT_PENALTY_MS = 1000;

const STICKY_PLUGINS = `- type: prefix-cache-affinity-filter
  parameters:
    affinityThreshold: 0.8
    explorationProbability: 0.01
    maxTTFTPenaltyMs: ${STICKY_MAX_TTFT_PENALTY_MS}
    peakPrefillThroughput: ${SIM_PEAK_PREFILL_THROUGHPUT}
- type: token-load-scorer
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
`;
const STICKY_PROFILE = `schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-affinity-filter
  - pluginRef: token-load-scorer
  - pluginRef: max-score-picker
`;

/** llm-d's current default shape over the approximate index: sticky until saturated, then token load. */
const APPROX_STICKY_CONFIG_TEXT = `${header}plugins:
${STICKY_PLUGINS}${STICKY_PROFILE}`;

/** Upstream's weighted scoring (queue 2, kv-cache 2, prefix 3) over the precise index. */
const PRECISE_322_CONFIG_TEXT = `${header}plugins:
${PRECISE_PLUGINS}${WEIGHTED_322_WITH_FALLBACK}`;

/** Sticky until saturated over the precise index (llm-d's precise path). */
const PRECISE_STICKY_CONFIG_TEXT = `${header}plugins:
${PRECISE_PLUGINS}${STICKY_PLUGINS}${STICKY_PROFILE}`;

/** Prefix affinity bounded by load (`bounded-affinity`) over the precise index. */
const PRECISE_BOUNDED_CONFIG_TEXT = eppDefaultConfigText('sim');

/** Dynamo-style KV cost (new prefill blocks × weight + held blocks, argmin) over the precise index. */
const PRECISE_COST_CONFIG_TEXT = `${header}plugins:
${PRECISE_PLUGINS}- type: kv-cost-scorer
  parameters:
    overlapScoreWeight: 1
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: kv-cost-scorer
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
  'approx-sticky': APPROX_STICKY_CONFIG_TEXT,
  'precise-322': PRECISE_322_CONFIG_TEXT,
  'precise-sticky': PRECISE_STICKY_CONFIG_TEXT,
  'precise-cost': PRECISE_COST_CONFIG_TEXT,
  'precise-bounded': PRECISE_BOUNDED_CONFIG_TEXT,
};

/** Presets that need the engines' KV events (the routing benchmark then starts the fleet with publishers). */
export function presetNeedsKvEvents(configText: string): boolean {
  return configText.includes('precise-prefix-cache-producer');
}
