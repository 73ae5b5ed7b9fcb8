/**
 * Tracing: `gateway.request` and its `gateway.request_orchestration` child per request, W3C trace context in the
 * request-headers reply, nothing at all when tracing is off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { tracingEnabled } from '../../src/observability/tracing-env.ts';
import { ORCHESTRATION_SPAN, REQUEST_SPAN, TRACER_NAME } from '../../src/observability/tracing.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy, setHeaders } from '../support/fake-envoy.ts';
import { startTestEpp } from '../support/epp.ts';
import { chatBody, CHAT_PATH, fullStreamedRequest } from './helpers.ts';

describe('tracingEnabled', () => {
  const cases: Array<[boolean | undefined, Record<string, string>, boolean]> = [
    [undefined, {}, false],
    [true, {}, true],
    [false, { OTEL_TRACES_EXPORTER: 'otlp' }, false],
    [undefined, { OTEL_TRACES_EXPORTER: 'console' }, true],
    [undefined, { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4317' }, false],
    [undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4317' }, true],
    [undefined, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://x:4317' }, true],
    [undefined, { OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, false],
    [undefined, { OTEL_SERVICE_NAME: 'x' }, false],
  ];
  for (const [flag, env, want] of cases) {
    test(`--tracing=${String(flag)} env=${JSON.stringify(env)} → ${want}`, () => {
      assert.equal(tracingEnabled(flag, env), want);
    });
  }
});

describe('request spans', () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  const exporter = new InMemorySpanExporter();
  before(async () => {
    epp = await startTestEpp({ tracing: { exporter, synchronous: true, samplerRatio: 1, commit: 'abc123', env: {} } });
    envoy = new FakeEnvoy(epp.grpcPort);
  });
  after(async () => {
    envoy.close();
    await epp.close();
  });

  test('one gateway.request (SERVER) with an orchestration child; traceparent of the request span goes upstream', async () => {
    exporter.reset();
    const s = envoy.open();
    s.requestHeaders({ ':path': CHAT_PATH, 'x-request-id': 'r1', 'content-type': 'application/json' });
    s.requestBody(chatBody('trace me'), true);
    const [hdr] = await s.nextN(2);
    const set = setHeaders(hdr!);
    const keys = set.map(([k]) => k);
    const tp = set.find(([k]) => k === 'traceparent')?.[1] ?? '';
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // Upstream order: destination, Content-Length, trace context, then the echoed request headers.
    assert.deepEqual(keys.slice(0, 3), ['x-gateway-destination-endpoint', 'Content-Length', 'traceparent']);
    s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    await s.next();
    s.responseBody('data: [DONE]\n\n', true);
    await s.next();
    s.end();
    await s.ended;

    const spans = exporter.getFinishedSpans();
    const req = spans.find((x) => x.name === REQUEST_SPAN);
    const orch = spans.find((x) => x.name === ORCHESTRATION_SPAN);
    assert.ok(req && orch, spans.map((x) => x.name).join(','));
    assert.equal(spans.length, 2);
    assert.equal(req.kind, SpanKind.SERVER);
    assert.equal(req.instrumentationScope.name, TRACER_NAME);
    assert.equal(req.attributes['commit-sha'], 'abc123');
    assert.equal(req.status.code, SpanStatusCode.UNSET);
    assert.equal(orch.parentSpanContext?.spanId, req.spanContext().spanId);
    assert.equal(orch.spanContext().traceId, req.spanContext().traceId);
    assert.equal(tp, `00-${req.spanContext().traceId}-${req.spanContext().spanId}-01`);
  });

  test('an incoming traceparent is continued and replaced, not echoed next to ours', async () => {
    exporter.reset();
    const incoming = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const s = envoy.open();
    s.requestHeaders({ ':path': CHAT_PATH, traceparent: incoming, 'content-type': 'application/json' });
    s.requestBody(chatBody('continue me'), true);
    const [hdr] = await s.nextN(2);
    const tps = setHeaders(hdr!).filter(([k]) => k === 'traceparent');
    assert.equal(tps.length, 1);
    assert.match(tps[0]![1], /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    assert.notEqual(tps[0]![1], incoming);
    s.end();
    await s.ended;
    const req = exporter.getFinishedSpans().find((x) => x.name === REQUEST_SPAN);
    assert.equal(req?.parentSpanContext?.spanId, 'b7ad6b7169203331');
  });

  test('a failed request ends its spans with an error status', async () => {
    exporter.reset();
    const s = envoy.open();
    s.requestHeaders({ ':path': CHAT_PATH });
    s.requestBody('{not json', true);
    const r = await s.next();
    assert.equal(r.response.case, 'immediateResponse');
    await s.ended;
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.find((x) => x.name === REQUEST_SPAN)?.status.code, SpanStatusCode.ERROR);
    assert.equal(spans.find((x) => x.name === ORCHESTRATION_SPAN)?.status.code, SpanStatusCode.ERROR);
  });
});

describe('tracing off (the default)', () => {
  test('no trace headers, no tracer', async () => {
    const epp = await startTestEpp();
    const envoy = new FakeEnvoy(epp.grpcPort);
    try {
      assert.equal(epp.tracer, undefined);
      const s = envoy.open();
      s.requestHeaders({ ':path': CHAT_PATH, 'content-type': 'application/json' });
      s.requestBody(chatBody('no trace'), true);
      const [hdr] = await s.nextN(2);
      assert.ok(!setHeaders(hdr!).some(([k]) => k === 'traceparent'));
      s.end();
      await s.ended;
      await fullStreamedRequest(envoy.open(), 'still fine');
    } finally {
      envoy.close();
      await epp.close();
    }
  });
});
