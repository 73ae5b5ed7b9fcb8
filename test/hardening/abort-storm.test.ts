/**
 * Abort storm: thousands of streams, most cancelled at a random point (while scheduling, after routing, during
 * header hooks, mid-stream, during completion). Afterwards nothing per stream is left (open streams, live response
 * streams, active/running gauges), every scheduled request completed exactly once, and memory is flat.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'node:test';
import { createRandomSource } from '../../src/util/random.ts';
import { startTestEpp } from '../support/epp.ts';
import { http, sampleValue } from '../observability/helpers.ts';
import { RawExtProcClient } from './raw-ext-proc.ts';
import { runStorm } from './storm.ts';
import { within } from '../support/wait.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('4,000 streams, 80 % cancelled at random points: zero live state, exactly-once completions, flat memory', { timeout: 120_000 }, async () => {
  const epp = await startTestEpp({ metricsPort: 0 });
  const client = new RawExtProcClient(epp.grpcPort, { streamsPerConnection: 100 });
  const rng = createRandomSource(7);
  const heap: number[] = [];
  try {
    const sample = async (): Promise<void> => {
      await epp.server.whenIdle();
      gc();
      heap.push(process.memoryUsage().heapUsed);
    };
    // Warm-up (JIT, pools), then the storm in four rounds with a heap sample after each.
    await runStorm({ client, streams: 500, abortRatio: 0.8, concurrency: 64, random: () => rng.next() });
    await sample();
    const totals = { completed: 0, aborted: 0, lost: 0, failed: 0 };
    for (let round = 0; round < 4; round++) {
      const r = await runStorm({ client, streams: 1000, abortRatio: 0.8, concurrency: 64, random: () => rng.next() });
      totals.completed += r.completed;
      totals.aborted += r.aborted;
      totals.lost += r.lost;
      totals.failed += r.failed;
      await sample();
    }
    assert.equal(totals.failed, 0);
    // Streams the server lost with their connection (rapid-reset protection) are aborted streams too.
    assert.ok(totals.aborted + totals.lost > 2500, `aborted ${totals.aborted}, lost ${totals.lost}`);

    await within(epp.director.whenIdle(), 'every response stream to complete');
    assert.equal(epp.server.openStreams, 0);
    assert.equal(epp.director.liveResponseStreams, 0);
    const text = (await http(epp.metricsPort as number, '/metrics')).body;
    assert.equal(sampleValue(text, 'epp_active_streams{data_plane="ext_proc"}'), 0);
    assert.equal(sampleValue(text, 'inference_objective_running_requests{model_name="m1"}'), 0);
    // Every scheduled request completed exactly once: completions = requests counted as scheduled.
    const scheduled = sampleValue(text, 'inference_objective_request_total{model_name="m1",target_model_name="m1",priority="0"}') ?? 0;
    const outcomes = text.split('\n').filter((l) => l.startsWith('epp_request_completions_total{')).reduce((a, l) => a + Number(l.split(' ')[1]), 0);
    assert.equal(outcomes, scheduled);

    // Flat memory: after the warm-up, the heap after each 1,000-stream round stays within a few MiB.
    const base = heap[0] as number;
    const growthMiB = heap.map((h) => (h - base) / (1 << 20));
    assert.ok(Math.max(...growthMiB) < 8, `heap growth per round (MiB): ${growthMiB.map((g) => g.toFixed(2)).join(', ')}`);
  } finally {
    await client.close();
    await epp.close();
  }
});
