/**
 * epp-spec §6.5, "what the client sees", row by row, in both data planes (ext_proc and the embedded gateway),
 * default admission and flow control. Saturation is made deterministic: default admission uses the
 * utilization detector over never-scraped endpoints (always saturated); flow control uses the
 * concurrency detector with one slot per endpoint, so one request in flight saturates a one-endpoint pool.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { waitUntil } from '../support/wait.ts';
import { config, inFlight, MODES, OBJECTIVES_YAML, startRig, type Mode, type Rig } from './helpers.ts';

const FC = (lines: string) => `${lines}\n`;
const BATCH = { 'x-gateway-inference-objective': 'batch' };
const CRITICAL = { 'x-gateway-inference-objective': 'critical' };

/** The message the client sees: ext_proc body `inference error: <Code> - <msg>`; gateway OpenAI error JSON. */
/** The gateway answers in OpenAI's shape (OpenAI type/code); back to upstream's text to compare both planes. */
const EPP_CODE_OF: Record<string, string> = {
  'invalid_request_error/null': 'BadRequest',
  'rate_limit_error/rate_limit_exceeded': 'ResourceExhausted',
  'server_error/internal_error': 'Internal',
  'server_error/service_unavailable': 'ServiceUnavailable',
};
function message(mode: Mode, body: string): string {
  if (mode === 'ext_proc') return body;
  const e = (JSON.parse(body) as { error: { message: string; type: string; code: string | null } }).error;
  return `inference error: ${EPP_CODE_OF[`${e.type}/${String(e.code)}`] ?? `${e.type}/${String(e.code)}`} - ${e.message}`;
}

for (const mode of MODES) {
  describe(`§6.5 client-visible behaviour (${mode})`, { timeout: 30_000 }, () => {
    const rigs: Rig[] = [];
    const rig = async (o: Parameters<typeof startRig>[1]) => {
      const r = await startRig(mode, o);
      rigs.push(r);
      return r;
    };
    after(async () => {
      await Promise.all(rigs.map((r) => r.close()));
    });

    test('default mode: pool saturated, priority < 0 → 429 at once; priority ≥ 0 → scheduled anyway', async () => {
      const r = await rig({ configText: config(), resources: OBJECTIVES_YAML });
      const shed = await r.send(BATCH).reply;
      assert.equal(shed.status, 429);
      assert.equal(message(mode, shed.body), 'inference error: ResourceExhausted - system saturated, sheddable request dropped');
      const normal = r.send({});
      const critical = r.send(CRITICAL);
      if (mode === 'ext_proc') {
        assert.equal((await normal.reply).status, 200);
        assert.equal((await critical.reply).status, 200);
      } else {
        await r.releaseUpstreams(2);
        assert.equal((await normal.reply).status, 200);
        assert.equal((await critical.reply).status, 200);
      }
    });

    test('flow control: pool saturated → queued (any priority) until saturation drops; higher priority first', async () => {
      const r = await rig({ configText: config({ flowControl: FC('  defaultRequestTTL: 30s'), detector: 'concurrency-detector' }), resources: OBJECTIVES_YAML });
      const fc = r.epp.admission.flowController!;
      const first = r.send({});
      await waitUntil(() => inFlight(r) === 1, 'first request in flight');
      const batch = r.send(BATCH);
      await waitUntil(() => fc.stats().queued === 1, 'sheddable request queued');
      const critical = r.send(CRITICAL);
      await waitUntil(() => fc.stats().queued === 2, 'critical request queued');
      // Free the slot: ext_proc — the first request's stream ends; gateway — its upstream answers.
      if (mode === 'ext_proc') {
        assert.equal((await first.reply).status, 200);
        first.cancel();
      } else await r.releaseUpstreams(1);
      await waitUntil(() => fc.stats().queued === 1 && fc.stats().outcomes.Dispatched === 2, 'critical dispatched first');
      if (mode === 'ext_proc') {
        assert.equal((await critical.reply).status, 200);
        critical.cancel();
        assert.equal((await batch.reply).status, 200, 'then the sheddable one');
      } else {
        await r.releaseUpstreams(1);
        assert.equal((await critical.reply).status, 200);
        await r.releaseUpstreams(1);
        assert.equal((await batch.reply).status, 200);
      }
      assert.equal(fc.stats().queued, 0);
    });

    test('flow control: queue full → 429', async () => {
      const r = await rig({ configText: config({ flowControl: FC('  maxRequests: 1'), detector: 'concurrency-detector' }) });
      r.send({});
      await waitUntil(() => inFlight(r) === 1, 'slot taken');
      r.send({});
      await waitUntil(() => r.epp.admission.flowController!.stats().queued === 1, 'one queued');
      const full = await r.send({}).reply;
      assert.equal(full.status, 429);
      assert.match(message(mode, full.body), /^inference error: ResourceExhausted - flow control: queue at capacity: global request limit 1 reached$/);
    });

    test('flow control: waited past TTL → 503', async () => {
      const r = await rig({ configText: config({ flowControl: FC('  defaultRequestTTL: 100ms'), detector: 'concurrency-detector' }) });
      r.send({});
      await waitUntil(() => inFlight(r) === 1, 'slot taken');
      const late = await r.send({}).reply;
      assert.equal(late.status, 503);
      assert.match(message(mode, late.body), /^inference error: ServiceUnavailable - request timed out in queue: /);
      assert.equal(r.epp.admission.flowController!.stats().outcomes.EvictedTTL, 1);
    });

    test('no endpoints in pool: default → 503 after admission; flow control → waits, 503 "timed out in queue" at TTL', async () => {
      const d = await rig({ configText: config(), endpoints: 0 });
      const a = await d.send({}).reply;
      assert.equal(a.status, 503);
      assert.equal(message(mode, a.body), 'inference error: ServiceUnavailable - failed to find endpoint candidates for serving the request');
      const f = await rig({ configText: config({ flowControl: FC('  defaultRequestTTL: 100ms') }), endpoints: 0 });
      const b = await f.send({}).reply;
      assert.equal(b.status, 503);
      assert.match(message(mode, b.body), /request timed out in queue/);
    });

    test('every endpoint filtered out by a profile → 429 "failed to find target endpoint" (both admission modes)', async () => {
      for (const flowControl of [undefined, FC('  defaultRequestTTL: 5s')]) {
        const r = await rig({ configText: config({ filterAll: true, ...(flowControl ? { flowControl, detector: 'concurrency-detector' } : {}) }) });
        const res = await r.send({}).reply;
        assert.equal(res.status, 429);
        assert.match(message(mode, res.body), /^inference error: ResourceExhausted - failed to find target endpoint: .*default/);
      }
    });

    test('flow control: a client that disconnects while queued leaves the queue at once, counted', async () => {
      const r = await rig({ configText: config({ flowControl: FC('  defaultRequestTTL: 30s'), detector: 'concurrency-detector' }) });
      const fc = r.epp.admission.flowController!;
      r.send({});
      await waitUntil(() => inFlight(r) === 1, 'slot taken');
      const queued = r.send({});
      await waitUntil(() => fc.stats().queued === 1, 'queued');
      queued.cancel();
      await waitUntil(() => fc.stats().queued === 0, 'left the queue');
      assert.equal(fc.stats().outcomes.EvictedContextCancelled, 1);
      assert.equal(inFlight(r), 1, 'the cancelled request never took a slot');
    });
  });
}

