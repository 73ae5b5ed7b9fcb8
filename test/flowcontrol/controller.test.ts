/**
 * The flow controller engine on manual time: dispatch rules, priorities, caps, TTL, disconnects, fairness,
 * shutdown, and the "every request ends exactly once, counted" invariant.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { EppError } from '../../src/framework/errors.ts';
import type { FairnessPolicy, OrderingPolicy, SaturationDetector } from '../../src/framework/flowcontrol.ts';
import type { InferenceRequest } from '../../src/framework/request.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { FlowControlMetrics } from '../../src/observability/flow-control-metrics.ts';
import { GlobalStrictFairnessPolicy } from '../../src/plugins/flowcontrol/fairness/global-strict-fairness-policy/index.ts';
import { RoundRobinFairnessPolicy } from '../../src/plugins/flowcontrol/fairness/round-robin-fairness-policy/index.ts';
import { EdfOrderingPolicy } from '../../src/plugins/flowcontrol/ordering/edf-ordering-policy/index.ts';
import { FcfsOrderingPolicy } from '../../src/plugins/flowcontrol/ordering/fcfs-ordering-policy/index.ts';
import { StaticUsageLimitPolicy } from '../../src/plugins/flowcontrol/usagelimit/static-usage-limit-policy/index.ts';
import { makeRequest } from '../support/plugin-fixtures.ts';
import { FlowController, type BandConfig, type FlowControlConfig } from '../../src/runtime/flowcontrol/controller.ts';
import { flush, ManualTime } from './helpers.ts';

interface Options {
  config?: Partial<FlowControlConfig>;
  fairness?: FairnessPolicy;
  ordering?: OrderingPolicy;
  /** Capacity of the fake pool: saturation = in-flight / capacity. */
  capacity?: number;
}

type State = 'queued' | 'dispatched' | EppError;

function setup(o: Options = {}) {
  const time = new ManualTime();
  const capacity = o.capacity ?? 1;
  let inFlight = 0;
  const dispatchedIds: string[] = [];
  const detector: SaturationDetector = { typedName: { type: 'fake-detector', name: 'fake' }, saturation: () => inFlight / capacity };
  const defaultBand = { maxBytes: 0, maxRequests: 0, fairness: o.fairness ?? new GlobalStrictFairnessPolicy(), ordering: o.ordering ?? new FcfsOrderingPolicy() };
  const registry = new Registry();
  const metrics = new FlowControlMetrics(registry);
  const fc = new FlowController({
    config: { maxBytes: 0, maxRequests: 0, defaultRequestTtlMs: 0, defaultBand, bands: [], usageLimit: new StaticUsageLimitPolicy(), ...o.config },
    detector,
    endpoints: () => [],
    clock: time,
    timers: time,
    logger: silentLogger(),
    metrics,
    poolName: 'pool',
    onDispatch: (r) => {
      inFlight++;
      dispatchedIds.push(r.requestId);
    },
  });
  let n = 0;
  const enqueue = (opts: { fairnessId?: string; priority?: number; bytes?: number; signal?: AbortSignal; id?: string } = {}) => {
    const base = makeRequest({ requestId: opts.id ?? `r${n++}`, requestSizeBytes: opts.bytes ?? 100 });
    const request: InferenceRequest = { ...base, fairnessId: opts.fairnessId ?? 'default-flow', priority: opts.priority ?? 0, signal: opts.signal ?? base.signal };
    const h = { request, state: 'queued' as State };
    fc.enqueueAndWait(request, request.signal).then(
      () => (h.state = 'dispatched'),
      (e: EppError) => (h.state = e),
    );
    return h;
  };
  /** One request completes: capacity frees and the controller is told. */
  const complete = () => {
    inFlight--;
    fc.notify();
  };
  return { time, fc, enqueue, complete, dispatchedIds, registry, get inFlight() { return inFlight; }, set inFlight(v: number) { inFlight = v; } };
}

const outcomeTotal = (fc: FlowController) => Object.values(fc.stats().outcomes).reduce((a, b) => a + b, 0);

