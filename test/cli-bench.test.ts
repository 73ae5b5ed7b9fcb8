/** `epp bench routing …` runs bench/routing/run.ts in its own Node process with the flags unchanged. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { benchArgv } from '../src/cli/bench.ts';
import { FULL_SCENARIOS, parseArgs, QUICK_POLICIES, QUICK_SCENARIOS } from '../bench/routing/run.ts';

test('benchArgv: tsx loader, the routing runner, the flags as given', () => {
  const argv = benchArgv('routing', ['--quick', '--policies', 'round-robin,upstream-default']);
  assert.deepEqual(argv.slice(0, 2), ['--import', 'tsx']);
  assert.match(argv[2] as string, /bench[\\/]routing[\\/]run\.ts$/);
  assert.ok(existsSync(argv[2] as string));
  assert.deepEqual(argv.slice(3), ['--quick', '--policies', 'round-robin,upstream-default']);
  assert.throws(() => benchArgv('nope', []), /unknown benchmark nope; known: routing, calibrate/);
});

test('routing flags: --quick defaults (one scenario, five policies, one seed, no refinement); full defaults 3 seeds, 3 refinement rates', () => {
  const q = parseArgs(['--quick']);
  assert.deepEqual([q.scenarios, q.policies, q.seeds, q.refine], [[...QUICK_SCENARIOS], [...QUICK_POLICIES], 1, 0]);
  const full = parseArgs([]);
  assert.deepEqual([full.scenarios, full.seeds, full.refine], [[...FULL_SCENARIOS], 3, 3]);
  assert.ok(full.policies.includes('precise-cost') && full.policies.includes('round-robin'));
  const own = parseArgs(['--quick', '--policies', 'round-robin', '--seeds', '5', '--refine', '2']);
  assert.deepEqual([own.policies, own.seeds, own.refine], [['round-robin'], 5, 2]);
  assert.throws(() => parseArgs(['--seeds', '0']), /--seeds needs a positive integer/);
});

test('calibration fit: TTFT = a + tokens / R recovers R and a; gate parameters from it', async () => {
  const { fitPrefill, gateParameters } = await import('../bench/routing/calibrate.ts');
  // The simulator's step model: 12 ms + 100 µs per prefill token (sim-spec §6.3) → R = 10,000 tokens/s.
  const fit = fitPrefill([256, 512, 1024, 2048].map((tokens) => ({ tokens, ttftS: 0.012 + tokens * 1e-4 })));
  assert.ok(Math.abs(fit.tokensPerS - 10_000) < 1e-6 && Math.abs(fit.interceptS - 0.012) < 1e-9 && Math.abs(fit.r2 - 1) < 1e-12);
  assert.deepEqual(gateParameters(fit, 2), { peakPrefillThroughput: 10_000, maxTTFTPenaltyMs: 1000 });
  assert.equal(fitPrefill([{ tokens: 1, ttftS: 1 }, { tokens: 2, ttftS: 0.5 }]).tokensPerS, Infinity);
  assert.throws(() => fitPrefill([{ tokens: 1, ttftS: 1 }]), /at least two/);
});
