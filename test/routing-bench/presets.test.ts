/** Every named policy config loads through the normal config path with the plugins it is meant to use. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../support/config.ts';
import { APPROX_322_WITH_FALLBACK_CONFIG_TEXT, CONFIG_PRESETS, eppDefaultConfigText, presetNeedsKvEvents } from '../../src/config/presets.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { builtinRegistry } from '../support/registry.ts';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { PluginMetricSources } from '../../src/runtime/plugin-metrics.ts';

function load(name: string, text = CONFIG_PRESETS[name]) {
  assert.ok(text, `preset ${name}`);
  return loadConfig({ text, origin: name }, {
    registry: builtinRegistry(),
    handle: (lookup) => ({ logger: silentLogger(), clock: { now: () => 0 }, random: createRandomSource(1), plugin: lookup, endpoints: () => [], inflight: new InFlightTracker(), metrics: new PluginMetricSources() }),
  });
}

const profileOf = (name: string, text?: string) => {
  const p = load(name, text).profiles[0]!;
  return {
    filters: p.filters.map((f) => f.typedName.type),
    scorers: p.scorers.map((s) => [s.scorer.typedName.type, s.weight]),
    picker: p.picker.typedName.type,
  };
};

test('the benchmark policies are named presets', () => {
  assert.deepEqual(Object.keys(CONFIG_PRESETS), [
    'round-robin',
    'random',
    'least-outstanding-requests',
    'upstream-default',
    'prefix-only',
    'epp-default',
    'bounded-affinity',
    'approx-sticky',
    'precise-322',
    'precise-sticky',
    'precise-cost',
    'precise-bounded',
  ]);
});

test('issue 18 policies: sticky until saturated (approximate, precise), 3:2:2 and cost over the precise index', () => {
  const sticky = { filters: ['prefix-cache-affinity-filter'], scorers: [['token-load-scorer', 1]], picker: 'max-score-picker' };
  assert.deepEqual(profileOf('approx-sticky'), sticky);
  assert.deepEqual(profileOf('precise-sticky'), sticky);
  assert.deepEqual(profileOf('precise-322').scorers, [
    ['queue-scorer', 2],
    ['kv-cache-utilization-scorer', 2],
    ['prefix-cache-scorer', 3],
  ]);
  assert.deepEqual(profileOf('precise-cost'), { filters: [], scorers: [['kv-cost-scorer', 1]], picker: 'max-score-picker' });
  assert.deepEqual(profileOf('precise-bounded'), profileOf('bounded-affinity'));
  const types = (name: string) => load(name).plugins.map((p) => p.typedName.type).sort();
  // The approximate sticky policy gets the approximate producer and the prefill load auto-added; the precise ones
  // use the precise producer instead (no approximate one), the sticky gate and the cost scorer the prefill load.
  assert.ok(types('approx-sticky').includes('approx-prefix-cache-producer'));
  assert.ok(types('approx-sticky').includes('prefill-load-producer'));
  for (const name of ['precise-322', 'precise-sticky', 'precise-cost', 'precise-bounded']) {
    assert.ok(types(name).includes('precise-prefix-cache-producer'), name);
    assert.ok(!types(name).includes('approx-prefix-cache-producer'), name);
  }
  assert.ok(types('precise-sticky').includes('prefill-load-producer'));
  assert.ok(types('precise-cost').includes('prefill-load-producer'));
  const gate = load('precise-sticky').plugins.find((p) => p.typedName.type === 'prefix-cache-affinity-filter') as unknown as { config: Record<string, number> };
  assert.deepEqual(gate.config, { affinityThreshold: 0.8, explorationProbability: 0.01, maxTTFTPenaltyMs: 1000, peakPrefillThroughput: 9400 });
});

test('baselines: round-robin, random, least-outstanding-requests, prefix-only', () => {
  assert.deepEqual(profileOf('round-robin'), { filters: [], scorers: [], picker: 'round-robin-picker' });
  assert.deepEqual(profileOf('random'), { filters: [], scorers: [], picker: 'random-picker' });
  assert.deepEqual(profileOf('least-outstanding-requests'), {
    filters: [],
    scorers: [['least-outstanding-requests-scorer', 1]],
    picker: 'max-score-picker',
  });
  assert.deepEqual(profileOf('prefix-only'), { filters: [], scorers: [['prefix-cache-scorer', 1]], picker: 'max-score-picker' });
});

test('upstream-default keeps upstream weights (queue 2, kv-cache 2, prefix 3)', () => {
  assert.deepEqual(profileOf('upstream-default').scorers, [
    ['queue-scorer', 2],
    ['kv-cache-utilization-scorer', 2],
    ['prefix-cache-scorer', 3],
  ]);
});

test('epp-default routes as precise-bounded (load-bounded affinity over the precise index), with a fallback endpoint for the gateway', () => {
  assert.equal(CONFIG_PRESETS['epp-default'], CONFIG_PRESETS['precise-bounded'], 'the same config');
  assert.equal(CONFIG_PRESETS['epp-default'], eppDefaultConfigText());
  assert.deepEqual(profileOf('epp-default'), profileOf('bounded-affinity'), 'bounded-affinity\'s filter, scorers, weights and picker');
  const types = load('epp-default').plugins.map((p) => p.typedName.type);
  assert.ok(types.includes('precise-prefix-cache-producer'));
  assert.ok(types.includes('token-producer'));
  assert.ok(!types.includes('approx-prefix-cache-producer'), 'the approximate index only as the precise producer\'s fallback');
  assert.equal(presetNeedsKvEvents(CONFIG_PRESETS['epp-default'] as string), true, 'the routing bench starts the fleet with KV-event publishers');
  assert.deepEqual(fallbackTargets('epp-default'), ['e1', 'e2']);
  // Against real servers (`epp demo --endpoints`), the same routing with the engines' own tokens.
  const render = load('epp-default (render)', eppDefaultConfigText('render'));
  const tokens = render.plugins.find((p) => p.typedName.type === 'token-producer') as unknown as { config: { backend: string } };
  assert.equal(tokens.config.backend, 'render');
  assert.deepEqual(profileOf('epp-default (render)', eppDefaultConfigText('render')), profileOf('epp-default'));
});

test('a scenario whose servers tokenize otherwise gives the precise policies\' sim token producer the same tokenizer', async () => {
  const { configForScenario, SCENARIOS } = await import('../../bench/routing/workload.ts');
  const code = SCENARIOS['sp-pressure-code']!;
  assert.equal(code.serverOptions?.tokenizer, 'chars3.2');
  for (const name of ['precise-322', 'precise-sticky', 'precise-cost', 'epp-default']) {
    const text = configForScenario(CONFIG_PRESETS[name] as string, code);
    const tokens = load(name, text).plugins.find((p) => p.typedName.type === 'token-producer') as unknown as { config: { backend: string; sim: { tokenizer: string } } };
    assert.deepEqual([tokens.config.backend, tokens.config.sim.tokenizer], ['sim', 'chars3.2'], name);
  }
  assert.equal(configForScenario(CONFIG_PRESETS['upstream-default'] as string, code), CONFIG_PRESETS['upstream-default'], 'no token producer: unchanged');
  assert.equal(configForScenario(CONFIG_PRESETS['precise-322'] as string, SCENARIOS['sp-pressure']!), CONFIG_PRESETS['precise-322']);
});

test('upstream-default (what `epp serve` loads without a config) stays on the approximate index; so does the micro-benchmarks\' approx-322', () => {
  for (const [name, text] of [['upstream-default', CONFIG_PRESETS['upstream-default']], ['approx-322', APPROX_322_WITH_FALLBACK_CONFIG_TEXT]] as const) {
    const types = load(name, text).plugins.map((p) => p.typedName.type);
    assert.ok(types.includes('approx-prefix-cache-producer'), name);
    assert.ok(!types.includes('precise-prefix-cache-producer'), name);
    assert.equal(presetNeedsKvEvents(text as string), false, name);
  }
  assert.deepEqual(profileOf('approx-322', APPROX_322_WITH_FALLBACK_CONFIG_TEXT), profileOf('upstream-default'));
});

test('bounded-affinity: load-bounded prefix affinity, then least-outstanding with the prefix score, a fallback endpoint, producers auto-added', () => {
  const cfg = load('bounded-affinity');
  const p = profileOf('bounded-affinity');
  assert.deepEqual(p.filters, ['bounded-prefix-affinity-filter']);
  assert.deepEqual(p.scorers.map((s) => s[0]), ['least-outstanding-requests-scorer', 'prefix-cache-scorer']);
  assert.equal(p.picker, 'max-score-picker');
  const types = cfg.plugins.map((x) => x.typedName.type);
  assert.ok(types.includes('approx-prefix-cache-producer'));
  assert.ok(types.includes('inflight-load-producer'));
  const filter = cfg.profiles[0]!.filters[0] as unknown as { config: { maxOutstandingRequests: number; loadFactor: number } };
  assert.deepEqual([filter.config.maxOutstandingRequests, filter.config.loadFactor], [32, 1.25]);
  assert.deepEqual(fallbackTargets('bounded-affinity'), ['e1', 'e2'], 'the fallback endpoint serves the gateway retry');
});

/** The picker's targets for three scored endpoints: the best, then the fallback. */
function fallbackTargets(name: string): string[] {
  const picker = load(name).profiles[0]!.picker;
  const scored = [0.2, 0.9, 0.5].map((score, i) => ({ candidate: { endpoint: { hostPort: `e${i}` }, attributes: new Map() }, score }));
  return picker.pick(new Map(), scored as never).targets.map((c) => c.endpoint.hostPort);
}
