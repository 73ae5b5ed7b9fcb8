/**
 * Streams in which Envoy skips phases (per-route `processing_mode` overrides, `request_header_mode: SKIP`, ...):
 * every message is answered by its kind, as upstream does (epp-spec §1.2), and nothing is answered that Envoy did
 * not send (the Envoy-like client fails on an unsolicited reply). Only sequences no Envoy can send are refused.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { Plugin, PluginFactory } from '../../src/framework/plugin.ts';
import type { Outcome, ResponseChunk } from '../../src/framework/requestcontrol.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy, setHeaders, streamedBody, type EnvoyStream } from '../support/fake-envoy.ts';
import { configText, POOL, startTestEpp } from '../support/epp.ts';

const events: string[] = [];
const recorder: PluginFactory = (name) =>
  ({
    typedName: { type: 'phase-recorder', name },
    onResponseHeaders() {
      events.push('headers');
    },
    onResponseChunk(_r: unknown, c: ResponseChunk) {
      events.push(`chunk:${c.index}:${c.endOfStream ? 'final' : 'mid'}`);
    },
    onResponseComplete(_r: unknown, o: Outcome) {
      events.push(`complete:${o.kind}`);
    },
  }) as Plugin;

const sse = (i: number): string => `data: {"object":"chat.completion.chunk","model":"m1","choices":[{"delta":{"content":"t${i}"}}]}\n\n`;

function replyCase(r: { response: { case: string | undefined } }): string {
  return r.response.case ?? 'none';
}

/** Nothing more arrives, the stream ends OK and no per-stream state is left. */
async function endClean(epp: RunningEpp, s: EnvoyStream, replies: number): Promise<void> {
  s.end();
  const end = await s.ended;
  assert.equal(end.code, status.OK, end.details);
  assert.equal(s.responses.length, replies, `replies: ${s.responses.map(replyCase).join(', ')}`);
  await epp.server.whenIdle();
  assert.equal(epp.director.liveResponseStreams, 0);
}

