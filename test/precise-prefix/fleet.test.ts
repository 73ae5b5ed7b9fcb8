/**
 * End to end on a simulated fleet publishing vLLM-framed KV events over ZeroMQ: after a mixed workload the index
 * equals every simulator's cache exactly, and predicted cached tokens equal what the simulator reports.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { MODEL, simCache, startRig, type Rig } from './rig.ts';
import { waitUntil } from '../support/wait.ts';

const SYSTEM = 'You are a careful assistant who answers in one short paragraph. '.repeat(8); // 512 bytes = 128 tokens
const text = (n: number, tag: string) => `${tag}:`.padEnd(n * 4, '.'.concat(tag));

async function assertIndexEqualsCaches(rig: Rig): Promise<void> {
  await rig.quiesce();
  let cached = 0;
  for (const s of rig.fleet.servers) {
    const cache = await simCache(rig, s);
    cached += cache.engine.size;
    assert.deepEqual(rig.producer.index.engineRefs(s.name), cache.engine, `engine keys of ${s.name}`);
    assert.deepEqual(rig.producer.index.keysOf(s.name), cache.requestKeys, `request keys of ${s.name}`);
  }
  assert.ok(cached > 0, 'the fleet caches something');
}

describe('precise prefix producer on a simulated fleet (ZeroMQ, replay)', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ servers: 3, replay: true });
    await rig.quiesce();
  });
  after(() => rig.close());

  it('the index equals every simulator cache after a mixed workload, and predictions equal reported cached tokens', async () => {
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const g = i % 5;
      const kind = i % 6;
      if (kind === 0) jobs.push(rig.route('completions', { model: MODEL, prompt: `${SYSTEM}${text(40, `unique-${i}`)}` }));
      else if (kind === 1) jobs.push(rig.route('completions', { model: 'lora-a', prompt: `${SYSTEM}${text(50, `lora-${g}`)}` }));
      else if (kind === 2) jobs.push(rig.route('completions', { model: MODEL, prompt: `${SYSTEM}${text(30, `salted-${g}`)}`, cache_salt: `tenant-${g % 2}` }));
      else if (kind === 3) {
        jobs.push(rig.route('chat-completions', {
          model: MODEL,
          messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: text(20, `turn1-${g}`) }, { role: 'assistant', content: 'ok' }, { role: 'user', content: text(10, `turn2-${i}`) }],
        }));
      } else jobs.push(rig.route('completions', { model: MODEL, prompt: `${SYSTEM}${text(60, `group-${g}`)}${text(8, `q-${i}`)}` }));
    }
    await Promise.all(jobs);
    await assertIndexEqualsCaches(rig);
    assert.ok(rig.producer.stats.ingest.blocksRemoved > 0, 'the workload evicted blocks');

    // Probes, one at a time at quiescence: the prediction is exact.
    rig.handle.clock.advance(60_000); // speculative entries expire
    const probes = [
      { api: 'completions' as const, body: { model: MODEL, prompt: `${SYSTEM}${text(60, 'group-1')}${text(8, 'probe')}` } },
      { api: 'completions' as const, body: { model: 'lora-a', prompt: `${SYSTEM}${text(50, 'lora-2')}` } },
      { api: 'completions' as const, body: { model: MODEL, prompt: `${SYSTEM}${text(30, 'salted-3')}`, cache_salt: 'tenant-1' } },
      { api: 'completions' as const, body: { model: MODEL, prompt: `${SYSTEM}${text(30, 'salted-3')}`, cache_salt: 'tenant-0' } },
      { api: 'chat-completions' as const, body: { model: MODEL, messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: text(20, 'turn1-4') }] } },
      { api: 'completions' as const, body: { model: MODEL, prompt: text(70, 'never-seen') } },
    ];
    let hits = 0;
    for (const p of probes) {
      for (const s of rig.fleet.servers) {
        await rig.quiesce();
        rig.handle.clock.advance(60_000);
        const r = await rig.route(p.api, p.body, (cs) => cs.find((c) => c.endpoint.metadata.name === s.name)!);
        assert.equal(r.predictedTokens, r.cachedTokens, `${s.name} ${JSON.stringify(p.body).slice(0, 80)}`);
        if (r.cachedTokens > 0) hits++;
      }
    }
    assert.ok(hits >= 6, `some probes hit (${hits})`);
    await assertIndexEqualsCaches(rig);
  });

  it('a cache reset empties that endpoint in the index within one batch', async () => {
    await rig.quiesce();
    const s = rig.fleet.servers[0]!;
    assert.ok(rig.producer.index.replicasOf(s.name) > 0);
    assert.equal((await fetch(`${s.url}/reset_prefix_cache`, { method: 'POST' })).status, 200);
    await rig.quiesce();
    assert.equal(rig.producer.index.replicasOf(s.name), 0);
    assert.equal(rig.producer.phaseOf(s.name), 'SYNCED');
  });

  it('a forced reset (reset_running_requests=true) under load: refused without it, then the index equals every cache', async () => {
    await rig.quiesce();
    const s = rig.fleet.servers[0]!;
    // Long decodes, so the requests still hold blocks when the reset arrives.
    const jobs = [0, 1].map((i) => rig.route('completions', { model: MODEL, prompt: `${SYSTEM}${text(40, `forced-${i}`)}`, max_tokens: 150 }, (cs) => cs[0]!));
    await waitUntil(() => s.state().running > 0 && s.sim.pool.usage > 0, 'requests to run on server 0');
    assert.equal((await fetch(`${s.url}/reset_prefix_cache`, { method: 'POST' })).status, 409);
    assert.equal((await fetch(`${s.url}/reset_prefix_cache?reset_running_requests=maybe`, { method: 'POST' })).status, 400);
    const preempted = s.sim.metrics.counters().preemptions;
    assert.equal((await fetch(`${s.url}/reset_prefix_cache?reset_running_requests=true`, { method: 'POST' })).status, 200);
    assert.ok(s.sim.metrics.counters().preemptions > preempted, 'the running requests were preempted');
    await Promise.all(jobs);
    await assertIndexEqualsCaches(rig);
    assert.ok(rig.producer.index.replicasOf(s.name) > 0, 'the recomputed prompts are indexed again');
    assert.equal(rig.producer.phaseOf(s.name), 'SYNCED');
  });

  it('an engine restart with a new hash seed: seq back to 0, old entries dropped, the index follows the new engine', async () => {
    await rig.quiesce();
    const s = rig.fleet.servers[1]!;
    const before = rig.producer.index.engineRefs(s.name);
    assert.ok(before.size > 0);
    const restarts = rig.producer.stats.sync.restarts;
    assert.equal((await fetch(`${s.url}/admin/restart`, { method: 'POST' })).status, 200);
    await rig.route('completions', { model: MODEL, prompt: `${SYSTEM}${text(60, 'group-1')}` }, (cs) => cs.find((c) => c.endpoint.metadata.name === s.name)!);
    await rig.quiesce();
    assert.equal(rig.producer.stats.sync.restarts, restarts + 1);
    const afterRefs = rig.producer.index.engineRefs(s.name);
    for (const k of afterRefs.keys()) assert.ok(!before.has(k), 'no engine hash survives the new seed');
    await assertIndexEqualsCaches(rig);
    assert.equal(rig.producer.phaseOf(s.name), 'SYNCED');
  });

  it('lost batches are detected as gaps and recovered by replay', async () => {
    const s = rig.fleet.servers[2]!;
    const gaps = rig.producer.stats.sync.gaps;
    // Sequential requests, every other one's batches lost on the wire: each loss is a gap the next batch reveals.
    for (let i = 0; i < 6; i++) {
      s.setFaults({ 'kv-events-drop-rate': i % 2 === 0 ? 100 : 0 });
      await rig.route('completions', { model: MODEL, prompt: `${SYSTEM}${text(30 + i, `loss-${i % 3}`)}` }, (cs) => cs[2]!);
      await waitUntil(() => s.state().running + s.state().waiting === 0, 'the request to finish');
    }
    s.setFaults({ 'kv-events-drop-rate': 0 });
    await assertIndexEqualsCaches(rig);
    assert.ok(rig.producer.stats.sync.gaps > gaps, 'gaps were seen');
    assert.ok(rig.producer.stats.sync.replaysOk > 0, 'and replayed');
    assert.equal(rig.producer.phaseOf(s.name), 'SYNCED');
  });
});
