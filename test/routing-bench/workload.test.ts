/** The routing benchmark's load generator is deterministic: same scenario, load and seed → same requests. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineChart, maxSustained, type StageResult } from '../../bench/routing/report.ts';
import { parseMetrics } from '../../bench/routing/run.ts';
import { quantiles } from '../../bench/routing/stats.ts';
import { buildSchedule, defaultLoad, PromptBook, SCENARIOS, secondGatewayServers, stageStarts, type LoadSpec, type ScenarioSpec } from '../../bench/routing/workload.ts';

const main = SCENARIOS['sp-main'] as ScenarioSpec;
const load = (over: Partial<LoadSpec> = {}): LoadSpec => ({ ...defaultLoad({ rates: [4, 8], stageS: 20, warmupS: 10, seed: 7 }), ...over });

test('same seed: identical schedule and prompt texts', () => {
  const a = buildSchedule(main, load());
  const b = buildSchedule(main, load());
  assert.deepEqual(a, b);
  const ba = new PromptBook(main, 7);
  const bb = new PromptBook(main, 7);
  for (const r of a.slice(0, 50)) assert.equal(ba.prompt(r), bb.prompt(r));
});

test('different seed: different arrivals and order', () => {
  const a = buildSchedule(main, load());
  const b = buildSchedule(main, load({ seed: 8 }));
  assert.notDeepEqual(a.slice(0, 20).map((r) => [r.atS, r.group, r.item]), b.slice(0, 20).map((r) => [r.atS, r.group, r.item]));
  assert.notEqual(new PromptBook(main, 7).system(0), new PromptBook(main, 8).system(0));
});

test('the prompt sequence does not depend on the rates (every policy and ladder sees the same order)', () => {
  const slow = buildSchedule(main, load({ stages: [{ rate: 2, duration: 100 }] }));
  const fast = buildSchedule(main, load({ stages: [{ rate: 20, duration: 100 }] }));
  const n = Math.min(slow.length, fast.length);
  assert.deepEqual(slow.slice(0, n).map((r) => [r.group, r.item]), fast.slice(0, n).map((r) => [r.group, r.item]));
});

test('stages: arrivals inside their window, counts near rate × duration, warm-up tagged −1', () => {
  const l = load();
  const s = buildSchedule(main, l);
  const starts = stageStarts(l);
  assert.deepEqual(starts, [10, 30]);
  for (const r of s) {
    if (r.stage === -1) assert.ok(r.atS >= 0 && r.atS < 10);
    else assert.ok(r.atS >= (starts[r.stage] as number) && r.atS < (starts[r.stage] as number) + 20);
  }
  const count = (stage: number) => s.filter((r) => r.stage === stage).length;
  assert.ok(Math.abs(count(-1) - 60) < 30, `warm-up ${count(-1)}`);
  assert.ok(Math.abs(count(0) - 80) < 35, `stage 0 ${count(0)}`);
  assert.ok(Math.abs(count(1) - 160) < 50, `stage 1 ${count(1)}`);
  for (let i = 1; i < s.length; i++) assert.ok((s[i] as { atS: number }).atS > (s[i - 1] as { atS: number }).atS);
  const constant = buildSchedule(main, load({ arrival: 'constant' })).filter((r) => r.stage === 0);
  assert.equal(constant.length, 80);
});

test('shuffled order cycles through all groups × prompts; group-major keeps a group together', () => {
  const s = buildSchedule(main, load({ warmup: { rate: 0, duration: 0 }, stages: [{ rate: 100, duration: 10.3 }] }));
  const firstCycle = s.slice(0, 512).map((r) => `${r.group}/${r.item}`);
  assert.equal(new Set(firstCycle).size, 512);
  assert.deepEqual(s.slice(512, 520).map((r) => [r.group, r.item]), s.slice(0, 8).map((r) => [r.group, r.item]));
  const gm = buildSchedule({ ...main, order: 'group-major' }, load({ warmup: { rate: 0, duration: 0 }, stages: [{ rate: 100, duration: 1 }] }));
  assert.deepEqual(gm.slice(0, 16).map((r) => r.group), new Array(16).fill(0));
});

test('prompt lengths: block-aligned system prompt, 4 characters per token', () => {
  const book = new PromptBook(main, 7);
  const r = buildSchedule(main, load())[0]!;
  assert.equal(book.system(r.group).length, 2048 * 4);
  assert.equal(book.prompt(r).length, (2048 + 256) * 4);
  assert.equal(r.maxTokens, 128);
  assert.ok(book.prompt(r).startsWith(book.system(r.group)));
});

test('skewed: Zipf popularity makes group 0 the hottest; multi-turn draws lengths per turn', () => {
  const s = buildSchedule(SCENARIOS['sp-skewed'] as ScenarioSpec, load());
  const counts = new Array(16).fill(0) as number[];
  for (const r of s) counts[r.group]!++;
  assert.equal(counts.indexOf(Math.max(...counts)), 0);
  assert.ok((counts[0] as number) > 3 * (counts[15] as number));
  // The scarce-cache variants: sp-pressure's arrivals, the hottest of 29 (47) groups ≈ 33 % (31 %) of the requests.
  for (const [name, groups, hot] of [['sp-pressure-skewed', 29, 0.328], ['sp-overflow-skewed', 47, 0.305]] as const) {
    const many = load({ stages: [{ rate: 40, duration: 100 }] });
    const sk = buildSchedule(SCENARIOS[name] as ScenarioSpec, many);
    assert.deepEqual(sk.map((r) => r.atS), buildSchedule(SCENARIOS['sp-pressure'] as ScenarioSpec, many).map((r) => r.atS), name);
    const c = new Array(groups).fill(0) as number[];
    for (const r of sk) c[r.group]!++;
    assert.ok(Math.abs((c[0] as number) / sk.length - hot) < 0.03, `${name}: group 0 has ${(c[0] as number) / sk.length}`);
  }
  const mt = buildSchedule(SCENARIOS['sp-multiturn'] as ScenarioSpec, load());
  assert.ok(new Set(mt.map((r) => r.maxTokens)).size > 10);
});

test('report helpers: quantiles, max sustained rate, SVG chart, metrics parsing', () => {
  assert.deepEqual(quantiles([5, 1, 4, 2, 3]), { p50: 3, p90: 5, p99: 5 });
  const stage = (rate: number, p90: number, invalid = false) =>
    ({ rate, skipped: false, sent: 100, errors: 0, timeouts: 0, ttftS: { p50: 0, p90, p99: 0 }, invalid }) as unknown as StageResult;
  assert.deepEqual(maxSustained([stage(4, 0.1), stage(8, 1.9), stage(12, 2.5), stage(16, 0.1)]), { rate: 8, invalid: false });
  assert.deepEqual(maxSustained([stage(4, 3)]), { rate: 0, invalid: false });
  assert.deepEqual(maxSustained([stage(4, 0.1, true), stage(8, 3)]), { rate: 4, invalid: true });
  const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', logY: true, series: [{ name: 'round-robin', points: [[4, 0.2], [8, 20]] }] });
  assert.match(svg, /^<svg[^>]+>/);
  assert.match(svg, /<polyline/);
  const m = parseMetrics(
    '# HELP x\nvllm:num_requests_waiting{model_name="m",engine="0"} 3\nvllm:prefix_cache_hits_total{model_name="m"} 10\n' +
      'vllm:prefix_cache_hits_total{model_name="n"} 5\nsim_event_loop_lag_seconds{quantile="0.99"} 0.004\nother 1\n',
  );
  assert.equal(m.get('vllm:num_requests_waiting'), 3);
  assert.equal(m.get('vllm:prefix_cache_hits_total'), 15);
  assert.equal(m.get('lagP99Ms'), 4);
  assert.equal(m.has('other'), false);
});

test('KV sizing: sp-pressure needs ~73 % and sp-overflow ~120 % of the fleet’s KV blocks (sim defaults)', async () => {
  const { defaultServerOptions } = await import('../../src/sim/config.ts');
  const { kvPressure, residentPromptBlocks, FLEET_KV_BLOCKS_PER_SERVER, KV_BLOCK_TOKENS } = await import('../../bench/routing/workload.ts');
  const sim = defaultServerOptions();
  // The constants the scenarios are sized with are the simulator's defaults.
  assert.equal(sim.kvCacheSize, FLEET_KV_BLOCKS_PER_SERVER);
  assert.equal(sim.blockSize, KV_BLOCK_TOKENS);
  const pressure = SCENARIOS['sp-pressure'] as ScenarioSpec;
  const overflow = SCENARIOS['sp-overflow'] as ScenarioSpec;
  // 29 groups × (2048/16 system blocks + 5 questions × 256/16) = 29 × 208 = 6032 of 4 × 2048 = 8192 blocks.
  assert.equal(residentPromptBlocks(pressure), 6032);
  assert.equal(pressure.servers * sim.kvCacheSize, 8192);
  assert.ok(Math.abs(kvPressure(pressure) - 0.73) < 0.01, `sp-pressure ${kvPressure(pressure)}`);
  // 47 × 208 = 9776 blocks = 119 %.
  assert.equal(residentPromptBlocks(overflow), 9776);
  assert.ok(Math.abs(kvPressure(overflow) - 1.2) < 0.015, `sp-overflow ${kvPressure(overflow)}`);
  // Round-robin puts every prefix on every server: it needs more than one server holds; a quarter fits.
  assert.ok(residentPromptBlocks(pressure) > sim.kvCacheSize && residentPromptBlocks(pressure) / 4 < sim.kvCacheSize);
  assert.ok(residentPromptBlocks(overflow) / 4 > sim.kvCacheSize);
  // The divergence scenarios keep sp-pressure's sizing; sp-main is far from pressure (32 × (128 + 16 × 16)).
  for (const s of ['sp-reset', 'sp-reset-5s', 'sp-bypass', 'sp-second-gateway', 'sp-cancel', 'sp-pressure-unsized']) assert.equal(kvPressure(SCENARIOS[s] as ScenarioSpec), kvPressure(pressure));
  assert.equal(kvPressure(SCENARIOS['sp-overflow-unsized'] as ScenarioSpec), kvPressure(overflow));
  // The skewed variants keep the cache as scarce; only the groups' popularity differs.
  assert.equal(kvPressure(SCENARIOS['sp-pressure-skewed'] as ScenarioSpec), kvPressure(pressure));
  assert.equal(kvPressure(SCENARIOS['sp-overflow-skewed'] as ScenarioSpec), kvPressure(overflow));
  assert.equal(residentPromptBlocks(main), 32 * (128 + 16 * 16));
});

test('divergence draws: ~30 % bypass spread over the servers, ~10 % cancels in [5, 30] ms; arrivals and prompts unchanged', () => {
  const l = load({ warmup: { rate: 0, duration: 0 }, stages: [{ rate: 50, duration: 100 }] });
  const base = buildSchedule(SCENARIOS['sp-pressure'] as ScenarioSpec, l);
  const bypass = buildSchedule(SCENARIOS['sp-bypass'] as ScenarioSpec, l);
  const cancel = buildSchedule(SCENARIOS['sp-cancel'] as ScenarioSpec, l);
  assert.deepEqual(bypass.map((r) => [r.atS, r.group, r.item]), base.map((r) => [r.atS, r.group, r.item]));
  assert.deepEqual(cancel.map((r) => [r.atS, r.group, r.item]), base.map((r) => [r.atS, r.group, r.item]));
  assert.ok(base.every((r) => r.bypass === undefined && r.cancelAfterS === undefined));
  const direct = bypass.filter((r) => r.bypass !== undefined);
  assert.ok(Math.abs(direct.length / bypass.length - 0.3) < 0.03, `bypass ${direct.length / bypass.length}`);
  for (let s = 0; s < 4; s++) assert.ok(direct.filter((r) => r.bypass === s).length > direct.length * 0.2);
  const cancelled = cancel.filter((r) => r.cancelAfterS !== undefined);
  assert.ok(Math.abs(cancelled.length / cancel.length - 0.1) < 0.02, `cancel ${cancelled.length / cancel.length}`);
  assert.ok(cancelled.every((r) => (r.cancelAfterS as number) >= 0.005 && (r.cancelAfterS as number) <= 0.03));
  assert.deepEqual(SCENARIOS['sp-reset']?.reset, { server: 0, everyS: 30, force: true });
});

test('sp-bypass: bypassing requests carry their own unique 2,304-token prompts; the EPP-routed ones are sp-pressure\'s', () => {
  const scenario = SCENARIOS['sp-bypass'] as ScenarioSpec;
  const l = load({ warmup: { rate: 0, duration: 0 }, stages: [{ rate: 20, duration: 20 }] });
  const schedule = buildSchedule(scenario, l);
  const book = new PromptBook(scenario, l.seed);
  const pressureBook = new PromptBook(SCENARIOS['sp-pressure'] as ScenarioSpec, l.seed);
  const systems = new Set(Array.from({ length: scenario.groups }, (_, g) => book.system(g)));
  const own = schedule.filter((r) => r.bypass !== undefined).map((r) => book.prompt(r));
  assert.ok(own.length > 50);
  assert.equal(new Set(own).size, own.length, 'unique per request');
  for (const p of own) {
    assert.equal(p.length, 2304 * 4, '2,304 chars4 tokens');
    assert.ok(![...systems].some((sys) => p.startsWith(sys.slice(0, 64))), 'shares no group prefix');
  }
  for (const r of schedule.filter((x) => x.bypass === undefined).slice(0, 20)) assert.equal(book.prompt(r), pressureBook.prompt(r));
});

test('second gateway map: balanced (29 groups → 8/7/7/7), the same for a seed, different across seeds', () => {
  const map = secondGatewayServers(29, 4, 7);
  assert.equal(map.length, 29);
  const per = [0, 1, 2, 3].map((s) => map.filter((x) => x === s).length).sort((a, b) => b - a);
  assert.deepEqual(per, [8, 7, 7, 7]);
  assert.deepEqual(secondGatewayServers(29, 4, 7), map);
  assert.notDeepEqual(secondGatewayServers(29, 4, 8), map);
  assert.throws(() => secondGatewayServers(0, 4, 7), /groups/);
  assert.throws(() => secondGatewayServers(29, 0, 7), /servers/);
});

test('sp-second-gateway: half the requests go to their group\'s pinned server with the group\'s own prompt; arrivals and prompts are sp-pressure\'s', () => {
  const scenario = SCENARIOS['sp-second-gateway'] as ScenarioSpec;
  const pressure = SCENARIOS['sp-pressure'] as ScenarioSpec;
  const l = load({ warmup: { rate: 0, duration: 0 }, stages: [{ rate: 40, duration: 100 }] });
  const schedule = buildSchedule(scenario, l);
  const base = buildSchedule(pressure, l);
  assert.deepEqual(schedule.map((r) => [r.atS, r.group, r.item, r.questionTokens, r.maxTokens]), base.map((r) => [r.atS, r.group, r.item, r.questionTokens, r.maxTokens]));
  const direct = schedule.filter((r) => r.bypass !== undefined);
  assert.ok(Math.abs(direct.length / schedule.length - 0.5) < 0.03, `second gateway share ${direct.length / schedule.length}`);
  // Every group reaches the servers through both gateways; the second always uses the group's one server.
  const pinned = secondGatewayServers(scenario.groups, scenario.servers, l.seed);
  for (const r of direct) assert.equal(r.bypass, pinned[r.group]);
  for (let g = 0; g < scenario.groups; g++) {
    assert.ok(direct.some((r) => r.group === g) && schedule.some((r) => r.group === g && r.bypass === undefined), `group ${g} on both`);
  }
  // Same prompt texts as sp-pressure (shared prefixes, not unique ones), for routed and direct requests alike.
  const book = new PromptBook(scenario, l.seed);
  const pressureBook = new PromptBook(pressure, l.seed);
  for (const r of [...direct.slice(0, 20), ...schedule.filter((x) => x.bypass === undefined).slice(0, 20)]) assert.equal(book.prompt(r), pressureBook.prompt(r));
  // Deterministic by seed; another seed pins the groups elsewhere.
  assert.deepEqual(buildSchedule(scenario, l), schedule);
  const other = buildSchedule(scenario, { ...l, seed: l.seed + 1 }).filter((r) => r.bypass !== undefined);
  const otherPinned = secondGatewayServers(scenario.groups, scenario.servers, l.seed + 1);
  for (const r of other) assert.equal(r.bypass, otherPinned[r.group]);
});

test('the capacity-mismatch scenarios: sp-pressure\'s and sp-overflow\'s requests on servers without a block count, or tokenizing code-like', () => {
  for (const [name, base, options] of [
    ['sp-pressure-unsized', 'sp-pressure', { metricsNumGpuBlocks: false }],
    ['sp-overflow-unsized', 'sp-overflow', { metricsNumGpuBlocks: false }],
    ['sp-pressure-code', 'sp-pressure', { tokenizer: 'chars3.2' }],
  ] as const) {
    const s = SCENARIOS[name] as ScenarioSpec;
    assert.deepEqual(s.serverOptions, options, name);
    const l = defaultLoad({ seed: 7, rates: [12, 24], stageS: 10, warmupS: 10 });
    assert.deepEqual(buildSchedule(s, l), buildSchedule(SCENARIOS[base] as ScenarioSpec, l), `${name}: the same requests as ${base}`);
  }
});
