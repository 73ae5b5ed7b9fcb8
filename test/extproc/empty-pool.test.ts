/**
 * Empty pools are pools (epp-spec §5.1, §6.5, §7.2): `--endpoints=` (explicitly empty), an endpoints file with no
 * entries, an InferencePool with no ready pod. The EPP starts and reports ready (upstream: live = pool known), each
 * request gets upstream's answer for an empty pool, and endpoints that appear later are routed to without a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { discoveryFromFlags } from '../../src/cli/main.ts';
import { parseEndpointsFile } from '../../src/datalayer/index.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEpp } from '../../src/server/bootstrap.ts';
import type { DiscoveryOptions, RunningEpp } from '../../src/server/bootstrap-options.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { FakeEnvoy, setHeaders, type EnvoyStream } from '../support/fake-envoy.ts';
import { FakeKubeApiServer, INFERENCE_POOLS, makeInferencePool, makePod, PODS } from '../support/fake-kube-apiserver.ts';
import { within } from '../support/wait.ts';

const dec = new TextDecoder();
const CHAT = JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hi' }] });
const OBJECTIVES = `apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec: {priority: -1, poolRef: {name: pool}}
`;
const CONFIG = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [enableLegacyMetrics]
plugins:
- type: random-picker
`;

function tmp(name: string, content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'epp-empty-pool-')), name);
  writeFileSync(file, content);
  return file;
}

async function start(discovery: DiscoveryOptions, resources: boolean): Promise<RunningEpp> {
  return startEpp({
    grpcPort: 0,
    grpcHealthPort: -1,
    metricsPort: 0,
    host: '127.0.0.1',
    secureServing: false,
    discovery: { ...discovery, refreshIntervalMs: 60_000 },
    logger: silentLogger(),
    random: createRandomSource(7),
    shutdownGraceMs: 500,
    config: { text: CONFIG, origin: 'test' },
    ...(resources ? { admission: { resourcesFile: tmp('resources.yaml', OBJECTIVES) } } : {}),
  });
}

async function readyz(epp: RunningEpp): Promise<number> {
  return (await fetch(`http://127.0.0.1:${epp.metricsPort}/readyz`)).status;
}

/** Sends one request; resolves to the HTTP status the client gets (200 = routed) and the body / destination. */
async function ask(envoy: FakeEnvoy, kind: 'bad-json' | 'valid' | 'sheddable' | 'body-less'): Promise<{ status: number; text: string }> {
  const s: EnvoyStream = envoy.open();
  const headers: Record<string, string> = { ':path': '/v1/chat/completions', ...(kind === 'sheddable' ? { 'x-gateway-inference-objective': 'batch' } : {}) };
  s.requestHeaders(headers, kind === 'body-less');
  if (kind !== 'body-less') s.requestBody(kind === 'bad-json' ? '{"model":' : CHAT, true);
  const r = await within(s.next(), `reply to ${kind}`);
  let out: { status: number; text: string };
  if (r.response.case === 'immediateResponse') {
    out = { status: r.response.value.status?.code ?? 0, text: dec.decode(r.response.value.body) };
  } else {
    out = { status: 200, text: setHeaders(r)[0]?.[1] ?? '' };
  }
  s.cancel();
  const end = await s.ended;
  assert.ok(end.code === status.OK || end.code === status.CANCELLED, end.details);
  return out;
}

/** Resolves once the pool is no longer empty (on the data layer's change event). */
function endpointsAppear(epp: RunningEpp): Promise<void> {
  return new Promise<void>((resolve) => {
    const off = epp.dataLayer!.onEndpointsChanged(() => {
      if (epp.store.endpoints().length > 0) {
        off();
        resolve();
      }
    });
  });
}

async function assertEmptyPoolAnswers(epp: RunningEpp, envoy: FakeEnvoy, sheddable: boolean): Promise<void> {
  assert.equal(await readyz(epp), 200, 'an empty pool is a known pool: ready');
  const bad = await ask(envoy, 'bad-json');
  assert.equal(bad.status, 400);
  assert.match(bad.text, /^inference error: BadRequest - error unmarshaling request bodyMap: /);
  if (sheddable) {
    assert.deepEqual(await ask(envoy, 'sheddable'), { status: 429, text: 'inference error: ResourceExhausted - system saturated, sheddable request dropped' });
  }
  assert.deepEqual(await ask(envoy, 'valid'), { status: 503, text: 'inference error: ServiceUnavailable - failed to find endpoint candidates for serving the request' });
  assert.deepEqual(await ask(envoy, 'body-less'), { status: 500, text: 'inference error: Internal - no pods available in datastore' });
}

describe('empty pools', { timeout: 30_000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  test('--endpoints= is an empty static pool, not a missing discovery flag', async () => {
    const d = discoveryFromFlags({ endpoints: '', refreshMetricsInterval: 50 });
    assert.deepEqual(d.endpoints, ['']);
    const epp = await start(d, true);
    const envoy = new FakeEnvoy(epp.grpcPort);
    cleanup.push(() => epp.close(), () => envoy.close());
    await assertEmptyPoolAnswers(epp, envoy, true);
  });

  test('an endpoints file with no entries: empty pool; an endpoint added to the file is routed to without a restart', async () => {
    for (const content of ['', '# nothing yet\n', 'endpoints:\n', 'endpoints: []\n']) assert.deepEqual(parseEndpointsFile(content, 'default'), [], JSON.stringify(content));
    const file = tmp('endpoints.yaml', 'endpoints:\n');
    const epp = await start({ endpointsFile: file }, true);
    const envoy = new FakeEnvoy(epp.grpcPort);
    cleanup.push(() => epp.close(), () => envoy.close());
    await assertEmptyPoolAnswers(epp, envoy, true);
    const appeared = endpointsAppear(epp);
    writeFileSync(file, 'endpoints:\n- {address: 127.0.0.21, port: 8000}\n');
    await within(appeared, 'the endpoint from the edited file');
    assert.deepEqual(await ask(envoy, 'valid'), { status: 200, text: '127.0.0.21:8000' });
  });

  test('an InferencePool with no ready pod: empty pool; a pod that becomes ready is routed to without a restart', async () => {
    const api = new FakeKubeApiServer();
    await api.start();
    cleanup.push(() => api.stop());
    api.apply(INFERENCE_POOLS, makeInferencePool({ name: 'pool', namespace: 'ns', selector: { app: 'm' }, ports: [8000] }));
    api.apply(PODS, makePod({ name: 'p1', namespace: 'ns', ip: '10.9.0.1', labels: { app: 'm' }, ready: false }));
    const epp = await start({ kubernetes: { poolName: 'pool', poolNamespace: 'ns', kubeconfig: api.writeKubeconfig(), initialBackoffMs: 10, maxBackoffMs: 50 } }, false);
    const envoy = new FakeEnvoy(epp.grpcPort);
    cleanup.push(() => epp.close(), () => envoy.close());
    await within(epp.dataLayer!.whenReady(), 'pool known');
    await assertEmptyPoolAnswers(epp, envoy, false);
    const appeared = endpointsAppear(epp);
    api.update(PODS, 'ns', 'p1', (p) => {
      (p.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: 'True' }];
    });
    await within(appeared, 'the pod turning ready');
    assert.deepEqual(await ask(envoy, 'valid'), { status: 200, text: '10.9.0.1:8000' });
  });
});
