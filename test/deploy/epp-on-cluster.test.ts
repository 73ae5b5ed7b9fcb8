/**
 * The EPP as each overlay deploys it, against a fake Kubernetes API server: `node bin/epp.js` with the rendered
 * container's args (only ports, the config path and a kubeconfig swapped for the test), the API server seeded
 * with the overlay's InferencePool (or the label selector's pods) and a real simulated model server. It must
 * become ready and route a request to the Ready pod; the API requests it made must be exactly what the
 * overlay's Role grants (every rule used, no request outside the rules).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { FakeKubeApiServer, INFERENCE_POOLS, PODS, makePod, type KubeObject as FakeObject, type RecordedRequest, type ResourceType } from '../support/fake-kube-apiserver.ts';
import { FakeEnvoy, setHeaders } from '../support/fake-envoy.ts';
import { waitUntil, within } from '../support/wait.ts';
import { freePort } from '../../scripts/free-port.js';
import { startFleet, type Fleet } from '../../src/sim/index.ts';
import { REPO, eppArgv, find, needsKubectl, podSpec, render, type KubeObject } from './kustomize.ts';

const NAMESPACE = 'llm';
const OBJECTIVES: ResourceType = { group: 'inference.networking.x-k8s.io', version: 'v1alpha2', plural: 'inferenceobjectives', kind: 'InferenceObjective' };
const REWRITES: ResourceType = { group: 'inference.networking.x-k8s.io', version: 'v1alpha2', plural: 'inferencemodelrewrites', kind: 'InferenceModelRewrite' };
const CHAT = JSON.stringify({ model: 'meta-llama/Llama-3.1-8B-Instruct', max_tokens: 4, messages: [{ role: 'user', content: 'Hello!' }] });

/** `group/resource/verb` for every request the EPP made (list = GET on a collection, watch = GET ?watch). */
function permissionsUsed(requests: readonly RecordedRequest[]): Set<string> {
  const out = new Set<string>();
  for (const r of requests) {
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(\/[^/]+)?$/.exec(r.path);
    assert.ok(m, `request outside a namespace (needs a ClusterRole): ${r.method} ${r.path}`);
    assert.equal(m[2], NAMESPACE, `request in another namespace: ${r.path}`);
    const verb = r.method !== 'GET' ? r.method.toLowerCase() : r.watch ? 'watch' : m[4] ? 'get' : 'list';
    out.add(`${m[1] ?? ''}/${m[3]}/${verb}`);
  }
  return out;
}

function permissionsGranted(role: KubeObject): Set<string> {
  const out = new Set<string>();
  for (const rule of role.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>) {
    for (const g of rule.apiGroups) for (const res of rule.resources) for (const v of rule.verbs) out.add(`${g}/${res}/${v}`);
  }
  return out;
}

