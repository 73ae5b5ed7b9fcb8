/**
 * The ext_proc server driven over loopback by a client behaving like Envoy in FULL_DUPLEX_STREAMED mode.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Plugin, PluginFactory } from '../../src/framework/plugin.ts';
import type { Outcome, ResponseChunk, ResponseInfo } from '../../src/framework/requestcontrol.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy, setHeaders, streamedBody, type EnvoyStream } from '../support/fake-envoy.ts';
import type { ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { configText, POOL, startTestEpp } from '../support/epp.ts';

const CHAT = JSON.stringify({ model: 'm1', stream: true, messages: [{ role: 'user', content: 'héllo wörld' }] });
const enc = new TextEncoder();

/** A plugin that records every response-path event into a shared log. */
interface Recorder {
  events: string[];
  outcomes: Outcome[];
  chunkDelayMs: number;
  throwOnChunk: boolean;
  hangOnChunk: boolean;
  completedChunks: number;
}
function recorderFactory(rec: Recorder): PluginFactory {
  return (name) =>
    ({
      typedName: { type: 'recording-plugin', name },
      onResponseHeaders(r: ResponseInfo) {
        rec.events.push(`headers:${r.status}`);
      },
      async onResponseChunk(r: ResponseInfo, c: ResponseChunk) {
        if (rec.throwOnChunk) throw new Error('boom');
        if (rec.hangOnChunk) return new Promise<void>(() => {});
        if (rec.chunkDelayMs > 0) await new Promise((res) => setTimeout(res, rec.chunkDelayMs));
        rec.events.push(`chunk:${c.index}:${c.endOfStream ? 'final' : 'mid'}`);
        rec.completedChunks++;
        if (c.endOfStream) r.dynamicMetadata['test.ns'] = { chunks: c.index + 1 };
      },
      onResponseComplete(r: ResponseInfo, o: Outcome) {
        rec.events.push(`complete:${o.kind}`);
        rec.outcomes.push(o);
        r.dynamicMetadata['test.ns'] = { ...(r.dynamicMetadata['test.ns'] ?? {}), completed: true };
      },
    }) as Plugin;
}

function newRecorder(): Recorder {
  return { events: [], outcomes: [], chunkDelayMs: 0, throwOnChunk: false, hangOnChunk: false, completedChunks: 0 };
}

async function routeStreaming(s: EnvoyStream, headers: Record<string, string> = {}) {
  s.requestHeaders({ ':path': '/v1/chat/completions', ':method': 'POST', 'content-type': 'application/json', ...headers });
  s.requestBody(CHAT, true);
  const [hdr, body] = await s.nextN(2);
  return { hdr: hdr!, body: body! };
}

/** Response headers of an SSE stream, and their reply. */
async function openSse(s: EnvoyStream): Promise<void> {
  s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
  await s.next();
}

/** `n` intermediate SSE chunks, each sent after the previous chunk's reply arrived (as Envoy does). */
async function streamChunks(s: EnvoyStream, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    s.responseBody(sse(i), false);
    await s.next();
  }
}

/** An empty final chunk; resolves to its reply. */
function finishStream(s: EnvoyStream): Promise<ProcessingResponse> {
  s.responseBody('', true);
  return s.next();
}

function sse(i: number): string {
  return `data: {"id":"c","object":"chat.completion.chunk","model":"m1","choices":[{"index":0,"delta":{"content":"t${i}"}}]}\n\n`;
}

