/**
 * `epp demo` (what `npm start` runs) routes with `epp-default`: upstream's weights over the precise prefix index.
 * End to end, in process (`startDemo`, the command's body): the demo's simulators publish KV events, the EPP
 * subscribes through the demo's endpoints file, and a prompt that reached a server without passing the EPP —
 * so only its events can tell — is routed to that server, with a cache hit.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { startDemo } from '../src/cli/demo.ts';
import { DEFAULT_MODEL_NAME } from '../src/sim/config.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { PrecisePrefixCacheProducer } from '../src/plugins/requestcontrol/precise-prefix-cache-producer/index.ts';
import { waitUntil } from './support/wait.ts';

const PROMPT = 'Summarise the incident report in three bullet points, then list the follow-up actions. '.repeat(12);

async function complete(baseUrl: string, prompt: string): Promise<{ pod: string | null; cached: number }> {
  const res = await fetch(`${baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: DEFAULT_MODEL_NAME, prompt, max_tokens: 2 }),
  });
  assert.equal(res.status, 200);
  const json = (await res.json()) as { usage: { prompt_tokens_details?: { cached_tokens?: number } } };
  return { pod: res.headers.get('x-inference-pod'), cached: json.usage.prompt_tokens_details?.cached_tokens ?? 0 };
}

test('epp demo: the EPP follows the fleet\'s KV events and routes a prompt to the server that really caches it', { timeout: 60_000 }, async () => {
  const demo = await startDemo({ servers: 3, basePort: 0, port: 0, logger: silentLogger() });
  const fleet = demo.fleet!;
  try {
    assert.equal(demo.epp.config.origin, 'epp-default');
    const producer = demo.epp.config.plugins.find((p) => p instanceof PrecisePrefixCacheProducer) as PrecisePrefixCacheProducer | undefined;
    assert.ok(producer, 'epp-default runs the precise producer');
    for (const s of fleet.servers) assert.match(s.kvEventsEndpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/, 'an OS-picked loopback port');
    assert.match(demo.banner(), /KV events tcp:\/\/127\.0\.0\.1:\d+/);
    await waitUntil(() => fleet.servers.every((s) => producer.phaseOf(s.name) === 'SYNCED' && s.kvEventsSubscriptions() > 0), 'the EPP subscribed to every server');

    // The prompt reaches the last server directly: the EPP never routed it, so only the KV events place it there.
    const holder = fleet.servers[fleet.servers.length - 1]!;
    const direct = await fetch(`${holder.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: DEFAULT_MODEL_NAME, prompt: PROMPT, max_tokens: 2 }),
    });
    assert.equal(direct.status, 200);
    await direct.arrayBuffer();
    await waitUntil(() => producer.index.replicasOf(holder.name) > 0, 'the direct request\'s blocks indexed from the events');
    for (const s of fleet.servers) if (s !== holder) assert.equal(producer.index.replicasOf(s.name), 0, s.name);

    const gateway = `http://127.0.0.1:${demo.epp.gatewayPort}`;
    for (let i = 0; i < 3; i++) {
      const r = await complete(gateway, PROMPT);
      assert.equal(r.pod, holder.name, 'routed to the server whose events show the prompt');
      assert.ok(r.cached > 0, 'a prefix-cache hit');
    }
  } finally {
    await demo.close();
  }
});

test('epp demo: close stops the fleet and removes the endpoints file', async () => {
  const demo = await startDemo({ servers: 1, basePort: 0, port: 0, logger: silentLogger() });
  const file = demo.endpointsFile;
  assert.ok(file !== undefined && existsSync(file));
  await demo.close();
  await demo.close();
  assert.equal(existsSync(file), false);
  const refused = await fetch(demo.fleet!.servers[0]!.url + '/health').then(() => false, () => true);
  assert.ok(refused, 'the simulated server is stopped');
});

test('epp demo --endpoints: real servers get the same routing with the engines\' own tokens (token-producer backend render)', async () => {
  const { startFleet } = await import('../src/sim/index.ts');
  const servers = await startFleet({ servers: 1, basePort: 0 });
  const demo = await startDemo({ servers: 4, basePort: 0, port: 0, endpoints: `127.0.0.1:${servers.servers[0]!.port}`, logger: silentLogger() });
  try {
    assert.equal(demo.fleet, undefined);
    assert.equal(demo.endpointsFile, undefined);
    assert.equal(demo.epp.config.origin, 'epp-default (token-producer backend: render)');
    const tokens = demo.epp.config.plugins.find((p) => p.typedName.type === 'token-producer') as unknown as { config: { backend: string } };
    assert.equal(tokens.config.backend, 'render');
    assert.ok(demo.epp.config.plugins.some((p) => p instanceof PrecisePrefixCacheProducer));
    // Without published events the endpoint is never SYNCED: it is scored by the approximate fallback, and served.
    const r = await complete(`http://127.0.0.1:${demo.epp.gatewayPort}`, PROMPT);
    assert.equal(r.pod, servers.servers[0]!.name);
  } finally {
    await demo.close();
    await servers.close();
  }
});
