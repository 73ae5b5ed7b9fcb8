// Acceptance check 4 of sim-spec §6.5: a closed-loop concurrency sweep on one server, in virtual time.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runClosedLoop } from '../../src/sim/closed-loop.ts';
import type { LoadResult } from '../../src/sim/closed-loop.ts';
import { sharedPrefixPrompts } from '../../src/sim/shared-prefix-workload.ts';

describe('concurrency sweep (§6.5 check 4, sp-main shape, one server)', () => {
  const { prompts } = sharedPrefixPrompts({ groups: 32, promptsPerGroup: 16, systemPromptTokens: 2048, questionTokens: 256, seed: 7 });
  const levels = [1, 4, 16, 32, 64];
  const results = new Map<number, LoadResult>();
  for (const concurrency of levels) {
    results.set(concurrency, runClosedLoop({ concurrency, prompts, maxTokens: 128, warmupMs: 5_000, measureMs: 30_000 }));
  }
  const r = (c: number): LoadResult => results.get(c) as LoadResult;

  it('throughput rises, then flattens', () => {
    assert.ok(r(4).outputTokensPerSecond > 2 * r(1).outputTokensPerSecond, 'rises');
    assert.ok(r(16).outputTokensPerSecond > r(4).outputTokensPerSecond, 'still rises to 16');
    assert.ok(r(64).outputTokensPerSecond < 1.1 * r(32).outputTokensPerSecond, 'flat past saturation');
    assert.ok(r(32).outputTokensPerSecond < 1.15 * r(16).outputTokensPerSecond, 'nearly flat from 16 to 32');
  });

  it('ITL grows with batch size', () => {
    assert.ok(r(1).itlP50Ms < r(4).itlP50Ms && r(4).itlP50Ms < r(16).itlP50Ms, `${r(1).itlP50Ms} ${r(4).itlP50Ms} ${r(16).itlP50Ms}`);
    assert.ok(r(1).itlP50Ms > 12 && r(1).itlP50Ms < 14);
  });

  it('once KV is exhausted requests wait, and overload preempts', () => {
    assert.equal(r(1).maxWaiting, 0);
    assert.ok(r(64).meanKvUsage > 0.9, `kv usage ${r(64).meanKvUsage}`);
    assert.ok(r(64).meanRunning < 32, 'KV, not max-num-seqs, bounds the batch');
    assert.ok(r(32).meanWaiting > 1 && r(64).meanWaiting > 30, `waiting ${r(32).meanWaiting} ${r(64).meanWaiting}`);
    assert.ok(r(64).preemptions > 0);
    assert.ok(r(64).ttftP50Ms > 10 * r(4).ttftP50Ms, 'queueing dominates TTFT past saturation');
  });
});
