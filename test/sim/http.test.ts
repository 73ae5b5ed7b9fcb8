// The HTTP surface end to end on 127.0.0.1 with ephemeral ports, including the real `openai` client.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startFleet } from '../../src/sim/fleet.ts';
import type { Fleet, FleetServer } from '../../src/sim/fleet.ts';
import type { KvEventBatch } from '../../src/sim/kv-events.ts';
import { parsePrometheusText, sampleValue, textOfTokens } from './helpers.ts';

const MODEL = 'sim-test-model';
/** Fast steps keep the suite quick; semantics are unchanged. */
const FAST = { stepOverheadMs: 1, decodeTimePerSeqMs: 0.05, prefillTimePerTokenMs: 0.001, stepJitter: 0 };

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** Reads an SSE body into its `data:` payloads. */
async function sseData(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split('\n\n').filter((f) => f !== '').map((f) => {
    assert.ok(f.startsWith('data: '), `frame ${f}`);
    return f.slice(6);
  });
}

describe('simulated server over HTTP', () => {
  let fleet: Fleet;
  let s0: FleetServer;
  let s1: FleetServer;

  before(async () => {
    fleet = await startFleet({
      servers: 2,
      basePort: 0,
      serverOptions: { ...FAST, servedModelNames: [MODEL, 'alias'], mode: 'fixed', loras: { 'tuned-a': '/adapters/a' } },
    });
    [s0, s1] = fleet.servers as [FleetServer, FleetServer];
  });
  after(() => fleet.close());

  it('streams a chat completion to the openai v6 client, with usage and the pod header', async () => {
    const client = new OpenAI({ baseURL: `${s0.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 6, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    assert.equal(response.headers.get('x-inference-pod'), s0.name);
    assert.equal(response.headers.get('x-inference-port'), String(s0.port));
    let content = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let roleSeen = false;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.role === 'assistant') roleSeen = true;
      content += choice?.delta.content ?? '';
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(roleSeen);
    assert.equal(finish, 'length');
    assert.equal(content.length, 24, 'six 4-byte tokens');
    assert.equal(usage?.completion_tokens, 6);
    assert.equal(usage?.prompt_tokens, Math.ceil('### user: Say something.\n'.length / 4));
  });

  it('non-streaming completions from the openai client; a LoRA request displays the adapter name', async () => {
    const client = new OpenAI({ baseURL: `${s1.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const res = await client.completions.create({ model: 'tuned-a', prompt: 'hello there', max_tokens: 3 });
    assert.equal(res.model, 'tuned-a');
    assert.equal(res.choices[0]?.finish_reason, 'length');
    assert.equal(res.usage?.completion_tokens, 3);
    const alias = await client.completions.create({ model: 'alias', prompt: ['a', 'b'], max_tokens: 2, n: 2 });
    assert.deepEqual(alias.choices.map((c) => c.index), [0, 1, 2, 3]);
    assert.equal(alias.model, MODEL);
  });

  it('completion SSE: one chunk per token, an empty final chunk, usage nulls, usage chunk, [DONE]', async () => {
    const res = await post(`${s0.url}/v1/completions`, { model: MODEL, prompt: textOfTokens(40, 'sse'), max_tokens: 3, stream: true, stream_options: { include_usage: true } });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const frames = await sseData(res);
    assert.equal(frames.length, 6);
    assert.equal(frames[5], '[DONE]');
    const chunks = frames.slice(0, 5).map((f) => JSON.parse(f) as { id: string; object: string; choices: { text: string; finish_reason: string | null }[]; usage: unknown });
    assert.ok(chunks.every((c) => c.id === chunks[0]?.id && c.object === 'text_completion'));
    assert.deepEqual(chunks.slice(0, 3).map((c) => [c.choices[0]?.text.length, c.choices[0]?.finish_reason, c.usage]), [[4, null, null], [4, null, null], [4, null, null]]);
    assert.deepEqual([chunks[3]?.choices[0]?.text, chunks[3]?.choices[0]?.finish_reason], ['', 'length']);
    assert.deepEqual(chunks[4]?.choices, []);
    assert.deepEqual(chunks[4]?.usage, { prompt_tokens: 40, completion_tokens: 3, total_tokens: 43, prompt_tokens_details: { cached_tokens: 0 } });
    const plain = await sseData(await post(`${s0.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 1, stream: true }));
    assert.equal(plain.length, 3);
    assert.equal((JSON.parse(plain[0] as string) as Record<string, unknown>)['usage'], undefined, 'no usage key without include_usage');
  });

  it('reports cached_tokens for a repeated prompt', async () => {
    const prompt = textOfTokens(100, 'repeat');
    await (await post(`${s1.url}/v1/completions`, { model: MODEL, prompt, max_tokens: 1 })).json();
    const body = (await (await post(`${s1.url}/v1/completions`, { model: MODEL, prompt, max_tokens: 1 })).json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } };
    assert.equal(body.usage.prompt_tokens_details.cached_tokens, 96);
  });

  it('answers errors in OpenAI shape with the right status', async () => {
    const cases: [Response, number, RegExp, string | null][] = [
      [await post(`${s0.url}/v1/completions`, '{not json'), 400, /Failed to read and parse request body/, null],
      [await post(`${s0.url}/v1/completions`, { model: 'nope', prompt: 'x' }), 404, /The model `nope` does not exist/, 'model'],
      [await post(`${s0.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 0 }), 400, /max_tokens/, 'max_tokens'],
      [await post(`${s0.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 20_000 }), 400, /maximum context length is 16384 tokens/, 'messages'],
      [await post(`${s0.url}/v1/chat/completions`, { model: MODEL, messages: [] }), 400, /messages/, 'messages'],
      [await post(`${s0.url}/v1/completions`, { model: MODEL, prompt: 'x' }, { 'x-return-error': '418' }), 418, /Synthetic error 418/, null],
    ];
    for (const [res, status, message, param] of cases) {
      assert.equal(res.status, status);
      assert.equal(res.headers.get('x-inference-pod'), s0.name);
      const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: number } };
      assert.match(body.error.message, message);
      assert.equal(body.error.code, status);
      assert.equal(body.error.param, param);
      assert.equal(typeof body.error.type, 'string');
    }
  });

  it('answers 429 when the waiting queue is full', async () => {
    const tiny = await startFleet({ servers: 1, basePort: 0, serverOptions: { servedModelNames: [MODEL], maxNumSeqs: 1, maxWaitingQueueLength: 1 } });
    try {
      const url = `${(tiny.servers[0] as FleetServer).url}/v1/completions`;
      const long = { model: MODEL, prompt: 'x', max_tokens: 500, ignore_eos: true, stream: true };
      const first = await post(url, long);
      const second = await post(url, long);
      const third = await post(url, long);
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
      assert.equal(third.status, 429);
      assert.match(((await third.json()) as { error: { message: string } }).error.message, /waiting requests queue is full/);
      await first.body?.cancel();
      await second.body?.cancel();
    } finally {
      await tiny.close();
    }
  });

  it('/v1/models, /health, /ready and LoRA load/unload with vLLM status codes', async () => {
    const models = (await (await fetch(`${s1.url}/v1/models`)).json()) as { data: { id: string; parent: string | null }[] };
    assert.deepEqual(models.data.map((m) => m.id), [MODEL, 'alias', 'tuned-a']);
    assert.equal(models.data[2]?.parent, MODEL);
    assert.equal((await fetch(`${s1.url}/health`)).status, 200);
    assert.equal((await fetch(`${s1.url}/ready`)).status, 200);
    assert.equal((await post(`${s1.url}/v1/load_lora_adapter`, { lora_name: 'new', lora_path: '/p' })).status, 200);
    assert.equal((await post(`${s1.url}/v1/load_lora_adapter`, { lora_name: 'new', lora_path: '/p' })).status, 400);
    assert.equal((await post(`${s1.url}/v1/completions`, { model: 'new', prompt: 'x', max_tokens: 1 })).status, 200);
    assert.equal((await post(`${s1.url}/v1/unload_lora_adapter`, { lora_name: 'new' })).status, 200);
    assert.equal((await post(`${s1.url}/v1/unload_lora_adapter`, { lora_name: 'new' })).status, 404);
    assert.equal((await post(`${s1.url}/v1/completions`, { model: 'new', prompt: 'x', max_tokens: 1 })).status, 404);
  });

  it('/metrics parses and shows the traffic of this server only', async () => {
    const res = await fetch(`${s0.url}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusText(await res.text());
    assert.ok(sampleValue(families, 'vllm:request_success_total', { finished_reason: 'length' }) >= 3);
    assert.equal(sampleValue(families, 'sim_server_info', { server_id: s0.name, port: String(s0.port) }), 1);
    assert.ok(families.has('sim_event_loop_lag_seconds'));
  });

  it('/kv_events streams BlockStored batches as JSON', async () => {
    const controller = new AbortController();
    const res = await fetch(`${s1.url}/kv_events`, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await post(`${s1.url}/v1/completions`, { model: MODEL, prompt: textOfTokens(64, 'kv-events'), max_tokens: 1 }).then((r) => r.json());
    let text = '';
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    controller.abort();
    const batch = JSON.parse(text.slice(6, text.indexOf('\n\n'))) as KvEventBatch;
    const stored = batch.events.find((e) => e.type === 'BlockStored');
    assert.ok(stored !== undefined && stored.type === 'BlockStored');
    assert.equal(stored.block_hashes.length, 4);
    assert.equal(stored.token_ids.length, 64);
    assert.equal(stored.parent_block_hash, null);
  });

  it('runtime faults through /admin/config: mid-stream error frame, stream abort, failing metrics, ready flap', async () => {
    const bad = await post(`${s1.url}/admin/config`, { 'max-num-seqs': 3 });
    assert.equal(bad.status, 400, 'static knob refused');
    const set = await post(`${s1.url}/admin/config`, { 'mid-stream-error-rate': 100 });
    assert.equal(((await set.json()) as Record<string, unknown>)['mid-stream-error-rate'], 100);
    const frames = await sseData(await post(`${s1.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 5, stream: true }));
    assert.equal(frames.at(-1), '[DONE]');
    assert.match(frames.at(-2) ?? '', /^\{"error":\{"message":"Injected mid-stream error\."/);

    s1.setFaults({ 'mid-stream-error-rate': 0, 'stream-abort-rate': 100 });
    const aborted = await post(`${s1.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 5, stream: true });
    await assert.rejects(aborted.text());

    s1.setFaults({ 'stream-abort-rate': 0, 'metrics-error-rate': 100, 'ready-flap-period': '1h' });
    assert.equal((await fetch(`${s1.url}/metrics`)).status, 500);
    assert.equal((await fetch(`${s1.url}/health/ready`)).status, 200, 'first half of the flap period is up');
    s1.setFaults({ 'metrics-error-rate': 0, 'ready-flap-period': 0, 'failure-injection-rate': 100, 'failure-types': 'rate_limit' });
    assert.equal((await post(`${s1.url}/v1/completions`, { model: MODEL, prompt: 'x' })).status, 429);
    s1.setFaults({ 'failure-injection-rate': 0 });
    assert.equal((await post(`${s1.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 1 })).status, 200);
  });
});