describe('ext_proc server', () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  const rec = newRecorder();

  before(async () => {
    epp = await startTestEpp({
      configText: configText('- name: rec\n  type: recording-plugin', []),
      register: (r) => r.register('recording-plugin', recorderFactory(rec)),
      responsePath: { hookTimeoutMs: 200 },
    });
    envoy = new FakeEnvoy(epp.grpcPort);
  });
  after(async () => {
    envoy.close();
    await epp.close();
  });

  function reset() {
    Object.assign(rec, newRecorder());
  }

  test('routes after the whole body: destination header first, Content-Length of the re-serialised body, envoy.lb metadata', async () => {
    reset();
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/chat/completions', 'x-request-id': 'abc', 'content-type': 'application/json' });
    // 1-byte chunks, splitting the UTF-8 sequences of é and ö.
    const bytes = enc.encode(CHAT);
    for (let i = 0; i < bytes.length; i++) s.requestBody(bytes.subarray(i, i + 1), i === bytes.length - 1);
    const hdr = await s.next();
    assert.equal(hdr.response.case, 'requestHeaders');
    const set = setHeaders(hdr);
    const dest = set[0]!;
    assert.equal(dest[0], 'x-gateway-destination-endpoint');
    assert.ok(POOL.includes(dest[1]), dest[1]);
    const lb = hdr.dynamicMetadata?.['envoy.lb'] as Record<string, string>;
    assert.equal(lb['x-gateway-destination-endpoint'], dest[1]);
    assert.equal((hdr.response.value as { response: { clearRouteCache: boolean } }).response.clearRouteCache, true);
    const body = streamedBody(await s.next());
    assert.equal(body.endOfStream, true);
    assert.deepEqual(JSON.parse(body.body), JSON.parse(CHAT));
    const cl = set.find(([k]) => k === 'Content-Length');
    assert.equal(cl?.[1], String(body.bytes.length));
    assert.ok(set.some(([k, v]) => k === 'x-request-id' && v === 'abc'));
    s.end();
    await s.ended;
  });

  test('a client-supplied destination header is never echoed or trusted, and a missing x-request-id is generated', async () => {
    reset();
    const s = envoy.open();
    const { hdr } = await routeStreaming(s, { 'x-gateway-destination-endpoint': '6.6.6.6:666', 'X-Gateway-Destination-Endpoint-Subset': 'x' });
    const set = setHeaders(hdr);
    const dests = set.filter(([k]) => k.toLowerCase() === 'x-gateway-destination-endpoint');
    assert.equal(dests.length, 1);
    assert.ok(POOL.includes(dests[0]![1]));
    assert.ok(!set.some(([k]) => k === 'x-gateway-destination-endpoint-subset'));
    const id = set.find(([k]) => k === 'x-request-id')?.[1] ?? '';
    assert.match(id, /^[0-9a-f-]{36}$/);
    s.end();
    await s.ended;
  });

  test('50 streamed chunks: header hooks first, chunk hooks in order, final after all, metadata on the final reply only', async () => {
    reset();
    const s = envoy.open();
    await routeStreaming(s);
    s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    const rh = await s.next();
    assert.equal(rh.response.case, 'responseHeaders');
    assert.ok(setHeaders(rh).some(([k, v]) => k === 'x-went-into-resp-headers' && v === 'true'));
    for (let i = 0; i < 49; i++) {
      s.responseBody(sse(i), false);
      const r = await s.next();
      assert.equal(streamedBody(r).body, sse(i));
      assert.equal(streamedBody(r).endOfStream, false);
      assert.equal(r.dynamicMetadata, undefined);
    }
    s.responseBody('data: {"usage":{"prompt_tokens":5,"completion_tokens":49,"total_tokens":54}}\n\ndata: [DONE]\n\n', true);
    const last = await s.next();
    assert.equal(streamedBody(last).endOfStream, true);
    assert.deepEqual(last.dynamicMetadata?.['test.ns'], { chunks: 50, completed: true });
    const expected = ['headers:200', ...Array.from({ length: 49 }, (_, i) => `chunk:${i}:mid`), 'chunk:49:final', 'complete:success'];
    assert.deepEqual(rec.events, expected);
    const outcome = rec.outcomes[0];
    assert.equal(outcome?.kind, 'success');
    assert.deepEqual(outcome?.kind === 'success' ? outcome.usage : undefined, { promptTokens: 5, completionTokens: 49, totalTokens: 54 });
    s.end();
    await s.ended;
    assert.equal(epp.director.liveResponseStreams, 0);
  });

  test('slow chunk hooks (20 ms each) do not hold back chunk replies', async () => {
    reset();
    rec.chunkDelayMs = 20;
    const s = envoy.open();
    await routeStreaming(s);
    s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    await s.next();
    const hooksDoneAtReply: number[] = [];
    for (let i = 0; i < 10; i++) {
      s.responseBody(sse(i), false);
      await s.next();
      hooksDoneAtReply.push(rec.completedChunks);
    }
    // Causality, not wall time: had replies waited for hooks, hook i would be done before reply i arrived.
    assert.ok(hooksDoneAtReply[9]! < 10, `hooks done when the 10th reply arrived: ${hooksDoneAtReply[9]}`);
    s.responseBody('', true);
    await s.next();
    assert.equal(rec.completedChunks, 11); // the final reply waited for every hook
    s.end();
    await s.ended;
  });

  test('buffered (non-streaming) responses are answered once at end of stream, with usage', async () => {
    reset();
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/completions' });
    s.requestBody(JSON.stringify({ model: 'm1', prompt: 'hi' }), true);
    await s.nextN(2);
    s.responseHeaders({ ':status': '200', 'content-type': 'application/json' });
    await s.next();
    const full = JSON.stringify({ object: 'text_completion', model: 'm1', choices: [{ text: 'x' }], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
    s.responseBody(full.slice(0, 10), false);
    s.responseBody(full.slice(10), true);
    const r = await s.next();
    assert.equal(streamedBody(r).body, full);
    assert.equal(streamedBody(r).endOfStream, true);
    assert.equal(s.responses.length, 4);
    assert.deepEqual(rec.events, ['headers:200', 'chunk:0:final', 'complete:success']);
    s.end();
    await s.ended;
  });

  test('a 1 MB body is forwarded as 62,000-byte pieces with end_of_stream on the last', async () => {
    reset();
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/completions' });
    const body = JSON.stringify({ model: 'm1', prompt: 'x'.repeat(1 << 20) });
    s.requestBody(body, true);
    const hdr = await s.next();
    assert.equal(hdr.response.case, 'requestHeaders');
    const pieces = Math.ceil(body.length / 62_000);
    const replies = await s.nextN(pieces);
    const sizes = replies.map((r) => streamedBody(r).bytes.length);
    assert.ok(sizes.slice(0, -1).every((n) => n === 62_000));
    assert.equal(sizes.reduce((a, b) => a + b, 0), body.length);
    assert.deepEqual(replies.map((r) => streamedBody(r).endOfStream), [...Array(pieces - 1).fill(false), true]);
    s.end();
    await s.ended;
  });

  test('malformed JSON gets one 400 ImmediateResponse in upstream format and the stream ends', async () => {
    reset();
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/chat/completions' });
    s.requestBody('{"model": "m1", ', true);
    const r = await s.next();
    assert.equal(r.response.case, 'immediateResponse');
    const ir = r.response.value as { status: { code: number }; body: Uint8Array };
    assert.equal(ir.status.code, 400);
    assert.match(new TextDecoder().decode(ir.body), /^inference error: BadRequest - error unmarshaling request bodyMap/);
    const end = await s.ended;
    assert.equal(end.code, 0);
    assert.deepEqual(rec.events, []); // never scheduled: no completion
  });

  test('a body-less request goes to a random endpoint at once, without Content-Length', async () => {
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/models', ':method': 'GET' }, true);
    const r = await s.next();
    const set = setHeaders(r);
    assert.equal(set[0]![0], 'x-gateway-destination-endpoint');
    assert.ok(POOL.includes(set[0]![1]));
    assert.ok(!set.some(([k]) => k === 'Content-Length'));
    s.end();
    await s.ended;
  });

  test('abort mid-stream: completion once with outcome aborted, pending hooks still ordered, no state left', async () => {
    reset();
    const s = envoy.open();
    await routeStreaming(s);
    await openSse(s);
    await streamChunks(s, 5);
    s.cancel();
    await s.ended;
    await epp.server.whenIdle();
    assert.equal(rec.outcomes[0]?.kind, 'aborted');
    assert.deepEqual(rec.events.slice(-1), ['complete:aborted']);
    assert.equal(rec.events.filter((e) => e.startsWith('complete')).length, 1);
    assert.equal(epp.director.liveResponseStreams, 0);
  });

  test('two concurrent streams with the same x-request-id stay independent', async () => {
    reset();
    const a = envoy.open();
    const b = envoy.open();
    await Promise.all([routeStreaming(a, { 'x-request-id': 'same' }), routeStreaming(b, { 'x-request-id': 'same' })]);
    for (const s of [a, b]) s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    await Promise.all([a.next(), b.next()]);
    for (let i = 0; i < 5; i++) {
      a.responseBody(sse(i), false);
      b.responseBody(sse(i), false);
      await Promise.all([a.next(), b.next()]);
    }
    a.responseBody('', true);
    await a.next();
    b.cancel();
    a.end();
    await Promise.all([a.ended, b.ended]);
    await epp.server.whenIdle();
    assert.deepEqual(rec.outcomes.map((o) => o.kind).sort(), ['aborted', 'success']);
    // Each stream saw its own 5 intermediate chunks in order (indices 0..4 twice), never interleaved per stream.
    assert.equal(rec.events.filter((e) => e.endsWith(':mid')).length, 10);
    assert.equal(epp.director.liveResponseStreams, 0);
  });

  test('a throwing chunk hook is counted and logged, and never breaks the stream', async () => {
    reset();
    rec.throwOnChunk = true;
    const before = await counter(epp, 'epp_response_hook_errors_total');
    const s = envoy.open();
    await routeStreaming(s);
    await openSse(s);
    await streamChunks(s, 3);
    const last = await finishStream(s);
    assert.equal(streamedBody(last).endOfStream, true);
    assert.equal((await counter(epp, 'epp_response_hook_errors_total')) - before, 4);
    assert.equal(rec.outcomes[0]?.kind, 'success');
    s.end();
    await s.ended;
  });

  test('a hung chunk hook times out once, is skipped for the rest of the stream, and the stream completes', async () => {
    reset();
    rec.hangOnChunk = true;
    const before = await counter(epp, 'epp_response_hook_timeouts_total');
    const s = envoy.open();
    await routeStreaming(s);
    await openSse(s);
    await streamChunks(s, 3);
    const last = await finishStream(s);
    assert.equal(streamedBody(last).endOfStream, true);
    assert.equal((await counter(epp, 'epp_response_hook_timeouts_total')) - before, 1);
    assert.equal(rec.outcomes[0]?.kind, 'success');
    s.end();
    await s.ended;
  });

  test('an upstream error status is reported to completion hooks as upstream-error', async () => {
    reset();
    const s = envoy.open();
    await routeStreaming(s);
    s.responseHeaders({ ':status': '503', 'content-type': 'application/json' });
    await s.next();
    s.responseBody('{"error":"overloaded"}', true);
    await s.next();
    assert.deepEqual(rec.outcomes[0], { kind: 'upstream-error', status: 503 });
    s.end();
    await s.ended;
  });
});

describe('request-attribute-reporter', () => {
  test('the upstream config file loads unchanged and the cost rides on the final reply', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../fixtures/upstream-configs/request-attribute-reporter.yaml', import.meta.url), 'utf8');
    const epp = await startTestEpp({ configText: text });
    const envoy = new FakeEnvoy(epp.grpcPort);
    try {
      const s = envoy.open();
      await routeStreaming(s);
      s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
      await s.next();
      s.responseBody(sse(0), false);
      assert.equal((await s.next()).dynamicMetadata, undefined);
      s.responseBody('data: {"usage":{"prompt_tokens":3,"completion_tokens":7,"total_tokens":10}}\n\ndata: [DONE]\n\n', true);
      const last = await s.next();
      assert.deepEqual(last.dynamicMetadata?.['envoy.lb'], { 'x-gateway-inference-request-cost': 7 });
      s.end();
      await s.ended;
    } finally {
      envoy.close();
      await epp.close();
    }
  });
});

async function counter(epp: RunningEpp, name: string): Promise<number> {
  const m = await epp.metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}
