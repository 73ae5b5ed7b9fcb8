/**
 * The embedded gateway end to end: the real `openai` client against `startEpp({gateway})` in front of
 * simulated vLLM servers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { DEFAULT_MODEL_NAME } from '../../src/sim/config.ts';
import { startGatewayRig, type GatewayRig } from '../support/gateway.ts';

/** vLLM's extension: generate exactly max_tokens (the simulator honours it). */
const IGNORE_EOS = { ignore_eos: true } as Record<string, unknown>;

describe('embedded gateway', () => {
  let rig: GatewayRig;
  let client: OpenAI;
  before(async () => {
    rig = await startGatewayRig({ servers: 2 });
    client = new OpenAI({ baseURL: rig.baseURL, apiKey: 'unused', maxRetries: 0 });
  });
  after(() => rig.close());

  test('streaming chat completion with usage', async () => {
    const stream = await client.chat.completions.create({
      model: DEFAULT_MODEL_NAME,
      messages: [{ role: 'user', content: 'Tell me a story about routers.' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 8,
      ...IGNORE_EOS,
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(text.length > 0);
    assert.equal(usage?.completion_tokens, 8);
    assert.ok((usage?.prompt_tokens ?? 0) > 0);
  });

  test('non-streaming chat and completions', async () => {
    const chat = await client.chat.completions.create({ model: DEFAULT_MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...IGNORE_EOS });
    assert.equal(chat.usage?.completion_tokens, 4);
    assert.equal(chat.model, DEFAULT_MODEL_NAME);
    const comp = await client.completions.create({ model: DEFAULT_MODEL_NAME, prompt: 'Once upon a time', max_tokens: 5, ...IGNORE_EOS });
    assert.equal(comp.usage?.completion_tokens, 5);
  });

  test('streaming completions', async () => {
    const stream = await client.completions.create({ model: DEFAULT_MODEL_NAME, prompt: 'count:', max_tokens: 6, stream: true });
    let n = 0;
    for await (const c of stream) if (c.choices[0]?.text) n++;
    assert.ok(n >= 1);
  });

  test('/v1/models is the union of the pool', async () => {
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === DEFAULT_MODEL_NAME));
  });

  test('unknown model → 404 in OpenAI error shape; malformed JSON → 400', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 404);
      assert.match(e.message, /no-such-model/);
      // As OpenAI and vLLM answer an unknown model.
      assert.equal(e.type, 'invalid_request_error');
      assert.equal(e.code, 'model_not_found');
      return true;
    });
    const bad = await fetch(`${rig.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: { message: string; type: string; code: unknown } };
    // Plain English, not upstream's Go wording ("error unmarshaling request bodyMap").
    assert.match(body.error.message, /^the request body is not valid JSON: /);
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.code, null);
  });

  test('requests spread over the pool (both servers serve)', async () => {
    const pods = new Set<string>();
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const r = await client.chat.completions
          .create({ model: DEFAULT_MODEL_NAME, messages: [{ role: 'user', content: `distinct prompt number ${i} ${'x'.repeat(i * 40)}` }], max_tokens: 30 })
          .withResponse();
        pods.add(r.response.headers.get('x-inference-pod') ?? '');
      }),
    );
    assert.equal(pods.size, 2, [...pods].join(','));
  });

  test('client abort is propagated upstream and completion sees it', async () => {
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: DEFAULT_MODEL_NAME, messages: [{ role: 'user', content: 'long' }], stream: true, max_tokens: 2000, ...IGNORE_EOS },
      { signal: ac.signal },
    );
    let chunks = 0;
    try {
      for await (const _ of stream) {
        if (++chunks === 3) {
          ac.abort();
          break; // chunks the SDK had already read must not be counted
        }
      }
    } catch {
      // the SDK may end the iteration with an abort error or quietly
    }
    assert.equal(chunks, 3);
    const { waitUntil, within } = await import('../support/wait.ts');
    await within(Promise.all([rig.epp.director.whenIdle(), rig.epp.gateway?.whenIdle()]), 'the aborted request to complete');
    assert.equal(rig.epp.director.liveResponseStreams, 0);
    assert.equal(rig.epp.gateway?.activeRequests, 0);
    const running = rig.fleet.servers.reduce((n, s) => n + s.state().running, 0);
    await waitUntil(() => rig.fleet.servers.reduce((n, s) => n + s.state().running, 0) === 0, `upstream to drop the aborted request (running ${running})`);
    const outcomes = await rig.epp.metrics.completionOutcomes.get();
    assert.ok(outcomes.values.some((v) => v.labels.outcome === 'aborted' && v.value >= 1));
  });
});

describe('embedded gateway failover', () => {
  const CONFIG = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
  parameters: {maxNumOfEndpoints: 2}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
`;

  test('a killed server: refused connections retry once on the fallback, then it is out of rotation', async () => {
    const rig = await startGatewayRig({ servers: 2, configText: CONFIG });
    try {
      const client = new OpenAI({ baseURL: rig.baseURL, apiKey: 'unused', maxRetries: 0 });
      const dead = rig.fleet.servers[0]!;
      await dead.close();
      const pods: string[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await client.chat.completions
          .create({ model: DEFAULT_MODEL_NAME, messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 2 })
          .withResponse();
        pods.push(r.response.headers.get('x-inference-pod') ?? '');
      }
      assert.deepEqual(new Set(pods), new Set([rig.fleet.servers[1]!.name]));
    } finally {
      await rig.close();
    }
  });

  test('an oversized request body gets 413 in OpenAI error shape', async () => {
    const rig = await startGatewayRig({ servers: 1, maxRequestBodyBytes: 1024 });
    try {
      const r = await fetch(`${rig.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: DEFAULT_MODEL_NAME, messages: [{ role: 'user', content: 'x'.repeat(4096) }] }),
      });
      assert.equal(r.status, 413);
      const body = (await r.json()) as { error: { type: string; code: string } };
      assert.deepEqual([body.error.type, body.error.code], ['invalid_request_error', 'request_too_large']);
    } finally {
      await rig.close();
    }
  });
});

describe('embedded gateway with model rewrites', () => {
  test('an alias defined by an InferenceModelRewrite is served (not 404) and the client sees its own model name', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'epp-gw-')), 'resources.yaml');
    writeFileSync(
      file,
      `apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: {name: alias}
spec:
  poolRef: {name: any}
  rules:
  - matches: [{model: {value: my-alias}}]
    targets: [{modelRewrite: ${DEFAULT_MODEL_NAME}}]
`,
    );
    const rig = await startGatewayRig({ servers: 1, resourcesFile: file });
    try {
      const client = new OpenAI({ baseURL: rig.baseURL, apiKey: 'unused', maxRetries: 0 });
      const chat = await client.chat.completions.create({ model: 'my-alias', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
      assert.equal(chat.model, 'my-alias');
      await assert.rejects(client.chat.completions.create({ model: 'not-an-alias', messages: [{ role: 'user', content: 'hi' }] }), /does not exist/);
    } finally {
      await rig.close();
    }
  });
});
