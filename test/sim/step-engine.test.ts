// Acceptance checks 1–3 of sim-spec §6.5 and the scheduler's rules, on a virtual clock with step jitter off.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { submit, textOfTokens, ttftMs, virtualServer } from './helpers.ts';

const PROMPT_TOKENS = 2304; // 144 full blocks, two prefill chunks under the 2048-token budget
const close = (actual: number, expected: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} != ${expected}`);

describe('StepEngine timing (§6.5 check 1)', () => {
  it('cold prompt: TTFT = one step per prefill chunk; ITL = one single-sequence step', () => {
    const { clock, server } = virtualServer();
    const t = submit(server, textOfTokens(PROMPT_TOKENS, 'cold'), 4);
    clock.runUntilIdle();
    // chunk 1: 12 ms + 2048 × 0.1 ms; chunk 2: 12 ms + 256 × 0.1 ms
    close(ttftMs(t), 12 + 204.8 + 12 + 25.6, 'TTFT');
    // decode with context K = prompt + tokens so far: 12 + 0.25 + 0.05 × K / 1000
    close((t.tokenTimesMs[1] as number) - (t.tokenTimesMs[0] as number), 12 + 0.25 + 0.05 * 2.305, 'ITL 1');
    close((t.tokenTimesMs[2] as number) - (t.tokenTimesMs[1] as number), 12 + 0.25 + 0.05 * 2.306, 'ITL 2');
    assert.equal(t.finishReason, 'length');
    assert.equal(t.finishCalls, 1);
    assert.equal(t.sequence.cachedTokens, 0);
  });

  it('a concurrent cold prompt shares the step budget and delays the other one (prefill interference)', () => {
    const { clock, server } = virtualServer();
    const a = submit(server, textOfTokens(PROMPT_TOKENS, 'a'), 2);
    const b = submit(server, textOfTokens(PROMPT_TOKENS, 'b'), 2);
    clock.runUntilIdle();
    // step 1: a's 2048; step 2: a's last 256 + b's first 1792 (2048 tokens) → a's first token
    close(ttftMs(a), 2 * (12 + 204.8), 'TTFT a');
    assert.ok(ttftMs(b) > ttftMs(a));
  });

  it('step-overhead and speed-factor scale every step', () => {
    const { clock, server } = virtualServer({ speedFactor: 2 });
    const t = submit(server, textOfTokens(PROMPT_TOKENS, 'slow'), 2);
    clock.runUntilIdle();
    close(ttftMs(t), 2 * (12 + 204.8 + 12 + 25.6), 'TTFT at speed-factor 2');
  });
});

describe('prefix cache (§6.5 checks 2 and 3)', () => {
  it('the same prompt twice: cached_tokens = ⌊(prompt − 1)/16⌋ × 16, TTFT drops, hits counter grows by it', () => {
    const { clock, server } = virtualServer();
    const prompt = textOfTokens(PROMPT_TOKENS, 'same');
    const first = submit(server, prompt, 2);
    clock.runUntilIdle();
    const hitsBefore = server.metrics.counters().prefixHits;
    const second = submit(server, prompt, 2);
    clock.runUntilIdle();
    const expectedCached = Math.floor((PROMPT_TOKENS - 1) / 16) * 16;
    assert.equal(expectedCached, 2288);
    assert.equal(second.sequence.cachedTokens, expectedCached);
    assert.equal(server.metrics.counters().prefixHits - hitsBefore, expectedCached);
    close(ttftMs(second), 12 + 16 * 0.1, 'cached TTFT');
    assert.ok(ttftMs(first) > 10 * ttftMs(second));
  });

  it('a LoRA adapter has its own cache namespace', () => {
    const { clock, server } = virtualServer({ loras: { tuned: '/adapters/tuned' } });
    const prompt = textOfTokens(256, 'ns');
    submit(server, prompt, 1);
    clock.runUntilIdle();
    const lora = submit(server, prompt, 1, { model: 'tuned' });
    clock.runUntilIdle();
    assert.equal(lora.sequence.cachedTokens, 0);
    const again = submit(server, prompt, 1);
    clock.runUntilIdle();
    assert.equal(again.sequence.cachedTokens, 240);
  });

  it('a full cache evicts the oldest idle prefix first, its last blocks before its first', () => {
    const { clock, server } = virtualServer({ kvCacheSize: 64, maxModelLen: 1024 });
    const run = (tag: string, tokens: number) => {
      const t = submit(server, textOfTokens(tokens, tag), 1);
      clock.runUntilIdle();
      return t.sequence.blockHashes.slice(0, Math.floor(tokens / 16));
    };
    const prefixes = ['A', 'B', 'C', 'D'].map((tag) => run(tag, 256)); // 4 × 16 blocks = the whole pool
    const cachedBlocks = (h: number[]) => server.pool.lookup(h, h.length);
    assert.deepEqual(prefixes.map(cachedBlocks), [16, 16, 16, 16]);
    run('E', 128); // needs 8 blocks
    assert.deepEqual(prefixes.map(cachedBlocks), [8, 16, 16, 16]);
    run('F', 256); // needs 16 more
    assert.deepEqual(prefixes.map(cachedBlocks), [0, 8, 16, 16]);
  });

  it('blocks pinned by a running request are never evicted', () => {
    const { clock, server } = virtualServer({ kvCacheSize: 64, maxModelLen: 1024 });
    const pinned = submit(server, textOfTokens(256, 'P'), 400);
    clock.advanceBy(200);
    assert.equal(pinned.sequence.status, 'running');
    const others: number[][] = [];
    for (let i = 0; i < 12; i++) {
      const q = submit(server, textOfTokens(128, `Q${i}`), 1);
      while (q.finishReason === null) clock.advanceBy(5);
      others.push(q.sequence.blockHashes.slice(0, 8));
    }
    assert.equal(pinned.sequence.status, 'running');
    assert.equal(server.pool.lookup(pinned.sequence.blockHashes, 16), 16);
    assert.equal(server.pool.lookup(others[0] as number[], 8), 0, 'oldest idle prefix was evicted');
    assert.equal(server.pool.lookup(others[11] as number[], 8), 8, 'newest prefix is still cached');
    clock.runUntilIdle();
    assert.equal(pinned.tokenTimesMs.length, 400);
  });
});

describe('scheduling', () => {
  it('KV exhaustion preempts the newest request, which recomputes and still delivers every token once, in order', () => {
    const { clock, server } = virtualServer({ kvCacheSize: 64, maxModelLen: 1024 });
    const runs = [0, 1, 2, 3].map((i) => submit(server, textOfTokens(200, `R${i}`), 300));
    clock.runUntilIdle();
    assert.ok(server.metrics.counters().preemptions > 0, 'expected preemptions');
    assert.ok(runs.some((r) => r.sequence.preemptions > 0));
    for (const r of runs) {
      assert.equal(r.finishReason, 'length');
      assert.deepEqual(r.indices, Array.from({ length: 300 }, (_, i) => i));
    }
    assert.equal(server.pool.usage, 0);
    assert.deepEqual(server.state(), { running: 0, waiting: 0, kvUsage: 0, runningLoras: [], waitingLoras: [] });
  });

  it('max-num-seqs bounds the batch; the rest waits in FCFS order', () => {
    const { clock, server } = virtualServer({ maxNumSeqs: 2 });
    const runs = [0, 1, 2, 3].map((i) => submit(server, textOfTokens(32, `S${i}`), 20));
    clock.advanceBy(1);
    assert.equal(server.state().running, 2);
    assert.equal(server.state().waiting, 2);
    clock.runUntilIdle();
    const firstTokens = runs.map((r) => r.tokenTimesMs[0] as number);
    assert.ok((firstTokens[2] as number) > (firstTokens[1] as number));
    assert.ok((firstTokens[3] as number) >= (firstTokens[2] as number));
  });

  it('max-loras: a request whose adapter has no slot waits while later requests go ahead', () => {
    const { clock, server } = virtualServer({ maxLoras: 1, loras: { a: 'a', b: 'b' } });
    const ra = submit(server, textOfTokens(32, 'la'), 50, { model: 'a' });
    const rb = submit(server, textOfTokens(32, 'lb'), 50, { model: 'b' });
    const base = submit(server, textOfTokens(32, 'base'), 5);
    clock.advanceBy(30);
    const state = server.state();
    assert.deepEqual(state.runningLoras, ['a']);
    assert.deepEqual(state.waitingLoras, ['b']);
    assert.equal(base.sequence.status, 'running');
    clock.runUntilIdle();
    assert.ok((rb.tokenTimesMs[0] as number) > (ra.tokenTimesMs[49] as number) - 1e-9);
  });

  it('abort frees the blocks and reports finish once', () => {
    const { clock, server } = virtualServer();
    const t = submit(server, textOfTokens(512, 'abort'), 100);
    clock.advanceBy(100);
    assert.ok(server.pool.usage > 0);
    server.engine.abort(t.sequence);
    server.engine.abort(t.sequence);
    clock.runUntilIdle();
    assert.equal(t.finishReason, 'abort');
    assert.equal(t.finishCalls, 1);
    assert.equal(server.pool.usage, 0);
    assert.equal(server.metrics.counters().success['abort'], 1);
  });
});

describe('faults in the engine', () => {
  it('ttft-spike delays the first token by (factor − 1) × TTFT + extra', () => {
    const { clock, server } = virtualServer({ ttftSpikeRate: 100, ttftSpikeFactor: 2, ttftSpikeExtraMs: 500 });
    const t = submit(server, textOfTokens(PROMPT_TOKENS, 'spike'), 3);
    clock.runUntilIdle();
    const base = 12 + 204.8 + 12 + 25.6;
    close(ttftMs(t), 2 * base + 500, 'spiked TTFT');
    assert.deepEqual(t.indices, [0, 1, 2]);
  });

  it('a stall stops stepping for its duration', () => {
    const { clock, server } = virtualServer();
    server.stall(1000);
    const t = submit(server, textOfTokens(PROMPT_TOKENS, 'stall'), 2);
    clock.runUntilIdle();
    close(ttftMs(t), 1000 + 12 + 204.8 + 12 + 25.6, 'TTFT after a stall');
  });

  it('periodic stalls (stall-every / stall-duration) add their time to decoding', () => {
    const { clock, server } = virtualServer({ stallEveryMs: 100, stallDurationMs: 50 });
    const t = submit(server, textOfTokens(16, 'periodic'), 40);
    clock.runUntilIdle();
    const span = (t.tokenTimesMs[39] as number) - (t.tokenTimesMs[0] as number);
    const gaps = t.tokenTimesMs.slice(1).map((x, i) => x - (t.tokenTimesMs[i] as number));
    assert.ok(gaps.some((g) => g > 50), 'some gap contains a stall');
    assert.ok(span > 39 * 12.25 + 2 * 50);
  });
});
