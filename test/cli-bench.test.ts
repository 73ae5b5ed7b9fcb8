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
  assert.throws(() => benchArgv('nope', []), /unknown benchmark nope; known: routing/);
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