/** Replaces `--flag=...` in argv (all manifests use the `=` form), or appends it. */
function setFlag(argv: string[], flag: string, value: string | number): void {
  const i = argv.findIndex((a) => a.startsWith(`--${flag}=`));
  if (i === -1) argv.push(`--${flag}=${value}`);
  else argv[i] = `--${flag}=${value}`;
}
const flagValue = (argv: readonly string[], flag: string): string | undefined => argv.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3);

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startEppProcess(argv: string[]): Started {
  const child = spawn(process.execPath, [join(REPO, 'bin/epp.js'), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EPP_LOG_LEVEL: 'warn' } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function readyz(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

async function runOverlay(dir: string, fleet: Fleet): Promise<void> {
  const objects = render(dir);
  const deployment = find(objects, 'Deployment', 'endpoint-picker')[0] as KubeObject;
  const spec = podSpec(deployment);
  const container = spec.containers.find((c) => eppArgv(c, NAMESPACE) !== undefined);
  assert.ok(container, `${dir}: no EPP container`);
  const argv = eppArgv(container, NAMESPACE) as string[];
  if (dir === 'overlays/inferencepool') {
    const base = podSpec(find(render('base'), 'Deployment', 'endpoint-picker')[0] as KubeObject).containers[0];
    assert.deepEqual(argv, eppArgv(base as typeof container, NAMESPACE), 'the inferencepool overlay runs the base\'s args unchanged');
  }
  const modelPort = fleet.servers[0]?.port as number;

  // The cluster: the overlay's pool (target port = the simulated server's), one Ready pod, one not Ready.
  const api = new FakeKubeApiServer([PODS, INFERENCE_POOLS, OBJECTIVES, REWRITES]);
  await api.start();
  let selector: Record<string, string>;
  const pool = find(objects, 'InferencePool')[0] as (KubeObject & { spec: { selector: { matchLabels: Record<string, string> }; targetPorts: Array<{ number: number }> } }) | undefined;
  if (flagValue(argv, 'pool-name') !== undefined) {
    assert.ok(pool, `${dir}: --pool-name is set but the overlay has no InferencePool`);
    assert.equal(pool.metadata.name, flagValue(argv, 'pool-name'), `${dir}: --pool-name names the overlay's InferencePool`);
    selector = pool.spec.selector.matchLabels;
    api.apply(INFERENCE_POOLS, { ...(pool as unknown as FakeObject), metadata: { ...pool.metadata, namespace: NAMESPACE }, spec: { ...pool.spec, targetPorts: [{ number: modelPort }] } });
  } else {
    selector = Object.fromEntries((flagValue(argv, 'endpoint-selector') as string).split(',').map((kv) => kv.split('=') as [string, string]));
    setFlag(argv, 'endpoint-target-ports', modelPort);
  }
  api.apply(PODS, makePod({ name: 'model-a', namespace: NAMESPACE, ip: '127.0.0.1', labels: selector }));
  api.apply(PODS, makePod({ name: 'model-b', namespace: NAMESPACE, ip: '127.0.0.2', labels: selector, ready: false }));

  // Only what cannot be the cluster's: free ports, the config file's path, the kubeconfig.
  const dirTmp = mkdtempSync(join(tmpdir(), 'epp-overlay-'));
  const configFile = flagValue(argv, 'config-file') as string;
  const cm = find(objects, 'ConfigMap').find((c) => (c as KubeObject & { data?: Record<string, string> }).data?.[configFile.split('/').pop() as string]) as KubeObject & { data: Record<string, string> };
  writeFileSync(join(dirTmp, 'epp-config.yaml'), cm.data[configFile.split('/').pop() as string] as string);
  setFlag(argv, 'config-file', join(dirTmp, 'epp-config.yaml'));
  const [grpc, health, metrics] = [await freePort(), await freePort(), await freePort()];
  setFlag(argv, 'grpc-port', grpc);
  setFlag(argv, 'grpc-health-port', health);
  setFlag(argv, 'metrics-port', metrics);
  const gatewayPort = flagValue(argv, 'gateway-port') !== undefined ? await freePort() : undefined;
  if (gatewayPort !== undefined) setFlag(argv, 'gateway-port', gatewayPort);
  setFlag(argv, 'kubeconfig', api.writeKubeconfig(dirTmp));

  const epp = startEppProcess(argv);
  try {
    const early = epp.exited.then((code) => assert.fail(`${dir}: the EPP exited (${code}) before it was ready:\n${epp.output()}`));
    let ready = false;
    const poll = (async () => {
      // Bounded: TLS key generation (--secure-serving) takes a few seconds on a busy machine.
      const deadline = Date.now() + 60_000;
      while (!(ready = await readyz(metrics)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    })();
    await Promise.race([poll, early]);
    assert.ok(ready, `${dir}: not ready within 60 s:\n${epp.output()}`);

    if (gatewayPort !== undefined) {
      const res = await fetch(`http://127.0.0.1:${gatewayPort}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: CHAT });
      const body = await res.text();
      assert.equal(res.status, 200, `${dir}: gateway answered ${res.status}: ${body}`);
      assert.ok((JSON.parse(body) as { choices: unknown[] }).choices.length > 0, `${dir}: a completion came back`);
    } else {
      const envoy = new FakeEnvoy(grpc, flagValue(argv, 'secure-serving') === 'false' ? credentials.createInsecure() : credentials.createSsl(null, null, null, { rejectUnauthorized: false }));
      try {
        const s = envoy.open();
        s.requestHeaders({ ':path': '/v1/chat/completions', ':method': 'POST', 'content-type': 'application/json' });
        s.requestBody(CHAT, true);
        const hdr = await within(s.next(), `${dir}: ext_proc reply`, 10_000);
        const dest = new Map(setHeaders(hdr)).get('x-gateway-destination-endpoint');
        assert.equal(dest, `127.0.0.1:${modelPort}`, `${dir}: routed to the Ready pod's target port`);
        s.cancel();
      } finally {
        envoy.close();
      }
    }

    // RBAC: every granted rule is used and nothing else is requested.
    const granted = permissionsGranted(find(objects, 'Role', 'endpoint-picker')[0] as KubeObject);
    await waitUntil(() => [...granted].every((p) => permissionsUsed(api.requests).has(p)), `${dir}: the EPP to use every rule of its Role (granted ${[...granted].join(', ')}; used ${[...permissionsUsed(api.requests)].join(', ')})`, 10_000);
    assert.deepEqual([...permissionsUsed(api.requests)].sort(), [...granted].sort(), `${dir}: API requests vs the Role`);
    // The Role is bound to the Deployment's ServiceAccount.
    const binding = find(objects, 'RoleBinding', 'endpoint-picker')[0] as KubeObject & { subjects: Array<{ kind: string; name: string }>; roleRef: { name: string } };
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: spec.serviceAccountName }]);
    assert.equal(binding.roleRef.name, 'endpoint-picker');
  } finally {
    epp.child.kill('SIGTERM');
    const code = await within(epp.exited, `${dir}: exit after SIGTERM`, 35_000);
    await api.stop();
    assert.equal(code, 0, `${dir}: SIGTERM → exit 0:\n${epp.output()}`);
  }
}

test('each overlay\'s EPP, with its own args, becomes ready on a (fake) cluster, routes, and uses exactly its RBAC', { skip: needsKubectl, timeout: 120_000 }, async () => {
  const fleet = await startFleet({ servers: 1, basePort: 0 });
  try {
    await Promise.all(['overlays/inferencepool', 'overlays/standalone', 'overlays/embedded-gateway'].map((dir) => runOverlay(dir, fleet)));
  } finally {
    await fleet.close();
  }
});
