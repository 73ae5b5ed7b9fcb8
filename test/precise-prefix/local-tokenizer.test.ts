/**
 * token-producer backend `local`: the model's Hugging Face tokenizer in process, trusted only after a parity check
 * against the engine's render. The engine here is the simulator with its `words` tokenizer; the tokenizer files are
 * test/fixtures/tokenizer/words-tokenizer*.json, a tokenizer.json that reproduces the simulator's ids for a small
 * vocabulary (anything else becomes [UNK], i.e. a real disagreement).
 */
import { strict as assert } from 'node:assert';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { tokenizedPromptOf } from '../../src/framework/attributes.ts';
import { registerPrecisePrefixMetrics } from '../../src/observability/precise-prefix-metrics.ts';
import { TokenProducer, tokenProducerFactory } from '../../src/plugins/requestcontrol/token-producer/index.ts';
import { startFleet, type Fleet } from '../../src/sim/index.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, type TestHandle } from '../support/plugin-fixtures.ts';
import { waitUntil } from '../support/wait.ts';
import { MODEL } from './rig.ts';

const fixture = (f: string) => fileURLToPath(new URL(`../fixtures/tokenizer/${f}`, import.meta.url));
const FILES = { tokenizerFile: fixture('words-tokenizer.json'), tokenizerConfigFile: fixture('words-tokenizer_config.json') };
/** Probes inside the fixture's vocabulary. */
const PROBES = [
  { prompt: 'The quick brown fox jumps over the lazy dog.' },
  { messages: [{ role: 'system', content: 'You are a careful assistant. Answer in one sentence.' }, { role: 'user', content: 'What is the capital of France, and why is it famous?' }] },
];
const IN_VOCAB = 'Summarise the incident report in three bullet points. The quick brown fox jumps over the lazy dog.';
const OUT_OF_VOCAB = 'The quick purple fox';

async function withSim(fn: (fleet: Fleet, handle: TestHandle) => Promise<void>): Promise<void> {
  const fleet = await startFleet({ servers: 1, basePort: 0, serverOptions: { tokenizer: 'words' } });
  try {
    const s = fleet.servers[0]!;
    await fn(fleet, makeHandle({ endpoints: [makeEndpoint(s.name, {}, { address: '127.0.0.1', port: s.port })] }));
  } finally {
    await fleet.close();
  }
}

async function tokenize(tp: TokenProducer, handle: TestHandle, body: Record<string, unknown>, api: 'completions' | 'chat-completions' = 'completions') {
  const candidates = handle.endpoints().map((e) => makeCandidate(e));
  await tp.prepareData(makeRequest({ apiType: api, payload: { model: MODEL, ...body }, targetModel: MODEL }), candidates, new AbortController().signal);
  return tokenizedPromptOf(candidates[0]!.attributes);
}

async function renderIds(fleet: Fleet, api: 'completions' | 'chat-completions', body: Record<string, unknown>): Promise<number[]> {
  const res = await fetch(`${fleet.servers[0]!.url}/v1/${api === 'chat-completions' ? 'chat/' : ''}completions/render`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, ...body }),
  });
  const json = (await res.json()) as { token_ids: number[] } | { token_ids: number[] }[];
  return (Array.isArray(json) ? json[0]! : json).token_ids;
}

const parityLogs = (h: TestHandle) => h.logger.entries.filter((e) => /local tokenizer (agrees|disagrees)/.test(e.msg)).map((e) => e.level);

