/** The scheduler's plugin bookkeeping: per-plugin durations at every extension point, and a throwing plugin named. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CycleState, Filter, Scorer, ScoredCandidate } from '../../src/framework/scheduling.ts';
import { EppMetrics } from '../../src/observability/metrics.ts';
import { MaxScorePicker } from '../../src/plugins/scheduling/picker/max-score-picker/index.ts';
import { SingleProfileHandler } from '../../src/plugins/scheduling/profile/single-profile-handler/index.ts';
import { PluginFailure, Scheduler } from '../../src/runtime/scheduler.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { makeCandidates, makeRequest, names } from '../support/plugin-fixtures.ts';

const keepAll: Filter = { typedName: { type: 'keep-all', name: 'keep' }, filter: (_c, _r, cands) => cands };
const byIndex: Scorer = { typedName: { type: 'by-index', name: 'idx' }, category: 'distribution', score: (_c, _r, cands) => cands.map((_, i) => i / cands.length) };

function scheduler(scorer: Scorer, metrics: EppMetrics): Scheduler {
  return new Scheduler(
    new SingleProfileHandler('handler'),
    [{ name: 'default', filters: [keepAll], scorers: [{ scorer, weight: 1 }], picker: new MaxScorePicker('max', createRandomSource(1), 1) }],
    metrics,
  );
}

/** `_count` of inference_extension_plugin_duration_seconds per `extension_point/plugin_name`. */
async function durationCounts(metrics: EppMetrics): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    const m = /^inference_extension_plugin_duration_seconds_count\{extension_point="(\w+)",plugin_type="[^"]*",plugin_name="([^"]*)"\} (\d+)$/.exec(line);
    if (m) out.set(`${m[1]}/${m[2]}`, Number(m[3]));
  }
  return out;
}

test('every plugin call is timed under its extension point and plugin, once per call', async () => {
  const metrics = new EppMetrics();
  const s = scheduler(byIndex, metrics);
  const candidates = makeCandidates(3);
  for (let i = 0; i < 3; i++) {
    const result = s.schedule(makeRequest(), candidates);
    assert.deepEqual(names(result.profileResults.get('default')!.targets), [names(candidates)[2]], 'the best score wins');
  }
  assert.deepEqual(
    Object.fromEntries(await durationCounts(metrics)),
    // The single-profile handler is asked twice per request: once for the profile, once to learn it is done.
    { 'ProfilePicker/handler': 6, 'Filter/keep': 3, 'Scorer/idx': 3, 'Picker/max': 3, 'ProcessProfilesResults/handler': 3 },
  );
});

test('a throwing scorer fails scheduling as a PluginFailure naming it, counted in epp_plugin_errors_total', async () => {
  const metrics = new EppMetrics();
  const broken: Scorer = {
    typedName: { type: 'broken', name: 'b' },
    category: 'distribution',
    score: () => {
      throw new Error('boom');
    },
  };
  assert.throws(
    () => scheduler(broken, metrics).schedule(makeRequest(), makeCandidates(2)),
    (err: unknown) => err instanceof PluginFailure && err.extensionPoint === 'Scorer' && err.plugin === broken && /'b' \(type broken\) failed: boom/.test(err.message),
  );
  assert.match(await metrics.registry.metrics(), /epp_plugin_errors_total\{extension_point="Scorer",plugin_type="broken",plugin_name="b"\} 1/);
});

// The picker sees the weighted totals (clamped to [0,1] per scorer).
test('the picker gets every candidate with its weighted, clamped total', () => {
  let seen: readonly ScoredCandidate[] = [];
  const over: Scorer = { typedName: { type: 'over', name: 'over' }, category: 'distribution', score: () => [2, -1, Number.NaN] };
  const s = new Scheduler(new SingleProfileHandler(), [
    {
      name: 'default',
      filters: [],
      scorers: [{ scorer: over, weight: 3 }],
      picker: {
        typedName: { type: 'spy', name: 'spy' },
        pick: (_c: CycleState, scored: readonly ScoredCandidate[]) => {
          seen = scored;
          return { targets: [scored[0]!.candidate] };
        },
      },
    },
  ]);
  s.schedule(makeRequest(), makeCandidates(3));
  assert.deepEqual(seen.map((x) => x.score), [3, 0, 0]);
});
