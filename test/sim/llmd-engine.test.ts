// The llm-d compatibility latency model (sim-spec §2.1).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { submit, textOfTokens, ttftMs, virtualServer } from './helpers.ts';

const LLMD = { latencyModel: 'llmd', prefillTimeStdDevMs: 0, interTokenLatencyStdDevMs: 0 } as const;

describe('LlmdEngine', () => {
  it('per-token TTFT = overhead + uncached tokens × per-token cost; decode = ITL per token', () => {
    const { clock, server } = virtualServer({ ...LLMD, prefillOverheadMs: 30, prefillTimePerTokenMs: 0.25, interTokenLatencyMs: 12 });
    const prompt = textOfTokens(1000, 'llmd');
    const t = submit(server, prompt, 5);
    clock.runUntilIdle();
    assert.equal(ttftMs(t), 30 + Math.trunc(1000 * 0.25));
    assert.equal((t.tokenTimesMs[4] as number) - (t.tokenTimesMs[0] as number), 4 * 12);
    const again = submit(server, prompt, 1);
    clock.runUntilIdle();
    assert.equal(again.sequence.cachedTokens, 992);
    assert.equal(ttftMs(again), 30 + Math.trunc(8 * 0.25));
  });

  it('load factor: latencies scale linearly up to time-factor-under-load at max-num-seqs', () => {
    const { clock, server } = virtualServer({ ...LLMD, latencyCalculator: 'constant', ttftMs: 100, ttftStdDevMs: 0, maxNumSeqs: 3, timeFactorUnderLoad: 3 });
    const runs = [0, 1, 2].map((i) => submit(server, textOfTokens(10, `f${i}`), 1));
    clock.runUntilIdle();
    // f = 1 + (3 − 1) × (running − 1) / 2 for running = 1, 2, 3
    assert.deepEqual(runs.map(ttftMs), [100, 200, 300]);
  });

  it('fails a request whose prompt blocks do not fit the cache with 500, as the llm-d sim does', () => {
    const { clock, server } = virtualServer({ ...LLMD, kvCacheSize: 64, maxModelLen: 1024, maxNumSeqs: 4 });
    const big = submit(server, textOfTokens(900, 'big1'), 100);
    const other = submit(server, textOfTokens(900, 'big2'), 1);
    clock.runUntilIdle();
    assert.equal(big.finishReason, 'length');
    assert.equal(other.finishReason, 'error');
    assert.equal(server.pool.usage, 0);
  });
});
