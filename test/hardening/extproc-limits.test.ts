/**
 * The ext_proc server against idle proxies and oversized bodies (issue 13's probes): streams that send only
 * request headers, a buffered response larger than the cap, concurrent bodies against the in-flight budget,
 * thousands of distinct model names. Limits are short and set here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy, streamedBody, type EnvoyStream } from '../support/fake-envoy.ts';
import { startTestEpp } from '../support/epp.ts';
import { within } from '../support/wait.ts';
import { CHAT_PATH, chatBody, samples } from '../observability/helpers.ts';

function immediateStatus(s: EnvoyStream): number | undefined {
  const r = s.responses.find((x) => x.response.case === 'immediateResponse');
  return (r?.response.value as { status?: { code: number } } | undefined)?.status?.code;
}

describe('ext_proc limits', () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  before(async () => {
    epp = await startTestEpp({
      extProcIdleTimeoutMs: 300,
      maxBufferedResponseBytes: 256 * 1024,
      maxRequestBodyBytes: 1 << 20,
      maxRequestBodyBytesInFlight: 1 << 20,
      maxExtraModelLabels: 8,
    });
    envoy = new FakeEnvoy(epp.grpcPort);
  });
  after(async () => {
    envoy.close();
    await epp.close();
  });

  test('streams that send only request headers are ended at the idle timeout; nothing stays open', async () => {
    const streams = Array.from({ length: 200 }, () => {
      const s = envoy.open();
      s.requestHeaders({ ':path': CHAT_PATH, ':method': 'POST' });
      return s;
    });
    const ends = await within(Promise.all(streams.map((s) => s.ended)), 'idle streams to be ended');
    assert.ok(ends.every((e) => e.code === status.DEADLINE_EXCEEDED), JSON.stringify(ends[0]));
    await epp.server.whenIdle();
    assert.equal(epp.server.openStreams, 0);
    assert.match(await epp.metrics.registry.metrics(), /epp_client_timeouts_total\{data_plane="ext_proc",phase="request-body"\} 200/);
  });

  test('a routed stream whose response never comes is ended at the idle timeout; completion aborted', async () => {
    const s = envoy.open();
    s.requestHeaders({ ':path': CHAT_PATH, ':method': 'POST' });
    s.requestBody(chatBody('wait'), true);
    await s.nextN(2);
    const end = await within(s.ended, 'the idle routed stream to be ended');
    assert.equal(end.code, status.DEADLINE_EXCEEDED);
    await epp.director.whenIdle();
    assert.match(await epp.metrics.registry.metrics(), /epp_request_completions_total\{outcome="aborted"\} [1-9]/);
  });

  test('a stream that keeps sending is not idle: it outlives the timeout several times over, then ends once quiet', async () => {
    const s = envoy.open();
    s.requestHeaders({ ':path': CHAT_PATH, ':method': 'POST' });
    s.requestBody(chatBody('busy'), true);
    await s.nextN(2);
    s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    await s.next();
    let ended = false;
    void s.ended.then(() => (ended = true));
    const started = performance.now();
    // A chunk every 50 ms for 1 s (> 3 idle timeouts of 300 ms); each is answered.
    while (performance.now() - started < 1000) {
      s.responseBody('data: {"choices":[]}\n\n', false);
      await s.next();
      assert.equal(ended, false, `ended while busy, after ${Math.round(performance.now() - started)} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const end = await within(s.ended, 'the quiet stream to be ended');
    assert.equal(end.code, status.DEADLINE_EXCEEDED);
    await epp.director.whenIdle();
  });

  test('a buffered response over the cap is passed through before its end, whole and in order', async () => {
    const s = envoy.open();
    s.requestHeaders({ ':path': CHAT_PATH, ':method': 'POST' });
    s.requestBody(chatBody('big', false), true);
    await s.nextN(2);
    s.responseHeaders({ ':status': '200', 'content-type': 'application/json' });
    await s.next();
    const piece = new Uint8Array(64 * 1024).fill(0x61);
    const N = 16; // 1 MiB, cap 256 KiB
    for (let i = 0; i < N; i++) s.responseBody(piece, false);
    // Before the end of stream, the held part and the rest have been answered already.
    const early = await within(s.nextN(2), 'replies before end of stream');
    assert.equal(early.length, 2);
    s.responseBody(piece, true);
    let bytes = 0;
    let sawEnd = false;
    for (const r of early) bytes += streamedBody(r).bytes.length;
    while (!sawEnd) {
      const b = streamedBody(await within(s.next(), 'the rest of the body'));
      bytes += b.bytes.length;
      sawEnd = b.endOfStream;
    }
    assert.equal(bytes, (N + 1) * piece.length);
    s.end();
    await s.ended;
    await epp.director.whenIdle();
    assert.match(await epp.metrics.registry.metrics(), /epp_response_buffer_overflows_total\{data_plane="ext_proc"\} 1/);
  });

  test('bodies beyond the in-flight budget get 429; the budget is returned', async () => {
    const chunk = new Uint8Array(600 * 1024).fill(0x61);
    const open = (): EnvoyStream => {
      const s = envoy.open();
      s.requestHeaders({ ':path': '/v1/completions', ':method': 'POST' });
      s.requestBody('{"model":"m1","prompt":"', false);
      s.requestBody(chunk, false);
      return s;
    };
    // Two streams each holding 600 KiB against a 1 MiB budget: whichever body arrives second gets 429.
    const pair = [open(), open()];
    const loser = await within(Promise.race(pair.map((s) => s.ended.then(() => s))), 'one stream to be refused');
    assert.equal(immediateStatus(loser), 429);
    const winner = pair.find((s) => s !== loser) as EnvoyStream;
    winner.requestBody('"}', true);
    const routed = await Promise.race([winner.nextN(2).then(() => 'routed'), winner.ended.then((e) => JSON.stringify(e))]);
    assert.equal(routed, 'routed');
    winner.call.cancel();
    await epp.server.whenIdle();
    assert.match(await epp.metrics.registry.metrics(), /epp_request_body_budget_rejections_total\{data_plane="ext_proc"\} 1/);
    assert.equal(epp.bodyBudget.used, 0);
    // Budget back: the next request of the same size goes through.
    const c = envoy.open();
    c.requestHeaders({ ':path': '/v1/completions', ':method': 'POST' });
    c.requestBody('{"model":"m1","prompt":"', false);
    c.requestBody(chunk, false);
    c.requestBody('"}', true);
    assert.equal((await within(c.nextN(2), 'routing after the budget was returned')).length, 2);
    c.call.cancel();
  });

  test('thousands of distinct model names keep the series count bounded', async () => {
    const N = 1000;
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, j) => {
          const s = envoy.open();
          s.requestHeaders({ ':path': CHAT_PATH, ':method': 'POST' });
          s.requestBody(chatBody('x', true, `model-${i + j}`), true);
          await s.nextN(2);
          s.end(); // a half-close, not a reset: many resets on one connection trip Node's rapid-reset guard
          await s.ended;
        }),
      );
    }
    await epp.director.whenIdle();
    const text = await epp.metrics.registry.metrics();
    for (const family of ['inference_objective_request_total', 'inference_objective_running_requests', 'inference_extension_scheduler_attempts_total']) {
      // At most the 8 admitted names plus `other`, whatever the other labels multiply it by.
      const models = new Set(samples(text, family).map((l) => /model_name="([^"]*)"/.exec(l)?.[1]));
      assert.ok(models.size <= 9, `${family}: ${models.size} model label values`);
      assert.ok(models.has('other'), family);
    }
    assert.match(text, /inference_objective_running_requests\{model_name="other"\} 0/);
  });
});
