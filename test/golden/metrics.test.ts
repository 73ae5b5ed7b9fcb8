/**
 * Golden /metrics: a fixed scenario (default config, fixed pool and endpoint metrics, seeded picks) scraped over
 * HTTP and compared with test/golden/metrics.golden.prom. Values that depend on wall time (every `*_seconds`
 * histogram's buckets and sum, the queue-depth histogram) are masked; counts, sizes, tokens, labels, bucket
 * boundaries, HELP and TYPE lines are compared exactly.
 *
 * After an intended change: UPDATE_GOLDEN=1 node scripts/run-tests.js test/golden
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { defaultConfigSource } from '../../src/config/loader.ts';
import { EMPTY_METRICS } from '../../src/framework/datalayer.ts';
import { FakeEnvoy } from '../support/fake-envoy.ts';
import { fixedStore, startTestEpp } from '../support/epp.ts';
import { chatBody, CHAT_PATH, fullStreamedRequest, http } from '../observability/helpers.ts';
import { within } from '../support/wait.ts';

const GOLDEN = new URL('./metrics.golden.prom', import.meta.url);
const TIMING_FAMILIES = /^(\w+_seconds|epp_response_queue_depth)(_bucket|_sum)\b/;

/** Masks wall-time-dependent values and build labels. */
export function normalizeExposition(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      if (line.startsWith('#')) return line;
      if (TIMING_FAMILIES.test(line)) return line.replace(/ [^ ]+$/, ' <timing>');
      return line.replace(/commit="[^"]*",build_ref="[^"]*"/, 'commit="<commit>",build_ref="<build_ref>"');
    })
    .join('\n');
}

test('/metrics after a fixed scenario matches the golden file', async () => {
  const store = fixedStore();
  const now = Date.now();
  store.endpoints().forEach((e, i) => {
    store.commitMetrics(e.metadata.name, Object.freeze({ ...EMPTY_METRICS, waitingQueueSize: i, runningRequestsSize: 2 * i, kvCacheUsagePercent: 0.25 * i, updateTime: now }));
  });
  const epp = await startTestEpp({ store, config: defaultConfigSource(), metricsPort: 0, poolName: 'golden-pool', metricsStalenessMs: 3_600_000 });
  const envoy = new FakeEnvoy(epp.grpcPort);
  try {
    // 1. Two streamed requests with the same prompt (the second hits the prefix index), with usage.
    await fullStreamedRequest(envoy.open(), 'golden prompt '.repeat(30), 3);
    await fullStreamedRequest(envoy.open(), 'golden prompt '.repeat(30), 3);
    // 2. A buffered completion with usage and cached tokens.
    const b = envoy.open();
    b.requestHeaders({ ':path': '/v1/completions', 'content-type': 'application/json', 'x-gateway-model-name-rewrite': 'm1-rewritten' });
    b.requestBody(JSON.stringify({ model: 'm1', prompt: 'hello' }), true);
    await b.nextN(2);
    b.responseHeaders({ ':status': '200', 'content-type': 'application/json' });
    await b.next();
    b.responseBody(JSON.stringify({ object: 'text_completion', model: 'm1-rewritten', choices: [{ text: 'x' }], usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9, prompt_tokens_details: { cached_tokens: 4 } } }), true);
    await b.next();
    b.end();
    await b.ended;
    // 3. A malformed body: BadRequest.
    const bad = envoy.open();
    bad.requestHeaders({ ':path': CHAT_PATH });
    bad.requestBody('{oops', true);
    await bad.ended;
    // 4. A request cancelled by the proxy after routing.
    const c = envoy.open();
    c.requestHeaders({ ':path': CHAT_PATH, 'content-type': 'application/json' });
    c.requestBody(chatBody('cancel me'), true);
    await c.nextN(2);
    c.cancel();
    await c.ended;
    await epp.server.whenIdle();
    // Completions (and the gauges they update) may finish after their stream closed: wait for the last one.
    await within(epp.director.whenIdle(), 'response streams to complete');
    epp.observability.refreshPoolGauges();

    const actual = normalizeExposition((await http(epp.metricsPort as number, '/metrics')).body);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, actual);
    const expected = readFileSync(GOLDEN, 'utf8');
    assert.equal(actual, expected, 'the /metrics exposition changed: if intended, run UPDATE_GOLDEN=1 node scripts/run-tests.js test/golden and review the diff');
  } finally {
    envoy.close();
    await epp.close();
  }
});
