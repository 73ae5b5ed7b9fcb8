/**
 * An llm-d EndpointPickerConfig (test/fixtures/upstream-configs/llm-d-precise-prefix-cache-scorer.yaml, llm-d's
 * format and parameters) served by the embedded gateway in front of a simulated fleet in llm-d's global socket
 * mode: the EPP binds the SUB socket, every simulator's PUB connects to it (as vLLM does with an endpoint without
 * wildcard), and streams are told apart by the topic `kv@<ip>:<port>@<model>`. Tokens come from the automatically
 * added token-producer (render on the simulator).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort } from '../../scripts/free-port.js';
import { PrecisePrefixCacheScorer } from '../../src/plugins/scheduling/scorer/precise-prefix-cache-scorer/index.ts';
import { startFleet } from '../../src/sim/index.ts';
import { waitUntil } from '../support/wait.ts';
import { FAST, MODEL, startGatewayEpp } from './rig.ts';

test("llm-d's precise-prefix-cache-scorer config loads and routes: cold prefixes spread, repeats stick", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'epp-llmd-'));
  const port = await freePort();
  // Per server (a shared fixed address would be offset by the server's index): every PUB dials the one EPP socket.
  const fleet = await startFleet({
    servers: 3, basePort: 0,
    serverOptions: { ...FAST, kvCacheSize: 256, maxModelLen: 2048 },
    perServerOptions: () => ({ kvEventsEndpoint: `tcp://127.0.0.1:${port}` }),
  });
  const file = join(dir, 'endpoints.yaml');
  writeFileSync(file, JSON.stringify({ endpoints: fleet.servers.map((s) => ({ address: '127.0.0.1', port: s.port, name: s.name })) }));
  const fixture = readFileSync(new URL('../fixtures/upstream-configs/llm-d-precise-prefix-cache-scorer.yaml', import.meta.url), 'utf8');
  const configText = fixture.replace('zmqEndpoint: "tcp://*:5557"', `zmqEndpoint: "tcp://127.0.0.1:${port}"`);
  const epp = await startGatewayEpp({ configText, origin: 'llm-d-precise-prefix-cache-scorer.yaml', endpointsFile: file, seed: 5 });
  try {
    const scorer = epp.config.plugins.find((p) => p instanceof PrecisePrefixCacheScorer) as PrecisePrefixCacheScorer;
    assert.ok(scorer, 'precise-prefix-cache-scorer loaded from the llm-d config');
    assert.ok(epp.config.plugins.some((p) => p.typedName.type === 'token-producer'), 'token-producer added for its TokenizedPrompt');
    assert.ok(!epp.config.plugins.some((p) => p.typedName.type === 'approx-prefix-cache-producer'), 'no approximate producer: the scorer produces the match');
    // The bound socket opens when the pool's endpoints are known; then (slow joiner) every simulator's PUB must
    // have connected to it and seen the subscription.
    await waitUntil(() => {
      scorer.reconcile();
      return fleet.servers.every((s) => s.kvEventsSubscriptions() > 0);
    }, 'every simulator connected to the bound socket');
    const send = async (p: string) => {
      const res = await fetch(`http://127.0.0.1:${epp.gatewayPort}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: p, max_tokens: 2 }),
      });
      const json = (await res.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } };
      assert.equal(res.status, 200);
      return { pod: res.headers.get('x-inference-pod') as string, cached: json.usage.prompt_tokens_details.cached_tokens };
    };
    const prompts = ['incident report', 'release notes', 'sales forecast'].map((t) => `Summarise the ${t} in three bullet points. `.repeat(20));
    const cold: string[] = [];
    for (const p of prompts) {
      const r = await send(p);
      cold.push(r.pod);
      await waitUntil(() => scorer.index.replicasOf(r.pod) > 0 && scorer.phaseOf(r.pod) === 'SYNCED', `the cold prompt's blocks indexed from ${r.pod}'s events`);
    }
    assert.equal(new Set(cold).size, 3, `three cold prefixes on three servers (no-hit-lru-scorer), got ${cold.join(', ')}`);
    for (let i = 0; i < prompts.length; i++) {
      const again = await send(prompts[i] as string);
      assert.equal(again.pod, cold[i], 'a repeated prompt sticks to the server whose events say it caches it');
      assert.ok(again.cached > 0);
    }
    assert.equal(scorer.bound?.unroutable, 0, 'every message was routed by its topic');
  } finally {
    await epp.close();
    await fleet.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