// Subset hints exist only in ext_proc mode: they are Envoy dynamic metadata (`envoy.lb.subset_hint`).
describe('§6.5 subset hint (ext_proc)', { timeout: 30_000 }, () => {
  const rigs: Rig[] = [];
  after(async () => {
    await Promise.all(rigs.map((r) => r.close()));
  });

  test('default mode: empty or non-matching subset → 503; a matching one routes inside it (by IP, port ignored)', async () => {
    const r = await startRig('ext_proc', { configText: config(), endpoints: 3 });
    rigs.push(r);
    for (const subset of [[], ['10.9.9.9:8000']]) {
      const res = await r.send({}, subset).reply;
      assert.equal(res.status, 503, JSON.stringify(subset));
      assert.equal(res.body, 'inference error: ServiceUnavailable - failed to find endpoint candidates for serving the request');
    }
    for (let i = 0; i < 5; i++) {
      const res = await r.send({}, ['127.0.0.12:9999']).reply;
      assert.equal(res.destination, '127.0.0.12:8000');
    }
  });

  test('flow control: dispatched normally (dispatch ignores subsets), then 503 at candidate lookup', async () => {
    const r = await startRig('ext_proc', { configText: config({ flowControl: FC('  defaultRequestTTL: 5s'), detector: 'concurrency-detector' }), endpoints: 2 });
    rigs.push(r);
    const res = await r.send({}, []).reply;
    assert.equal(res.status, 503);
    assert.match(res.body, /failed to find endpoint candidates/);
    assert.equal(r.epp.admission.flowController!.stats().outcomes.Dispatched, 1);
    assert.equal(inFlight(r), 0, 'released when the request path failed after admission');
  });

  test('--disable-endpoint-subset-filter ignores the hint', async () => {
    const r = await startRig('ext_proc', { configText: config(), endpoints: 2, admission: { disableEndpointSubsetFilter: true } });
    rigs.push(r);
    assert.equal((await r.send({}, []).reply).status, 200);
  });
});
