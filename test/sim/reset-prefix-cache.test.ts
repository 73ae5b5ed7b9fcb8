// vLLM's reset_prefix_cache on the simulator: refused while requests hold blocks, forced with
// reset_running_requests (running requests are preempted and recompute), and the KV events tell a subscriber
// exactly what the cache holds afterwards.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KvEventBatch } from '../../src/sim/kv-events.ts';
import type { SimServer } from '../../src/sim/sim-server.ts';
import { submit, textOfTokens, virtualServer } from './helpers.ts';

/** Replays a server's KV events into the set of cached hashes a precise index would hold. */
function eventMirror(server: SimServer): { cached: Set<number>; cleared: () => number; removed: () => number } {
  const cached = new Set<number>();
  let cleared = 0;
  let removed = 0;
  server.kvEvents.subscribe((batch: KvEventBatch) => {
    for (const e of batch.events) {
      if (e.type === 'BlockStored') for (const h of e.block_hashes) cached.add(h);
      else if (e.type === 'BlockRemoved') {
        for (const h of e.block_hashes) cached.delete(h);
        removed += e.block_hashes.length;
      }
      else {
        cached.clear();
        cleared++;
      }
    }
  });
  return { cached, cleared: () => cleared, removed: () => removed };
}

const poolHashes = (server: SimServer): Set<number> => new Set([...server.pool.cachedBlocks()].map((b) => b.hash));

for (const latencyModel of ['step', 'llmd'] as const) {
  describe(`reset_prefix_cache (${latencyModel} engine)`, () => {
    it('refuses while requests run; forced, it preempts them, clears the cache at once, and they still finish', () => {
      const { clock, server } = virtualServer({ latencyModel });
      const mirror = eventMirror(server);
      const shared = textOfTokens(512, 'system');
      const done = submit(server, shared + textOfTokens(64, 'q0'), 2);
      clock.runUntilIdle();
      assert.equal(done.finishReason, 'length');
      const running = [1, 2, 3].map((i) => submit(server, shared + textOfTokens(64, `q${i}`), 40));
      clock.advanceBy(100); // admitted, prefilled, decoding
      assert.equal(server.state().running, 3);
      assert.ok(server.pool.usage > 0);

      assert.equal(server.resetPrefixCache(), false, 'vLLM refuses while blocks are held');
      assert.ok(server.pool.numCachedBlocks > 0, 'a refused reset changes nothing');

      const preemptionsBefore = server.metrics.counters().preemptions;
      assert.equal(server.resetPrefixCache({ resetRunningRequests: true }), true);
      assert.equal(server.pool.numCachedBlocks, 0, 'nothing is cached right after the reset');
      assert.equal(server.pool.usage, 0, 'no request holds a block');
      assert.deepEqual(server.state().running, 0);
      assert.equal(server.state().waiting, 3, 'the preempted requests wait to recompute');
      assert.equal(server.metrics.counters().preemptions - preemptionsBefore, 3);
      assert.equal(mirror.cleared(), 1);
      assert.equal(mirror.cached.size, 0);

      clock.runUntilIdle();
      for (const r of running) {
        assert.equal(r.finishReason, 'length', 'a preempted request completes');
        assert.equal(r.finishCalls, 1);
        assert.deepEqual(r.indices, [...Array(40).keys()], 'every token once, in order');
        assert.equal(r.sequence.preemptions, 1);
      }
      if (latencyModel === 'step') {
        // The recomputed prompts are cached again and announced: the event mirror equals the pool.
        assert.ok(server.pool.numCachedBlocks > 0);
        assert.deepEqual(mirror.cached, poolHashes(server));
        const after = submit(server, shared + textOfTokens(64, 'q9'), 1);
        clock.runUntilIdle();
        assert.equal(after.sequence.cachedTokens, 512, 'the shared prefix, recomputed after the reset, hits again');
      }
    });

    it('forced on an idle server it is a plain reset', () => {
      const { clock, server } = virtualServer({ latencyModel });
      submit(server, textOfTokens(256, 'idle'), 1);
      clock.runUntilIdle();
      assert.ok(server.pool.numCachedBlocks > 0);
      assert.equal(server.resetPrefixCache({ resetRunningRequests: true }), true);
      assert.equal(server.pool.numCachedBlocks, 0);
      assert.equal(server.metrics.counters().preemptions, 0);
    });
  });
}

describe('forced reset and the step engine\'s edge cases', () => {
  it('a step in flight when the reset lands is discarded for the preempted requests; the mirror stays exact under eviction', () => {
    // A small cache: the workload evicts, so BlockRemoved events interleave with the reset.
    const { clock, server } = virtualServer({ kvCacheSize: 96, maxModelLen: 1024 });
    const mirror = eventMirror(server);
    const runs = [];
    for (let i = 0; i < 12; i++) {
      runs.push(submit(server, textOfTokens(256, `g${i % 3}`) + textOfTokens(200, `q${i}`), 20));
      clock.advanceBy(7); // mid-step now and then
      if (i === 5 || i === 9) assert.equal(server.resetPrefixCache({ resetRunningRequests: true }), true);
    }
    clock.runUntilIdle();
    assert.ok(runs.every((r) => r.finishReason === 'length' && r.indices.length === 20));
    assert.equal(mirror.cleared(), 2);
    assert.ok(mirror.removed() > 0, 'the workload evicted');
    assert.ok(server.metrics.counters().preemptions > 0);
    assert.deepEqual(mirror.cached, poolHashes(server));
  });

  it('a request held by a TTFT spike when preempted gets its first token and finishes once', () => {
    const { clock, server } = virtualServer({ ttftSpikeRate: 100, ttftSpikeFactor: 1, ttftSpikeExtraMs: 1000 });
    const one = submit(server, textOfTokens(64, 'held1'), 1);
    const three = submit(server, textOfTokens(64, 'held3'), 3);
    clock.advanceBy(200); // both sampled their first token and are held
    assert.equal(server.state().running, 2);
    assert.equal(one.indices.length + three.indices.length, 0, 'no token delivered yet');
    assert.equal(server.resetPrefixCache({ resetRunningRequests: true }), true);
    clock.runUntilIdle();
    assert.equal(one.finishCalls, 1);
    assert.equal(one.finishReason, 'length');
    assert.deepEqual(three.indices, [0, 1, 2]);
    assert.equal(three.finishReason, 'length');
    assert.equal(server.state().waiting + server.state().running, 0);
    assert.equal(server.pool.usage, 0);
  });
});
