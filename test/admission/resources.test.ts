/**
 * InferenceObjective / InferenceModelRewrite: manifest validation, rule selection (exact over generic, oldest
 * first, file order when no timestamp), weighted targets, the --resources-file watcher (bad edits rejected,
 * last good set kept), the Kubernetes CRD watch against the fake API server, and rewrites end to end through
 * ext_proc (header precedence, body re-serialised, original name restored in JSON and SSE responses).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parseResourcesFile, type ResourceSet } from '../../src/datalayer/resources/index.ts';
import { KubernetesResourceWatch } from '../../src/datalayer/resources/kubernetes.ts';
import { ResourcesFileWatcher } from '../../src/datalayer/resources/file.ts';
import { RecordingLogger } from '../support/plugin-fixtures.ts';
import { InferenceResources } from '../../src/runtime/objectives.ts';
import { weightedPick } from '../../src/runtime/rewrites.ts';
import { Xoshiro128StarStar } from '../../src/util/random.ts';
import { FakeKubeApiServer, type ResourceType } from '../support/fake-kube-apiserver.ts';
import { FakeEnvoy, streamedBody } from '../support/fake-envoy.ts';
import { waitUntil } from '../support/wait.ts';
import { replaceAtomically } from '../support/files.ts';
import { config, resourcesFile, startRig } from './helpers.ts';

const V = 'apiVersion: inference.networking.x-k8s.io/v1alpha2';

function rewrite(name: string, rules: string, ts?: string): string {
  return `${V}\nkind: InferenceModelRewrite\nmetadata: {name: ${name}${ts ? `, creationTimestamp: "${ts}"` : ''}}\nspec:\n  poolRef: {name: pool-a}\n  rules:\n${rules}`;
}
const rule = (models: string[], targets: Array<[string, number?]>) =>
  `  - ${models.length ? `matches: [${models.map((m) => `{model: {value: ${m}}}`).join(', ')}]\n    ` : ''}targets: [${targets.map(([t, w]) => `{modelRewrite: ${t}${w !== undefined ? `, weight: ${w}` : ''}}`).join(', ')}]\n`;

function store(set: ResourceSet): InferenceResources {
  const r = new InferenceResources();
  r.apply('test', set);
  return r;
}

describe('manifests and rule selection', () => {
  const rnd = new Xoshiro128StarStar(3);

  test('exact beats generic; oldest object (creationTimestamp) first; file order when absent', () => {
    const text = [
      rewrite('newer-exact', rule(['llama'], [['llama-v3']]), '2026-02-01T00:00:00Z'),
      rewrite('older-exact', rule(['llama'], [['llama-v2']]), '2026-01-01T00:00:00Z'),
      rewrite('generic', rule([], [['default-model']]), '2025-01-01T00:00:00Z'),
      rewrite('no-ts-1', rule(['qwen'], [['qwen-a']])),
      rewrite('no-ts-2', rule(['qwen'], [['qwen-b']])),
    ].join('---\n');
    const r = store(parseResourcesFile(text));
    assert.equal(r.rewrites.rewrite('llama', rnd), 'llama-v2');
    assert.equal(r.rewrites.rewrite('mistral', rnd), 'default-model', 'generic when no exact rule');
    assert.equal(r.rewrites.rewrite('qwen', rnd), 'qwen-a', 'file order stands in for a missing timestamp');
  });

  test('within one object the first rule listing the model wins', () => {
    const r = store(parseResourcesFile(rewrite('one', rule(['a'], [['x']]) + rule(['a', 'b'], [['y']]))));
    assert.equal(r.rewrites.rewrite('a', rnd), 'x');
    assert.equal(r.rewrites.rewrite('b', rnd), 'y');
    assert.equal(r.rewrites.rewrite('c', rnd), undefined);
  });

  test('weighted pick: proportional to weights; all weights 0 → uniform', () => {
    const random = new Xoshiro128StarStar(11);
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 10_000; i++) counts[weightedPick([{ model: 'a', weight: 90 }, { model: 'b', weight: 10 }], random) as 'a' | 'b']++;
    assert.ok(Math.abs(counts.b / 10_000 - 0.1) < 0.015, JSON.stringify(counts));
    const u = { a: 0, b: 0 };
    for (let i = 0; i < 10_000; i++) u[weightedPick([{ model: 'a', weight: 0 }, { model: 'b', weight: 0 }], random) as 'a' | 'b']++;
    assert.ok(Math.abs(u.a / 10_000 - 0.5) < 0.02, JSON.stringify(u));
    assert.equal(weightedPick([], random), undefined);
  });

  test('objectives: name → priority; unset priority → undefined (0 at the director)', () => {
    const r = store(parseResourcesFile(`${V}\nkind: InferenceObjective\nmetadata: {name: batch}\nspec: {priority: -5, poolRef: {name: p}}\n---\n${V}\nkind: InferenceObjective\nmetadata: {name: plain}\nspec: {poolRef: {name: p}}\n`));
    assert.equal(r.objectives.priority('batch'), -5);
    assert.equal(r.objectives.priority('plain'), undefined);
    assert.equal(r.objectives.priority('unknown'), undefined);
  });

  test('standalone applies every object; with a pool name only those naming it (and a rewrite without poolRef is ignored)', () => {
    const text = `${V}\nkind: InferenceObjective\nmetadata: {name: mine}\nspec: {priority: 1, poolRef: {name: pool-a}}\n---\n${V}\nkind: InferenceObjective\nmetadata: {name: theirs}\nspec: {priority: 2, poolRef: {name: pool-b}}\n---\n${V}\nkind: InferenceModelRewrite\nmetadata: {name: nopool}\nspec: {rules: []}\n`;
    assert.deepEqual(parseResourcesFile(text).objectives.map((o) => o.name), ['mine', 'theirs']);
    assert.deepEqual(parseResourcesFile(text, { poolName: 'pool-a' }).objectives.map((o) => o.name), ['mine']);
    assert.equal(parseResourcesFile(text).rewrites.length, 0);
  });

  const bad: ReadonlyArray<[string, string, RegExp]> = [
    ['unknown kind', `${V}\nkind: InferencePool\nmetadata: {name: x}\n`, /document 1: kind: expected InferenceObjective or InferenceModelRewrite/],
    ['unknown spec field', `${V}\nkind: InferenceObjective\nmetadata: {name: x}\nspec: {priorty: 1, poolRef: {name: p}}\n`, /document 1: InferenceObjective "x": spec: unknown field 'priorty'/],
    ['fractional priority', `${V}\nkind: InferenceObjective\nmetadata: {name: x}\nspec: {priority: 1.5, poolRef: {name: p}}\n`, /spec\.priority: must be an integer/],
    ['missing poolRef', `${V}\nkind: InferenceObjective\nmetadata: {name: x}\nspec: {priority: 1}\n`, /spec\.poolRef/],
    ['weight too large', rewrite('w', rule(['a'], [['b', 2_000_000]])), /targets\[0\]\.weight: must be at most 1000000/],
    ['duplicate name', `${V}\nkind: InferenceObjective\nmetadata: {name: x}\nspec: {poolRef: {name: p}}\n---\n${V}\nkind: InferenceObjective\nmetadata: {name: x}\nspec: {poolRef: {name: p}}\n`, /document 2: duplicate InferenceObjective 'x'/],
    ['bad yaml', 'kind: [', /document 1: not valid YAML/],
  ];
  for (const [name, text, re] of bad) test(`rejects: ${name}`, () => assert.throws(() => parseResourcesFile(text), re));
});

describe('--resources-file watcher', () => {
  test('applies edits; a bad edit is rejected with one log line and the last good set stays', async () => {
    const file = resourcesFile(`${V}\nkind: InferenceObjective\nmetadata: {name: batch}\nspec: {priority: -1, poolRef: {name: p}}\n`);
    const logger = new RecordingLogger();
    const sink = new InferenceResources();
    const w = new ResourcesFileWatcher({ path: file, sink, filter: {}, logger, statPollIntervalMs: 0, debounceMs: 10 });
    await w.start();
    // The directory watcher may reload on its own before or after an explicit reload(); whichever read sees
    // an edit first reports it, the other reports 'unchanged'. So count outcomes from both.
    const outcomes: string[] = [];
    w.onReload((r) => outcomes.push(r.outcome));
    try {
      assert.equal(sink.objectives.priority('batch'), -1);
      replaceAtomically(file, `${V}\nkind: InferenceObjective\nmetadata: {name: batch}\nspec: {priority: -2, poolRef: {name: p}}\n`);
      await w.reload();
      assert.deepEqual(outcomes.filter((o) => o !== 'unchanged'), ['applied']);
      assert.equal(sink.objectives.priority('batch'), -2);

      replaceAtomically(file, `${V}\nkind: InferenceObjective\nmetadata: {name: batch}\nspec: {priority: high, poolRef: {name: p}}\n`);
      await w.reload();
      assert.equal((await w.reload()).outcome, 'unchanged', 'the same bad content is not re-read as new');
      assert.deepEqual(outcomes.filter((o) => o !== 'unchanged'), ['applied', 'rejected']);
      assert.equal(sink.objectives.priority('batch'), -2, 'last good set kept');
      const errors = logger.messages('error');
      assert.equal(errors.length, 1, 'the rejection is logged once');
      assert.match(errors[0]!, /resources file rejected; keeping the last good.*document 1: InferenceObjective \\"batch\\": spec\.priority/);
    } finally {
      w.close();
    }
  });

  test('a bad file at startup is a startup error naming the file and field', async () => {
    const file = resourcesFile(`${V}\nkind: InferenceObjective\nmetadata: {name: x}\nspec: {poolRef: {}}\n`);
    const w = new ResourcesFileWatcher({ path: file, sink: new InferenceResources(), filter: {}, logger: new RecordingLogger(), statPollIntervalMs: 0 });
    await assert.rejects(w.start(), /--resources-file .*resources\.yaml: document 1: InferenceObjective "x": spec\.poolRef\.name: is required/);
  });
});

describe('Kubernetes CRD watch (fake API server)', { timeout: 20_000 }, () => {
  const OBJECTIVES: ResourceType = { group: 'inference.networking.x-k8s.io', version: 'v1alpha2', plural: 'inferenceobjectives', kind: 'InferenceObjective' };
  const REWRITES: ResourceType = { group: 'inference.networking.x-k8s.io', version: 'v1alpha2', plural: 'inferencemodelrewrites', kind: 'InferenceModelRewrite' };
  const api = new FakeKubeApiServer([OBJECTIVES, REWRITES]);
  after(() => api.stop());

  test('objects of our pool in our namespace apply; updates and deletes follow', async () => {
    await api.start();
    const obj = (name: string, pool: string, priority: number, ns = 'prod') => ({
      apiVersion: 'inference.networking.x-k8s.io/v1alpha2',
      kind: 'InferenceObjective',
      metadata: { name, namespace: ns },
      spec: { priority, poolRef: { name: pool } },
    });
    api.apply(OBJECTIVES, obj('batch', 'pool-a', -1));
    api.apply(OBJECTIVES, obj('other-pool', 'pool-b', 5));
    api.apply(OBJECTIVES, obj('other-ns', 'pool-a', 5, 'dev'));
    api.apply(REWRITES, {
      apiVersion: 'inference.networking.x-k8s.io/v1alpha2',
      kind: 'InferenceModelRewrite',
      metadata: { name: 'canary', namespace: 'prod', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { poolRef: { name: 'pool-a' }, rules: [{ matches: [{ model: { value: 'llama' } }], targets: [{ modelRewrite: 'llama-v2' }] }] },
    });
    const sink = new InferenceResources();
    const w = new KubernetesResourceWatch({ namespace: 'prod', poolName: 'pool-a', kubeconfig: api.writeKubeconfig(), sink, logger: new RecordingLogger() });
    w.start();
    try {
      await waitUntil(() => sink.objectives.priority('batch') === -1 && sink.rewrites.rewrite('llama', new Xoshiro128StarStar(1)) === 'llama-v2', 'initial list applied');
      assert.deepEqual(sink.objectives.names(), ['batch']);
      api.update(OBJECTIVES, 'prod', 'batch', (o) => ((o.spec as { priority: number }).priority = -3));
      await waitUntil(() => sink.objectives.priority('batch') === -3, 'update applied');
      api.delete(REWRITES, 'prod', 'canary');
      await waitUntil(() => sink.rewrites.rewrite('llama', new Xoshiro128StarStar(1)) === undefined, 'delete applied');
    } finally {
      w.close();
    }
  });
});

describe('model rewrites end to end (ext_proc)', { timeout: 20_000 }, () => {
  const rigs: Awaited<ReturnType<typeof startRig>>[] = [];
  after(async () => {
    await Promise.all(rigs.map((r) => r.close()));
  });

  test('the rewrite overrides the header, the body is re-serialised with the target, responses get the incoming name back', async () => {
    const r = await startRig('ext_proc', { configText: config(), resources: rewrite('to-v2', rule(['m1'], [['m1-v2']])) });
    rigs.push(r);
    const envoy = new FakeEnvoy(r.epp.grpcPort);
    try {
      for (const streaming of [false, true]) {
        const s = envoy.open();
        s.requestHeaders({ ':path': '/v1/chat/completions', 'content-type': 'application/json', 'x-gateway-model-name-rewrite': 'from-header' });
        s.requestBody(JSON.stringify({ model: 'm1', stream: streaming, messages: [{ role: 'user', content: 'hi' }] }), true);
        const [, body] = await s.nextN(2);
        assert.equal((JSON.parse(streamedBody(body!).body) as { model: string }).model, 'm1-v2');
        s.responseHeaders({ ':status': '200', 'content-type': streaming ? 'text/event-stream' : 'application/json' });
        await s.next();
        const upstream = streaming ? 'data: {"model":"m1-v2","choices":[]}\n\n' : '{"id":"x","model": "m1-v2","choices":[]}';
        s.responseBody(upstream, true);
        const out = streamedBody(await s.next()).body;
        assert.equal(out, upstream.replace('m1-v2', 'm1'), streaming ? 'SSE' : 'JSON');
        s.end();
        await s.ended;
      }
      const text = await r.epp.metrics.registry.metrics();
      assert.match(text, /inference_extension_model_rewrite_decisions_total\{model_rewrite_name="to-v2",model_name="m1",target_model="m1-v2"\} 2/);
    } finally {
      envoy.close();
    }
  });

  test('without a matching rule the x-gateway-model-name-rewrite header applies', async () => {
    const r = await startRig('ext_proc', { configText: config(), resources: rewrite('other', rule(['zzz'], [['y']])) });
    rigs.push(r);
    const envoy = new FakeEnvoy(r.epp.grpcPort);
    try {
      const s = envoy.open();
      s.requestHeaders({ ':path': '/v1/chat/completions', 'x-gateway-model-name-rewrite': 'from-header' });
      s.requestBody(JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hi' }] }), true);
      const [, body] = await s.nextN(2);
      assert.equal((JSON.parse(streamedBody(body!).body) as { model: string }).model, 'from-header');
      s.cancel();
    } finally {
      envoy.close();
    }
  });
});