describe('token-producer backend local', () => {
  it('on start, probes agree with the simulator render → requests are tokenized locally, ids equal render (completions and chat)', async () => {
    await withSim(async (fleet, handle) => {
      const tp = tokenProducerFactory('tokens', { backend: 'local', local: { ...FILES, model: MODEL, parity: { probes: PROBES, sampleRate: 0 } } }, handle) as TokenProducer;
      await waitUntil(() => tp.localTrusted, 'the start-up parity check to pass');
      const completion = await tokenize(tp, handle, { prompt: IN_VOCAB });
      assert.equal(completion?.source, 'local');
      assert.deepEqual(Array.from(completion!.tokenIds), await renderIds(fleet, 'completions', { prompt: IN_VOCAB }));
      const chat = await tokenize(tp, handle, { messages: PROBES[1]!.messages }, 'chat-completions');
      assert.equal(chat?.source, 'local');
      assert.deepEqual(Array.from(chat!.tokenIds), await renderIds(fleet, 'chat-completions', { messages: PROBES[1]!.messages }));
      assert.deepEqual([tp.stats.localRequests, tp.stats.parityPasses, tp.stats.parityFailures], [2, 1, 0]);
      assert.deepEqual(parityLogs(handle), ['info']);
    });
  });

  it('probes disagree (the default probes leave the vocabulary) → stays on render, counted, logged once; re-checked each interval', async () => {
    await withSim(async (fleet, handle) => {
      const tp = tokenProducerFactory('tokens', { backend: 'local', local: { ...FILES, parity: { intervalMs: 60_000 } } }, handle) as TokenProducer;
      const first = await tokenize(tp, handle, { prompt: IN_VOCAB });
      assert.equal(first?.source, 'render', 'no check has passed yet: render');
      assert.deepEqual(Array.from(first!.tokenIds), await renderIds(fleet, 'completions', { prompt: IN_VOCAB }));
      await waitUntil(() => tp.stats.parityFailures === 1, 'the first check (started by the request) to fail');
      assert.equal((await tokenize(tp, handle, { prompt: IN_VOCAB }))?.source, 'render');
      assert.equal(tp.stats.parityFailures, 1, 'no new check within the interval');
      handle.clock.advance(60_000);
      await tokenize(tp, handle, { prompt: IN_VOCAB });
      await waitUntil(() => tp.stats.parityFailures === 2, 'the periodic re-check to fail again');
      assert.equal(tp.localTrusted, false);
      assert.deepEqual(parityLogs(handle), ['warn'], 'one log line: the trust never changed');
      assert.match(handle.logger.entries.find((e) => e.level === 'warn')!.msg, /disagrees with render \(probe 1, token \d+\)/);
      const registry = new Registry();
      registerPrecisePrefixMetrics(registry, [], [tp.metricsSource()]);
      assert.match(await registry.metrics(), /epp_token_source_parity_checks_total\{source="tokens",result="disagree"\} 2/);
    });
  });

  it('a sampled live request that disagrees ends the trust: back to render, logged once', async () => {
    await withSim(async (_fleet, handle) => {
      const tp = tokenProducerFactory('tokens', { backend: 'local', local: { ...FILES, model: MODEL, parity: { probes: PROBES, sampleRate: 1 } } }, handle) as TokenProducer;
      await waitUntil(() => tp.localTrusted, 'the start-up parity check to pass');
      assert.equal((await tokenize(tp, handle, { prompt: IN_VOCAB }))?.source, 'local');
      await waitUntil(() => tp.stats.parityPasses === 2, 'the sampled request to agree');
      const diverging = await tokenize(tp, handle, { prompt: OUT_OF_VOCAB });
      assert.equal(diverging?.source, 'local', 'the request itself was already tokenized (the check runs in the background)');
      await waitUntil(() => !tp.localTrusted, 'the sample to disagree');
      assert.equal((await tokenize(tp, handle, { prompt: OUT_OF_VOCAB }))?.source, 'render');
      assert.deepEqual(parityLogs(handle), ['info', 'warn']);
      assert.match(handle.logger.entries.at(-1)!.msg, /sampled request/);
    });
  });

  describe('factory', () => {
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['backend local without files', { backend: 'local' }, /parameters\.local: backend local needs local\.tokenizerFile/],
      ['a missing tokenizer file', { backend: 'local', local: { tokenizerFile: '/nonexistent/tokenizer.json' } }, /parameters\.local: cannot read tokenizer file \/nonexistent\/tokenizer\.json/],
      ['a tokenizer config that is not JSON', { backend: 'local', local: { tokenizerFile: FILES.tokenizerFile, tokenizerConfigFile: fixture('generate.ts') } }, /parameters\.local: tokenizer config file .*generate\.ts is not valid/],
      ['a chat template that does not parse', { backend: 'local', local: { ...FILES, chatTemplate: '{% for %}' } }, /parameters\.local: chat template does not parse/],
      ['a probe of neither form', { backend: 'local', local: { ...FILES, parity: { probes: [{ text: 'x' }] } } }, /parameters\.local\.parity\.probes\.0: expected \{prompt: "text"\} or \{messages/],
      ['a sample rate above 1', { backend: 'local', local: { ...FILES, parity: { sampleRate: 2 } } }, /parameters\.local\.parity\.sampleRate/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => tokenProducerFactory('t', params, makeHandle())), re));
    }
  });
});
