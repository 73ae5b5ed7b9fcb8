/**
 * Every plugin type upstream registers exists (epp-spec §4.4, except the latency-prediction family) and does its
 * job end to end: passthrough-parser and vllmgrpc-parser route over ext_proc, destination-endpoint-served-verifier
 * answers the conformance header, endpoint-notification-source feeds inflight-load-producer from a watched
 * endpoints file, k8s-notification-source delivers objects from a (fake) API server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { startDataLayer, bindNotificationSources } from '../src/datalayer/index.ts';
import type { KubernetesObjectEvent, NotificationExtractor } from '../src/framework/datasource.ts';
import type { Plugin } from '../src/framework/plugin.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { EndpointNotificationSource } from '../src/plugins/datalayer/source/endpoint-notification-source/index.ts';
import { K8sNotificationSource } from '../src/plugins/datalayer/source/k8s-notification-source/index.ts';
import { EMBED_PATH, GENERATE_PATH, VllmGrpcParser } from '../src/plugins/parser/vllmgrpc-parser/index.ts';
import { BUILTIN_PLUGINS } from '../src/plugins/register.ts';
import { InFlightTracker } from '../src/runtime/inflight.ts';
import { InFlightLoadProducer } from '../src/plugins/requestcontrol/inflight-load-producer/index.ts';
import { FakeEnvoy, setHeaders, streamedBody } from './support/fake-envoy.ts';
import { FakeKubeApiServer, INFERENCE_POOLS, makeInferencePool, PODS, type ResourceType } from './support/fake-kube-apiserver.ts';
import { makeCandidate, makeEndpoint, makeRequest, makeSchedulingResult } from './support/plugin-fixtures.ts';
import { POOL, startTestEpp } from './support/epp.ts';
import { within } from './support/wait.ts';

const UPSTREAM_TYPES = [
  'single-profile-handler', 'max-score-picker', 'random-picker', 'weighted-random-picker', 'queue-scorer',
  'kv-cache-utilization-scorer', 'running-requests-size-scorer', 'lora-affinity-scorer', 'prefix-cache-scorer',
  'token-load-scorer', 'prefix-cache-affinity-filter', 'header-based-testing-filter', 'approx-prefix-cache-producer',
  'inflight-load-producer', 'request-attribute-reporter', 'destination-endpoint-served-verifier', 'openai-parser',
  'vllmgrpc-parser', 'passthrough-parser', 'metrics-data-source', 'core-metrics-extractor', 'k8s-notification-source',
  'endpoint-notification-source', 'global-strict-fairness-policy', 'round-robin-fairness-policy', 'fcfs-ordering-policy',
  'edf-ordering-policy', 'slo-deadline-ordering-policy', 'static-usage-limit-policy', 'utilization-detector',
  'concurrency-detector',
];

const config = (parser: string, extra = '') => `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [enableLegacyMetrics]
plugins:
- type: random-picker
- type: ${parser}
${extra}
parser:
  pluginRef: ${parser}
`;

function frame(message: Uint8Array, compressed = false): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  out[0] = compressed ? 1 : 0;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}
function generateRequest(o: { text?: string; tokenized?: { text: string; ids: number[] }; stream?: boolean }): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, 2).string('req-1');
  if (o.tokenized) {
    const t = new BinaryWriter();
    t.tag(1, 2).string(o.tokenized.text);
    t.tag(2, 2).fork();
    for (const id of o.tokenized.ids) t.uint32(id);
    t.join();
    w.tag(2, 2).bytes(t.finish());
  }
  if (o.text !== undefined) w.tag(3, 2).string(o.text);
  w.tag(4, 2).bytes(new BinaryWriter().tag(8, 0).uint32(64).finish()); // sampling params: skipped
  if (o.stream) w.tag(5, 0).bool(true);
  return frame(w.finish());
}

test('every plugin type upstream registers (but the latency-prediction family) is built in', () => {
  const types = new Set(BUILTIN_PLUGINS.map((p) => p.type));
  assert.deepEqual(UPSTREAM_TYPES.filter((t) => !types.has(t)), []);
});

describe('parsers over ext_proc', () => {
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  test('passthrough-parser routes a non-JSON body unchanged, with its own Content-Length', async () => {
    const epp = await startTestEpp({ configText: config('passthrough-parser') });
    const envoy = new FakeEnvoy(epp.grpcPort);
    closers.push(() => epp.close(), () => envoy.close());
    const body = new Uint8Array([0xff, 0x00, 0x7b, 0x22, 0x6d, 0x0a, 0x80]); // not JSON, not even UTF-8
    const s = envoy.open();
    s.requestHeaders({ ':path': '/upload', 'content-type': 'application/octet-stream' });
    s.requestBody(body, true);
    const [hdr, piece] = await s.nextN(2);
    const set = setHeaders(hdr!);
    assert.ok(POOL.includes(set[0]![1]));
    assert.deepEqual(set.find(([k]) => k === 'Content-Length'), ['Content-Length', String(body.length)]);
    assert.deepEqual([...streamedBody(piece!).bytes], [...body]);
    s.end();
    await s.ended;
  });

  test('vllmgrpc-parser routes a Generate request (body unchanged) and refuses other gRPC paths', async () => {
    const epp = await startTestEpp({ configText: config('vllmgrpc-parser') });
    const envoy = new FakeEnvoy(epp.grpcPort);
    closers.push(() => epp.close(), () => envoy.close());
    const body = generateRequest({ text: 'Hello', stream: true });
    const s = envoy.open();
    s.requestHeaders({ ':path': GENERATE_PATH, 'content-type': 'application/grpc' });
    s.requestBody(body, true);
    const [hdr, piece] = await s.nextN(2);
    assert.ok(POOL.includes(setHeaders(hdr!)[0]![1]));
    assert.deepEqual([...streamedBody(piece!).bytes], [...body]);
    s.end();
    await s.ended;

    const bad = envoy.open();
    bad.requestHeaders({ ':path': '/vllm.grpc.engine.VllmEngine/HealthCheck' });
    bad.requestBody(frame(new Uint8Array(0)), true);
    const r = await bad.next();
    assert.equal(r.response.case, 'immediateResponse');
    const ir = r.response.value as { status: { code: number }; body: Uint8Array };
    assert.equal(ir.status.code, 400);
    assert.equal(new TextDecoder().decode(ir.body), 'inference error: BadRequest - unsupported gRPC path: /vllm.grpc.engine.VllmEngine/HealthCheck');
  });
});

describe('vllmgrpc-parser', () => {
  const parser = new VllmGrpcParser('v');
  test('Generate: text or tokenized prompt, stream flag; Embed needs tokenized input', () => {
    const text = parser.parseRequest(generateRequest({ text: 'Hello world', stream: true }), GENERATE_PATH);
    assert.deepEqual([text.apiType, text.payload.prompt, text.stream], ['completions', 'Hello world', true]);
    const tok = parser.parseRequest(generateRequest({ tokenized: { text: 'Hi there', ids: [1, 300, 70000] } }), GENERATE_PATH);
    assert.deepEqual([tok.payload.prompt, tok.payload.prompt_token_ids, tok.stream], ['Hi there', [1, 300, 70000], false]);
    const embed = new BinaryWriter();
    embed.tag(2, 2).bytes(new BinaryWriter().tag(1, 2).string('embed me').finish());
    assert.equal(parser.parseRequest(frame(embed.finish()), EMBED_PATH).apiType, 'embeddings');
    for (const [body, path, re] of [
      [frame(new BinaryWriter().tag(1, 2).string('id').finish()), EMBED_PATH, /invalid embed request: must have tokenized input/],
      [frame(new BinaryWriter().tag(1, 2).string('id').finish()), GENERATE_PATH, /invalid generate request: must have text or tokenized input/],
      [frame(new Uint8Array([1, 2, 3]), true), GENERATE_PATH, /compressed gRPC frames are not supported/],
      [new Uint8Array([0, 0, 0, 0, 9, 1]), GENERATE_PATH, /frame declares 9 bytes, the body carries 1/],
      [frame(new Uint8Array([0x0a, 0x05, 0x61])), GENERATE_PATH, /cannot decode the message/],
    ] as const) {
      assert.throws(() => parser.parseRequest(body, path), (e: Error & { code?: string }) => e.code === 'BadRequest' && re.test(e.message));
    }
  });

  test('responses: usage from GenerateResponse frames split across chunks, and from EmbedResponse', () => {
    const chunk = (prompt: number, completion: number, cached: number, field: 2 | 3) => {
      const inner = new BinaryWriter();
      const [p, c, k] = field === 2 ? [2, 3, 4] : [3, 4, 5];
      inner.tag(p, 0).uint32(prompt).tag(c, 0).uint32(completion).tag(k, 0).uint32(cached);
      return frame(new BinaryWriter().tag(1, 2).string('req-1').tag(field, 2).bytes(inner.finish()).finish());
    };
    const req = parser.parseRequest(generateRequest({ text: 'x', stream: true }), GENERATE_PATH);
    const rp = parser.createResponseParser(true, req);
    const first = chunk(5, 1, 0, 2);
    assert.equal(rp.push(first.subarray(0, 4), false), undefined);
    assert.deepEqual(rp.push(first.subarray(4), false), { promptTokens: 5, completionTokens: 1, totalTokens: 6, cachedTokens: 0 });
    assert.deepEqual(rp.push(chunk(5, 9, 2, 3), true), { promptTokens: 5, completionTokens: 9, totalTokens: 14, cachedTokens: 2 });
    const embedReq = parser.parseRequest(frame(new BinaryWriter().tag(2, 2).bytes(new BinaryWriter().tag(1, 2).string('e').finish()).finish()), EMBED_PATH);
    const ep = parser.createResponseParser(false, embedReq);
    const embedResp = frame(new BinaryWriter().tag(2, 2).bytes(new BinaryWriter().tag(2, 0).uint32(7).tag(3, 0).uint32(1024).finish()).finish());
    assert.deepEqual(ep.push(embedResp, true), { promptTokens: 7, completionTokens: 0, totalTokens: 7 });
  });
});

describe('destination-endpoint-served-verifier over ext_proc', () => {
  test('copies the served endpoint Envoy reports into x-conformance-test-served-endpoint, or says what is missing', async () => {
    const epp = await startTestEpp({
      configText: `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [enableLegacyMetrics]
plugins:
- type: random-picker
- type: destination-endpoint-served-verifier
`,
    });
    const envoy = new FakeEnvoy(epp.grpcPort);
    try {
      for (const [metadata, want] of [
        [{ 'envoy.lb': { 'x-gateway-destination-endpoint-served': '127.0.0.12:8000' } }, '127.0.0.12:8000'],
        [{ 'envoy.lb': {} }, 'fail: missing destination endpoint served metadata'],
        [undefined, 'fail: missing envoy lb metadata'],
      ] as const) {
        const s = envoy.open();
        s.requestHeaders({ ':path': '/v1/completions' });
        s.requestBody(JSON.stringify({ model: 'm1', prompt: 'hi' }), true);
        await s.nextN(2);
        s.responseHeaders({ ':status': '200', 'content-type': 'application/json' }, metadata as Record<string, Record<string, string>> | undefined);
        const rh = await s.next();
        assert.deepEqual(setHeaders(rh).find(([k]) => k === 'x-conformance-test-served-endpoint'), ['x-conformance-test-served-endpoint', want]);
        s.end();
        await s.ended;
      }
    } finally {
      envoy.close();
      await epp.close();
    }
  });
});

describe('notification sources', () => {
  test('endpoint-notification-source → inflight-load-producer: a deleted endpoint loses its counters at once', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'epp-notify-')), 'endpoints.yaml');
    writeFileSync(file, 'endpoints:\n- {address: 10.0.0.1, port: 8000, name: a}\n- {address: 10.0.0.2, port: 8000, name: b}\n');
    const source = new EndpointNotificationSource('endpoint-notification-source');
    const load = new InFlightLoadProducer('load', new InFlightTracker(), { now: () => 0 });
    const layer = await startDataLayer({ endpointsFile: file, sources: [{ source, extractors: [load] }], logger: silentLogger(), clock: { now: () => 0 } });
    try {
      const request = makeRequest();
      load.preRequest(request, makeSchedulingResult({ default: [makeCandidate(makeEndpoint('b'))] }), new AbortController().signal);
      assert.equal(load.loadOf('b').requests, 1);
      const removed = new Promise<void>((resolve) => {
        const off = layer.onEndpointsChanged((changes) => {
          if (changes.some((c) => c.kind === 'removed')) {
            off();
            resolve();
          }
        });
      });
      writeFileSync(file, 'endpoints:\n- {address: 10.0.0.1, port: 8000, name: a}\n');
      await within(removed, 'endpoint b removed');
      assert.equal(load.loadOf('b').requests, 0, 'counters dropped with the endpoint');
      // The request charged before the deletion ends later: it must not drive a re-added b negative.
      load.preRequest(makeRequest(), makeSchedulingResult({ default: [makeCandidate(makeEndpoint('b'))] }), new AbortController().signal);
      load.onResponseComplete({ request } as never, { kind: 'success', usage: undefined });
      assert.equal(load.loadOf('b').requests, 1);
    } finally {
      await layer.close();
    }
  });

  test('k8s-notification-source delivers the objects of its kind; a second source for the same kind is refused', async () => {
    const CONFIGMAPS: ResourceType = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap' };
    const api = new FakeKubeApiServer([PODS, INFERENCE_POOLS, CONFIGMAPS]);
    await api.start();
    api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'pool', namespace: 'ns', selector: { app: 'm' }, ports: [8000] }));
    api.apply(CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'first', namespace: 'ns' }, data: { a: '1' } });
    const events: KubernetesObjectEvent[] = [];
    let waiter: (() => void) | undefined;
    const extractor: NotificationExtractor<KubernetesObjectEvent> & Plugin = {
      typedName: { type: 'recording-extractor', name: 'rec' },
      inputType: 'k8s-object-events',
      notify(e) {
        events.push(e);
        waiter?.();
      },
    };
    const until = (n: number) =>
      within(
        new Promise<void>((resolve) => {
          const check = () => events.length >= n && resolve();
          waiter = check;
          check();
        }),
        `${n} events`,
      );
    const source = new K8sNotificationSource('cm', { group: '', version: 'v1', kind: 'ConfigMap' });
    const layer = await startDataLayer({
      kubernetes: { poolName: 'pool', poolNamespace: 'ns', kubeconfig: api.writeKubeconfig(), initialBackoffMs: 10, maxBackoffMs: 50 },
      sources: [{ source, extractors: [extractor] }],
      logger: silentLogger(),
      clock: { now: () => 0 },
    });
    try {
      await until(1);
      api.apply(CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'second', namespace: 'ns' } });
      api.delete(CONFIGMAPS, 'ns', 'first');
      await until(3);
      assert.deepEqual(
        events.map((e) => [e.type, e.gvk, (e.object.metadata as { name: string }).name]),
        [
          ['added', 'v1/ConfigMap', 'first'],
          ['added', 'v1/ConfigMap', 'second'],
          ['deleted', 'v1/ConfigMap', 'first'],
        ],
      );
    } finally {
      await layer.close();
      await api.stop();
    }
    const twin = new K8sNotificationSource('cm2', { group: '', version: 'v1', kind: 'ConfigMap' });
    assert.throws(
      () => bindNotificationSources([{ source, extractors: [] }, { source: twin, extractors: [] }]),
      /'cm\/k8s-notification-source' and 'cm2\/k8s-notification-source' both deliver v1\/ConfigMap|both deliver v1\/ConfigMap/,
    );
  });
});