describe('ext_proc streams with skipped phases', { timeout: 10_000 }, () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  before(async () => {
    epp = await startTestEpp({
      configText: configText('- name: rec\n  type: phase-recorder'),
      register: (r) => r.register('phase-recorder', recorder),
    });
    envoy = new FakeEnvoy(epp.grpcPort);
  });
  after(async () => {
    envoy.close(); // throws if any stream got an unsolicited reply
    await epp.close();
  });
  beforeEach(() => {
    events.length = 0;
  });

  test('1. the stream starts with response_headers (SSE): headers echoed without system-owned ones, chunks answered one by one, trailers answered', async () => {
    const s = envoy.open();
    s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream', 'content-length': '99', 'x-gateway-destination-endpoint-served': '10.0.0.1:8000', 'x-custom': 'kept' });
    const rh = await s.next();
    assert.equal(replyCase(rh), 'responseHeaders');
    assert.deepEqual(setHeaders(rh), [
      ['x-went-into-resp-headers', 'true'],
      [':status', '200'],
      ['content-type', 'text/event-stream'],
      ['x-custom', 'kept'],
    ]);
    for (let i = 0; i < 3; i++) {
      s.responseBody(sse(i), false);
      const r = streamedBody(await s.next());
      assert.deepEqual([r.body, r.endOfStream], [sse(i), false]);
    }
    s.responseBody('data: [DONE]\n\n', true);
    const last = streamedBody(await s.next());
    assert.deepEqual([last.body, last.endOfStream], ['data: [DONE]\n\n', true]);
    s.responseTrailers();
    assert.equal(replyCase(await s.next()), 'responseTrailers');
    await endClean(epp, s, 6);
    assert.deepEqual(events, [], 'no routing decision: no hooks, no completion');
  });

  test('2. the stream starts with response_headers (JSON): the buffered body is answered once at its end', async () => {
    const s = envoy.open();
    s.responseHeaders({ ':status': '404', 'content-type': 'application/json' });
    assert.equal(replyCase(await s.next()), 'responseHeaders');
    s.responseBody('{"error":', false);
    s.responseBody('"not found"}', true);
    const r = streamedBody(await s.next());
    assert.deepEqual([r.body, r.endOfStream], ['{"error":"not found"}', true]);
    await endClean(epp, s, 2);
    assert.deepEqual(events, []);
  });

  test('3. response_body without response_headers (and no request phases): no invented headers reply; body once at the end; trailers answered', async () => {
    const s = envoy.open();
    s.responseBody('part one, ', false);
    s.responseBody('part two', false);
    s.responseTrailers();
    const [body, trailers] = await s.nextN(2);
    const b = streamedBody(body!);
    // gRPC-style end (trailers): the buffered body goes out without end_of_stream, then the trailers reply.
    assert.deepEqual([b.body, b.endOfStream], ['part one, part two', false]);
    assert.equal(replyCase(trailers!), 'responseTrailers');
    await endClean(epp, s, 2);
    assert.deepEqual(events, []);
  });

  test('4. response_trailers alone: one trailers reply, nothing else', async () => {
    const s = envoy.open();
    s.responseTrailers();
    assert.equal(replyCase(await s.next()), 'responseTrailers');
    await endClean(epp, s, 1);
  });

  test('a routed request whose response headers Envoy skips: no headers reply, no header hooks; chunks streamed; completion once', async () => {
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/chat/completions', 'content-type': 'application/json' });
    s.requestBody(JSON.stringify({ model: 'm1', stream: true, messages: [{ role: 'user', content: 'hi' }] }), true);
    const [hdr] = await s.nextN(2);
    assert.ok(POOL.includes(setHeaders(hdr!)[0]![1]));
    s.responseBody(sse(0), false);
    const mid = streamedBody(await s.next());
    assert.deepEqual([mid.body, mid.endOfStream], [sse(0), false]);
    s.responseBody('data: [DONE]\n\n', true);
    assert.equal(streamedBody(await s.next()).endOfStream, true);
    await endClean(epp, s, 4);
    assert.deepEqual(events, ['chunk:0:mid', 'chunk:1:final', 'complete:success']);
  });

  test('a routed request answered with trailers only: completion runs, one trailers reply, no body reply', async () => {
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/completions' });
    s.requestBody(JSON.stringify({ model: 'm1', prompt: 'hi' }), true);
    await s.nextN(2);
    s.responseHeaders({ ':status': '200', 'content-type': 'application/grpc' });
    assert.equal(replyCase(await s.next()), 'responseHeaders');
    s.responseTrailers();
    assert.equal(replyCase(await s.next()), 'responseTrailers');
    await endClean(epp, s, 4);
    assert.deepEqual(events, ['headers', 'chunk:0:final', 'complete:success']);
  });

  test('request_body without request_headers cannot be routed: it is passed through unchanged, chunk by chunk', async () => {
    const s = envoy.open();
    s.requestBody('{"model":', false);
    const a = streamedBody(await s.next());
    assert.deepEqual([a.body, a.endOfStream], ['{"model":', false]);
    s.requestBody('"m1"}', true);
    const b = streamedBody(await s.next());
    assert.deepEqual([b.body, b.endOfStream], ['"m1"}', true]);
    s.responseHeaders({ ':status': '200' });
    assert.equal(replyCase(await s.next()), 'responseHeaders');
    await endClean(epp, s, 3);
    assert.deepEqual(events, []);
  });

  test('request trailers get no reply (as upstream), before or after the response', async () => {
    const s = envoy.open();
    s.send({ request: { case: 'requestTrailers', value: {} } });
    s.responseHeaders({ ':status': '204' });
    assert.equal(replyCase(await s.next()), 'responseHeaders');
    await endClean(epp, s, 1);
  });

  for (const [name, steps] of [
    ['a second request_headers', (s: EnvoyStream) => (s.requestHeaders({ ':path': '/v1/models' }), s.requestHeaders({ ':path': '/v1/models' }))],
    ['a second response_headers', (s: EnvoyStream) => (s.responseHeaders({ ':status': '200' }), s.responseHeaders({ ':status': '200' }))],
    ['request_headers after the response began', (s: EnvoyStream) => (s.responseHeaders({ ':status': '200' }), s.requestHeaders({ ':path': '/v1/models' }))],
    ['response_headers while the request headers wait for their reply', (s: EnvoyStream) => (s.requestHeaders({ ':path': '/v1/completions' }), s.responseHeaders({ ':status': '200' }))],
  ] as const) {
    test(`still refused, as no Envoy sends it: ${name}`, async () => {
      const s = envoy.open();
      steps(s);
      const end = await s.ended;
      assert.equal(end.code, status.INVALID_ARGUMENT);
      assert.match(end.details, /unexpected ext_proc message/);
      assert.ok(s.responses.every((r) => replyCase(r) === 'responseHeaders'), 'only the first headers were answered');
      await epp.server.whenIdle();
    });
  }
});

describe('the Envoy-like test client', () => {
  test('fails on a reply to a message it never sent', async () => {
    const { ReplyLedger } = await import('../support/reply-ledger.ts');
    const { create } = await import('@bufbuild/protobuf');
    const { ProcessingResponseSchema } = await import('../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts');
    const ledger = new ReplyLedger();
    ledger.sent({ request: { case: 'responseBody', value: {} as never } });
    assert.match(ledger.received(create(ProcessingResponseSchema, { response: { case: 'responseHeaders', value: {} } })) ?? '', /no responseHeaders message was sent/);
    assert.equal(ledger.received(create(ProcessingResponseSchema, { response: { case: 'responseBody', value: {} } })), undefined);
    ledger.sent({ request: { case: 'requestHeaders', value: {} as never } });
    assert.equal(ledger.received(create(ProcessingResponseSchema, { response: { case: 'requestHeaders', value: {} } })), undefined);
    assert.match(ledger.received(create(ProcessingResponseSchema, { response: { case: 'requestHeaders', value: {} } })) ?? '', /2 requestHeaders replies for 1/);
    assert.equal(ledger.violations.length, 2);
  });
});
