/**
 * `--metrics-endpoint-auth`: /metrics needs a bearer token — reviewed by the Kubernetes API (TokenReview, then a
 * SubjectAccessReview for `get /metrics`, as upstream) or compared with a static token file. Probes stay open.
 * The gateway's admin server binds where the gateway does (loopback by default).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.ts';
import { startTestEpp } from '../support/epp.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { EppConfigError } from '../../src/framework/errors.ts';

async function get(port: number, path: string, token?: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: r.status, text: await r.text() };
}

describe('Kubernetes TokenReview + SubjectAccessReview', () => {
  let kube: FakeKubeApiServer;
  let epp: RunningEpp;
  before(async () => {
    kube = new FakeKubeApiServer();
    await kube.start();
    kube.tokens.set('prometheus-token', { username: 'system:serviceaccount:monitoring:prometheus', groups: ['system:serviceaccounts'] });
    kube.tokens.set('nosy-token', { username: 'system:serviceaccount:default:nosy' });
    kube.grants.add('system:serviceaccount:monitoring:prometheus GET /metrics');
    epp = await startTestEpp({ metricsPort: 0, metricsAuth: { kubeconfig: kube.writeKubeconfig(), cacheTtlMs: 60_000 } });
  });
  after(async () => {
    await epp.close();
    await kube.stop();
  });

  test('no token → 401; unknown token → 401; authenticated but not allowed → 403; allowed → 200', async () => {
    const port = epp.metricsPort as number;
    assert.equal((await get(port, '/metrics')).status, 401);
    assert.equal((await get(port, '/metrics', 'forged')).status, 401);
    const nosy = await get(port, '/metrics', 'nosy-token');
    assert.equal(nosy.status, 403);
    assert.match(nosy.text, /nosy/);
    const ok = await get(port, '/metrics', 'prometheus-token');
    assert.equal(ok.status, 200);
    assert.match(ok.text, /inference_objective_request_total|epp_metrics_auth_failures_total/);
    assert.match(ok.text, /epp_metrics_auth_failures_total\{reason="forbidden"\} 1/);
  });

  test('probes stay open; decisions are cached (one review pair per token)', async () => {
    const port = epp.metricsPort as number;
    assert.equal((await get(port, '/healthz')).status, 200);
    assert.equal((await get(port, '/readyz')).status, 200);
    const before = kube.requests.length;
    for (let i = 0; i < 10; i++) assert.equal((await get(port, '/metrics', 'prometheus-token')).status, 200);
    assert.equal(kube.requests.length, before);
  });

  test('API server unreachable → 503, not a crash', async () => {
    kube.failWith = 500;
    try {
      const r = await get(epp.metricsPort as number, '/metrics', 'fresh-token');
      assert.equal(r.status, 503);
    } finally {
      kube.failWith = undefined;
    }
  });
});

describe('static token file', () => {
  test('the token in the file is accepted, anything else refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-token-'));
    const file = join(dir, 'token');
    writeFileSync(file, 's3cret-token\n');
    const epp = await startTestEpp({ metricsPort: 0, metricsAuth: { tokenFile: file } });
    try {
      const port = epp.metricsPort as number;
      assert.equal((await get(port, '/metrics')).status, 401);
      assert.equal((await get(port, '/metrics', 's3cret-tokeX')).status, 401);
      assert.equal((await get(port, '/metrics', 's3cret-token')).status, 200);
    } finally {
      await epp.close();
    }
  });

  test('an empty or missing token file is a startup error naming the flag', async () => {
    await assert.rejects(startTestEpp({ metricsPort: 0, metricsAuth: { tokenFile: '/nonexistent/token' } }), (e: unknown) => e instanceof EppConfigError && /--metrics-auth-token-file/.test(e.message));
  });
});