describe('flow controller', () => {
  test('below the ceiling a request is dispatched synchronously on enqueue', async () => {
    const t = setup({ capacity: 2 });
    const a = t.enqueue();
    await flush();
    assert.equal(a.state, 'dispatched');
    assert.equal(t.fc.stats().queued, 0);
    assert.equal(t.time.armed, 0, 'nothing armed when the queue is empty');
  });

  test('saturated: requests wait; no timer spins while blocked; a completion dispatches the next one', async () => {
    const t = setup({ capacity: 1 });
    const a = t.enqueue();
    const b = t.enqueue();
    const c = t.enqueue();
    await flush();
    assert.deepEqual([a.state, b.state, c.state], ['dispatched', 'queued', 'queued']);
    const cyclesBefore = t.fc.stats().cycles;
    assert.equal(t.time.armed, 0, 'blocked on saturation: no wake-up timer armed (no polling)');
    t.time.advance(10_000);
    assert.equal(t.fc.stats().cycles, cyclesBefore, 'no dispatch cycle ran while nothing happened');
    t.complete();
    t.time.advance(1);
    await flush();
    assert.deepEqual([b.state, c.state], ['dispatched', 'queued'], 'FCFS: b before c');
    t.complete();
    t.time.advance(1);
    await flush();
    assert.equal(c.state, 'dispatched');
    assert.equal(outcomeTotal(t.fc), 3);
  });

  test('a draining backlog dispatches one per cycle at the dispatch interval, and stops when saturated again', async () => {
    const t = setup({ capacity: 3 });
    t.inFlight = 3; // saturated by requests from elsewhere
    const hs = Array.from({ length: 5 }, () => t.enqueue());
    t.inFlight = 0; // capacity frees at once (e.g. fresh metrics)
    t.fc.notify();
    t.time.advance(1);
    await flush();
    assert.equal(hs.filter((h) => h.state === 'dispatched').length, 1);
    t.time.advance(1);
    t.time.advance(1);
    await flush();
    assert.equal(hs.filter((h) => h.state === 'dispatched').length, 3, 'three slots, three dispatches');
    t.time.advance(100);
    await flush();
    assert.equal(hs.filter((h) => h.state === 'dispatched').length, 3, 'saturated again: the rest wait');
    assert.equal(t.time.armed, 0);
  });

  test('higher priority bands go first; a blocked band blocks the bands below it (head-of-line)', async () => {
    const t = setup({ capacity: 1 });
    t.inFlight = 1;
    const low = t.enqueue({ priority: -1 });
    const mid = t.enqueue({ priority: 0 });
    const high = t.enqueue({ priority: 5 });
    t.complete();
    t.time.advance(1);
    await flush();
    assert.deepEqual([high.state, mid.state, low.state], ['dispatched', 'queued', 'queued']);
    t.complete();
    t.time.advance(1);
    await flush();
    assert.deepEqual([mid.state, low.state], ['dispatched', 'queued']);
  });

  test('caps: global and per-band request and byte limits reject with 429 ResourceExhausted', async () => {
    const band: BandConfig = { priority: 1, maxBytes: 250, maxRequests: 0, fairness: new GlobalStrictFairnessPolicy(), ordering: new FcfsOrderingPolicy() };
    const t = setup({ capacity: 1, config: { maxRequests: 3, bands: [band] } });
    t.inFlight = 1;
    const ok1 = t.enqueue({ priority: 1, bytes: 100 });
    const ok2 = t.enqueue({ priority: 1, bytes: 100 });
    const bandBytes = t.enqueue({ priority: 1, bytes: 100 });
    const ok3 = t.enqueue({ priority: 0 });
    const global = t.enqueue({ priority: 0 });
    await flush();
    for (const h of [ok1, ok2, ok3]) assert.equal(h.state, 'queued');
    for (const [h, re] of [[bandBytes, /priority band 1 byte limit 250/], [global, /global request limit 3/]] as const) {
      assert.ok(h.state instanceof EppError);
      assert.equal(h.state.code, 'ResourceExhausted');
      assert.equal(h.state.httpStatus, 429);
      assert.match(h.state.message, re);
    }
    assert.equal(t.fc.stats().outcomes.RejectedCapacity, 2);
  });

  test('TTL: a request waiting longer than defaultRequestTTL is evicted with 503, by one timer for all items', async () => {
    const t = setup({ capacity: 1, config: { defaultRequestTtlMs: 1000 } });
    t.inFlight = 1;
    const a = t.enqueue();
    t.time.advance(400);
    const b = t.enqueue();
    assert.equal(t.time.armed, 1, 'one TTL timer, whatever the queue length');
    t.time.advance(599);
    await flush();
    assert.equal(a.state, 'queued');
    t.time.advance(1);
    await flush();
    // `assert.equal(a.state, 'queued')` above narrowed the type; the state moved on since.
    const aState: unknown = a.state;
    assert.ok(aState instanceof EppError);
    assert.equal(aState.code, 'ServiceUnavailable');
    assert.match(aState.message, /^request timed out in queue: /);
    assert.equal(b.state, 'queued');
    t.time.advance(400);
    await flush();
    assert.ok((b.state as unknown) instanceof EppError);
    assert.equal(t.fc.stats().outcomes.EvictedTTL, 2);
    assert.equal(t.fc.stats().queued, 0);
    assert.equal(t.time.armed, 0);
  });

  test('a client that disconnects while queued leaves at once (503 client disconnected), freeing its place', async () => {
    const t = setup({ capacity: 1, config: { maxRequests: 1 } });
    t.inFlight = 1;
    const ac = new AbortController();
    const a = t.enqueue({ signal: ac.signal });
    const full = t.enqueue();
    await flush();
    assert.ok(full.state instanceof EppError && full.state.code === 'ResourceExhausted');
    ac.abort(new Error('stream cancelled'));
    await flush();
    // `assert.equal(a.state, 'queued')` above narrowed the type; the state moved on since.
    const aState: unknown = a.state;
    assert.ok(aState instanceof EppError);
    assert.equal(aState.code, 'ServiceUnavailable');
    assert.match(aState.message, /^client disconnected: stream cancelled/);
    assert.equal(t.fc.stats().queued, 0);
    const b = t.enqueue();
    await flush();
    assert.equal(b.state, 'queued', 'the freed place is usable');
    assert.equal(t.fc.stats().outcomes.EvictedContextCancelled, 1);
  });

  test('fairness: two tenants under saturation — round-robin shares within ±2%, global-strict FCFS serves the early flooder', async () => {
    const run = async (fairness: FairnessPolicy) => {
      const t = setup({ capacity: 4, fairness });
      t.inFlight = 4;
      for (let i = 0; i < 300; i++) t.enqueue({ fairnessId: 'tenant-a', id: `a${i}` });
      for (let i = 0; i < 100; i++) t.enqueue({ fairnessId: 'tenant-b', id: `b${i}` });
      for (let i = 0; i < 200; i++) {
        t.complete();
        t.time.advance(1);
      }
      await flush();
      const first = t.dispatchedIds.slice(0, 200);
      return first.filter((id) => id.startsWith('b')).length / first.length;
    };
    const rr = await run(new RoundRobinFairnessPolicy());
    assert.ok(Math.abs(rr - 0.5) <= 0.02, `round-robin share of tenant-b = ${rr}`);
    const strict = await run(new GlobalStrictFairnessPolicy());
    assert.equal(strict, 0, 'global strict FCFS: the tenant that queued first takes everything');
  });

  test('EDF ordering: the item closest to its deadline is dispatched first', async () => {
    const t = setup({ capacity: 1, ordering: new EdfOrderingPolicy(), config: { defaultRequestTtlMs: 1000 } });
    t.inFlight = 1;
    const early = t.enqueue();
    t.time.advance(10);
    const late = t.enqueue();
    t.complete();
    t.time.advance(1);
    await flush();
    assert.deepEqual([early.state, late.state], ['dispatched', 'queued']);
  });

  test('close(): queued requests are evicted with 500, later ones rejected; every request ended exactly once', async () => {
    const t = setup({ capacity: 1, config: { defaultRequestTtlMs: 5000 } });
    const hs = Array.from({ length: 4 }, () => t.enqueue());
    t.fc.close();
    const after = t.enqueue();
    await flush();
    for (const h of [...hs.slice(1), after]) {
      assert.ok(h.state instanceof EppError);
      assert.equal(h.state.httpStatus, 500);
      assert.match(h.state.message, /internal flow control error: flow controller is not running/);
    }
    const s = t.fc.stats();
    assert.deepEqual(s.outcomes, { Dispatched: 1, RejectedCapacity: 0, RejectedOther: 1, EvictedTTL: 0, EvictedContextCancelled: 0, EvictedOther: 3 });
    assert.equal(outcomeTotal(t.fc), 5);
    assert.equal(t.time.armed, 0);
    const text = await t.registry.metrics();
    assert.match(text, /epp_flow_control_requests_total\{outcome="EvictedOther",priority="0"\} 3/);
    assert.match(text, /inference_extension_flow_control_queue_size\{[^}]*\} 0/);
  });

  test('property: random operations — every request ends exactly once and the counters return to zero', async () => {
    const t = setup({ capacity: 3, fairness: new RoundRobinFairnessPolicy(), config: { defaultRequestTtlMs: 50, maxRequests: 20 } });
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const aborts: AbortController[] = [];
    const hs = [];
    for (let step = 0; step < 2000; step++) {
      const r = rnd();
      if (r < 0.5) {
        const ac = new AbortController();
        aborts.push(ac);
        hs.push(t.enqueue({ fairnessId: `t${Math.floor(rnd() * 3)}`, priority: Math.floor(rnd() * 3) - 1, signal: ac.signal }));
      } else if (r < 0.75 && t.inFlight > 0) t.complete();
      else if (r < 0.85 && aborts.length > 0) aborts[Math.floor(rnd() * aborts.length)]?.abort();
      else t.time.advance(Math.floor(rnd() * 10));
    }
    while (t.inFlight > 0) t.complete();
    t.time.advance(1000);
    await flush();
    assert.equal(hs.filter((h) => h.state === 'queued').length, 0);
    assert.equal(outcomeTotal(t.fc), hs.length);
    assert.equal(t.fc.stats().queued, 0);
    assert.equal(t.fc.stats().queuedBytes, 0);
  });
});
