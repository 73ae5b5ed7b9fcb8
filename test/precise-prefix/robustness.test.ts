/**
 * Loss without replay (dump, then DESYNCED with the approximate fallback), the render token source (parity, down,
 * slow), a block-size mismatch, and the other wire forms (map events, replay without the topic frame).
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { prefixCacheMatchInfoOf } from '../../src/framework/attributes.ts';
import { MODEL, simCache, startRig, type Rig } from './rig.ts';
import { waitUntil } from '../support/wait.ts';

const SYSTEM = 'Answer briefly and cite the policy section you rely on, nothing else. '.repeat(8);
const text = (n: number, tag: string) => `${tag}:`.padEnd(n * 4, '.'.concat(tag));

async function assertIndexEqualsCaches(rig: Rig): Promise<void> {
  await rig.quiesce();
  for (const s of rig.fleet.servers) {
    const cache = await simCache(rig, s);
    assert.deepEqual(rig.producer.index.engineRefs(s.name), cache.engine, `engine keys of ${s.name}`);
    assert.deepEqual(rig.producer.index.keysOf(s.name), cache.requestKeys, `request keys of ${s.name}`);
  }
}

async function lossyRequests(rig: Rig, server: number, n: number): Promise<void> {
  const s = rig.fleet.servers[server]!;
  for (let i = 0; i < n; i++) {
    s.setFaults({ 'kv-events-drop-rate': i % 2 === 0 ? 100 : 0 });
    await rig.route('completions', { model: MODEL, prompt: `${SYSTEM}${text(30 + i, `lossy-${i % 3}`)}` }, (cs) => cs[server]!);
    await waitUntil(() => s.state().running + s.state().waiting === 0, 'the request to finish');
  }
  s.setFaults({ 'kv-events-drop-rate': 0 });
  // A fresh prompt stores new blocks: its batch reveals the last loss.
  tail++;
  await rig.route('completions', { model: MODEL, prompt: text(45, `tail-${tail}`) }, (cs) => cs[server]!);
}
let tail = 0;

describe('precise prefix producer: recovery without replay', () => {
  it('recovers lost batches from the dump (/kv_state) when the engine has no replay socket', async () => {
    const rig = await startRig({ servers: 2, producer: { events: { snapshot: true } } });
    try {
      await rig.quiesce();
      await lossyRequests(rig, 1, 6);
      await assertIndexEqualsCaches(rig);
      assert.ok(rig.producer.stats.sync.gaps > 0);
      assert.ok(rig.producer.stats.sync.snapshotsOk > 0);
      assert.equal(rig.producer.phaseOf('sim-1'), 'SYNCED');
    } finally {
      await rig.close();
    }
  });

  it('without replay or dump: DESYNCED, scored by the approximate fallback, back in sync after the engine clears its cache', async () => {
    const rig = await startRig({ servers: 2 });
    try {
      // Seq 0 seen on the wire: followed from the start, so in sync.
      await rig.route('completions', { model: MODEL, prompt: text(40, 'warm') }, (cs) => cs[1]!);
      await rig.quiesce();
      assert.equal(rig.producer.phaseOf('sim-1'), 'SYNCED');
      await lossyRequests(rig, 1, 4);
      await rig.quiesce();
      assert.equal(rig.producer.phaseOf('sim-1'), 'DESYNCED');
      assert.ok(rig.handle.logger.count('warn', 'DESYNCED') > 0);
      // The desynced endpoint now gets the approximate producer's view: it learned the prompts routed there.
      const prompt = `${SYSTEM}${text(31, 'lossy-1')}`;
      const r = await rig.route('completions', { model: MODEL, prompt }, (cs) => cs[1]!);
      const again = await rig.route('completions', { model: MODEL, prompt }, (cs) => cs[1]!);
      const approx = prefixCacheMatchInfoOf(again.candidates[1]!.attributes)!;
      assert.equal(approx.blockSizeTokens, 16);
      assert.ok(approx.matchBlocks > 0, 'approximate fallback remembers what was routed there');
      assert.ok(rig.producer.stats.fallbackCandidates >= 2);
      assert.ok(r.cachedTokens >= 0);
      // vLLM-like reset: the engine's cache is exactly what follows.
      await rig.quiesce();
      assert.equal((await fetch(`${rig.fleet.servers[1]!.url}/reset_prefix_cache`, { method: 'POST' })).status, 200);
      await rig.quiesce();
      assert.equal(rig.producer.phaseOf('sim-1'), 'SYNCED');
      await rig.route('completions', { model: MODEL, prompt: text(50, 'after-reset') }, (cs) => cs[1]!);
      await assertIndexEqualsCaches(rig);
    } finally {
      await rig.close();
    }
  });

  it('a DESYNCED endpoint comes back after enough exact predictions (drift check)', async () => {
    const rig = await startRig({ servers: 1, producer: { desync: { recoverAfterRequests: 3 } } });
    try {
      await rig.route('completions', { model: MODEL, prompt: text(40, 'warm') });
      await lossyRequests(rig, 0, 2);
      await rig.quiesce();
      assert.equal(rig.producer.phaseOf('sim-0'), 'DESYNCED');
      // Fresh prompts the shadow index sees stored: its predictions are exact again.
      for (let i = 0; i < 3; i++) {
        await rig.route('completions', { model: MODEL, prompt: text(40 + i, `fresh-${i}`) });
        await rig.quiesce();
      }
      assert.equal(rig.producer.phaseOf('sim-0'), 'SYNCED');
      assert.ok(rig.handle.logger.count('info', 'drift check passed') > 0);
    } finally {
      await rig.close();
    }
  });
});

describe('precise prefix producer: wire variants and configuration errors', () => {
  it("map-form events and replay without the topic frame (vLLM < 0.26 / SGLang framing)", async () => {
    const rig = await startRig({ servers: 2, replay: true, serverOptions: { kvEventsMapFormat: true, kvEventsReplayTopicFrame: false } });
    try {
      await rig.quiesce();
      await lossyRequests(rig, 0, 4);
      for (let i = 0; i < 6; i++) await rig.route('completions', { model: 'lora-a', prompt: `${SYSTEM}${text(20, `m-${i % 2}`)}` });
      await assertIndexEqualsCaches(rig);
      assert.ok(rig.producer.stats.sync.replaysOk > 2);
    } finally {
      await rig.close();
    }
  });

  it('a block-size mismatch is a clear error and the endpoint is scored by the fallback, never silent zero hits', async () => {
    const rig = await startRig({ servers: 2, perServer: (i) => (i === 1 ? { blockSize: 32 } : {}) });
    try {
      await rig.route('completions', { model: MODEL, prompt: text(80, 'bs') }, (cs) => cs[1]!);
      await rig.quiesce();
      const errors = rig.handle.logger.messages('error').join('\n');
      assert.match(errors, /endpoint sim-1 uses KV block size 32 but parameters\.blockSize is 16; set parameters\.blockSize: 32/);
      assert.ok(rig.producer.stats.ingest.blockSizeMismatches > 0);
      const again = await rig.route('completions', { model: MODEL, prompt: text(80, 'bs') }, (cs) => cs[1]!);
      assert.ok(prefixCacheMatchInfoOf(again.candidates[1]!.attributes)!.matchBlocks > 0, 'fallback, not a silent miss');
    } finally {
      await rig.close();
    }
  });
});

describe('token-producer render backend', () => {
  it("tokenizes exactly like the engine: the render endpoint's ids equal the sim port's, and scoring works with them", async () => {
    const rig = await startRig({ servers: 2, tokenProducer: { backend: 'render' } });
    try {
      const { simTokenize } = await import('../../src/plugins/requestcontrol/token-producer/sim-tokenizer.ts');
      const bodies = [
        { api: 'completions' as const, body: { model: MODEL, prompt: `${SYSTEM}ünïcödé ✓ ${text(20, 'r')}` } },
        { api: 'chat-completions' as const, body: { model: MODEL, messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: [{ type: 'text', text: 'part one ' }, { type: 'text', text: 'part two' }] }] } },
      ];
      for (const b of bodies) {
        const res = await fetch(`${rig.fleet.servers[0]!.url}/v1/${b.api === 'chat-completions' ? 'chat/' : ''}completions/render`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b.body),
        });
        const json = (await res.json()) as { token_ids: number[] } | { token_ids: number[] }[];
        const ids = Array.isArray(json) ? json[0]!.token_ids : json.token_ids;
        assert.deepEqual(Array.from(simTokenize({ apiType: b.api, payload: b.body, stream: false }, 'chars4')!), ids);
        await rig.route(b.api, b.body, (cs) => cs[0]!);
        await rig.quiesce();
        const r = await rig.route(b.api, b.body, (cs) => cs[0]!);
        assert.ok(r.cachedTokens > 0);
        assert.equal(r.predictedTokens, r.cachedTokens);
      }
      assert.equal(rig.tokens.stats.failures, 0);
    } finally {
      await rig.close();
    }
  });

  it('render down or slow: the request falls back to approximate matching, counted, within the timeout', async () => {
    const slow: Server = createServer(() => undefined); // never answers
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const down = createServer();
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const downPort = (down.address() as AddressInfo).port;
    await new Promise<void>((r) => down.close(() => r()));
    for (const url of [`http://127.0.0.1:${downPort}`, `http://127.0.0.1:${(slow.address() as AddressInfo).port}`]) {
      const rig = await startRig({ servers: 1, tokenProducer: { backend: 'render', render: { url, timeoutMs: 150 } } });
      try {
        const t0 = performance.now();
        const r = await rig.route('completions', { model: MODEL, prompt: text(40, 'x') });
        assert.ok(performance.now() - t0 < 2000);
        assert.equal(rig.tokens.stats.failures, 1);
        assert.equal(rig.producer.stats.requestsNoTokens, 1);
        assert.ok(prefixCacheMatchInfoOf(r.candidates[0]!.attributes) !== undefined, 'approximate match info written');
      } finally {
        await rig.close();
      }
    }
    slow.closeAllConnections();
    await new Promise<void>((r) => slow.close(() => r()));
  });
});
