/**
 * A silent event stream: the simulator serves requests (and stores their blocks) but every batch is lost
 * (`kv-events-drop-rate` 100, still replayable) — the producer marks the endpoint SILENT once the owed events are
 * `events.silenceMs` overdue on its injected clock, scores it with the approximate fallback, logs once per state
 * change, and returns to SYNCED when events resume (the gap they reveal is replayed).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { registerPrecisePrefixMetrics } from '../../src/observability/precise-prefix-metrics.ts';
import { MODEL, startRig } from './rig.ts';
import { waitUntil } from '../support/wait.ts';

const prompt = (tag: string) => `${tag}: `.padEnd(40 * 4, `${tag} `);
const silenceLogs = (rig: Awaited<ReturnType<typeof startRig>>) =>
  rig.handle.logger.entries.filter((e) => /SILENT|resumed after a silence|no KV event ever/.test(e.msg)).map((e) => `${e.level} ${String(e.obj.endpoint)}`);

describe('precise prefix producer: silent event stream', () => {
  it('requests served without events → SILENT after the bound (fallback, metric, one log line); events resume → SYNCED', async () => {
    const rig = await startRig({ servers: 2, replay: true, producer: { events: { silenceMs: 3000 } } });
    const registry = new Registry();
    registerPrecisePrefixMetrics(registry, [rig.producer.metricsSource()], []);
    const clock = rig.handle.clock;
    try {
      await rig.quiesce();
      const s1 = rig.fleet.servers[1]!;
      await rig.route('completions', { model: MODEL, prompt: prompt('warm') }, (cs) => cs[1]!);
      await rig.quiesce();
      assert.equal(rig.producer.phaseOf('sim-1'), 'SYNCED');

      s1.setFaults({ 'kv-events-drop-rate': 100 });
      await rig.route('completions', { model: MODEL, prompt: prompt('cold-a') }, (cs) => cs[1]!);
      await waitUntil(() => s1.sim.kvEvents.lastSeq >= 0 && s1.state().running + s1.state().waiting === 0, 'the request served');
      clock.advance(2999);
      rig.producer.checkSilence();
      assert.equal(rig.producer.phaseOf('sim-1'), 'SYNCED', 'within the bound');
      // Another served request does not restart the clock: the first owed event is what is overdue.
      await rig.route('completions', { model: MODEL, prompt: prompt('cold-b') }, (cs) => cs[1]!);
      clock.advance(1);
      rig.producer.checkSilence();
      rig.producer.checkSilence();
      assert.equal(rig.producer.phaseOf('sim-1'), 'SILENT');
      assert.equal(rig.producer.phaseOf('sim-0'), 'SYNCED', 'the other endpoint owed nothing');
      assert.equal(rig.producer.stats.sync.silences, 1);
      assert.deepEqual(silenceLogs(rig), ['warn sim-1'], 'one log line for the state change');
      const metrics = await registry.metrics();
      assert.match(metrics, /epp_kv_endpoint_phase\{producer="precise",endpoint="sim-1",phase="SILENT"\} 1/);
      assert.match(metrics, /epp_kv_events_silences_total\{producer="precise"\} 1/);

      // Scored by the approximate fallback meanwhile (it learns from the requests it scored).
      const fallbackBefore = rig.producer.stats.fallbackCandidates;
      await rig.route('completions', { model: MODEL, prompt: prompt('silent') }, (cs) => cs[1]!);
      assert.equal(rig.producer.stats.fallbackCandidates, fallbackBefore + 1, 'the SILENT endpoint (only) was scored by the fallback');
      const routed = await rig.route('completions', { model: MODEL, prompt: prompt('silent') }, (cs) => cs[1]!);
      const match = (name: string) => (routed.candidates.find((c) => c.endpoint.metadata.name === name)!.attributes.get('PrefixCacheMatchInfoKey') as { matchBlocks: number }).matchBlocks;
      assert.ok(match('sim-1') > 0 && match('sim-0') === 0, 'approximate match where the prompt was routed');

      // Events resume: the next batch ends the silence, its seq gap is replayed, the index is exact again.
      s1.setFaults({ 'kv-events-drop-rate': 0 });
      await rig.route('completions', { model: MODEL, prompt: prompt('after') }, (cs) => cs[1]!);
      await rig.quiesce();
      assert.equal(rig.producer.phaseOf('sim-1'), 'SYNCED');
      assert.deepEqual(silenceLogs(rig), ['warn sim-1', 'info sim-1']);
      assert.ok(rig.producer.stats.sync.replaysOk > 0, 'the batches lost during the silence were replayed');
      clock.advance(10_000);
      rig.producer.checkSilence();
      assert.equal(rig.producer.phaseOf('sim-1'), 'SYNCED', 'nothing owed any more');
    } finally {
      await rig.close();
    }
  });

  it('an engine that never publishes (events not enabled) is flagged SILENT from CONNECTING; a fully cached prompt owes nothing', async () => {
    const rig = await startRig({ servers: 1, producer: { events: { silenceMs: 1000 } } });
    const clock = rig.handle.clock;
    try {
      const s0 = rig.fleet.servers[0]!;
      s0.setFaults({ 'kv-events-drop-rate': 100 });
      await rig.route('completions', { model: MODEL, prompt: prompt('never') }, (cs) => cs[0]!);
      clock.advance(1000);
      rig.producer.checkSilence();
      assert.equal(rig.producer.phaseOf('sim-0'), 'SILENT');
      assert.match(rig.handle.logger.entries.at(-1)!.msg, /no KV event ever received from endpoint/);
      assert.match(rig.producer.syncOf('sim-0')!.reason, /no KV events for 1000 ms/);
    } finally {
      await rig.close();
    }
  });

  it('silenceMs 0 turns the check off', async () => {
    const rig = await startRig({ servers: 1, producer: { events: { silenceMs: 0 } } });
    try {
      rig.fleet.servers[0]!.setFaults({ 'kv-events-drop-rate': 100 });
      await rig.route('completions', { model: MODEL, prompt: prompt('off') }, (cs) => cs[0]!);
      rig.handle.clock.advance(3_600_000);
      rig.producer.checkSilence();
      assert.notEqual(rig.producer.phaseOf('sim-0'), 'SILENT');
    } finally {
      await rig.close();
    }
  });
});
