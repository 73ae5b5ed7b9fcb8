/**
 * The precise producer configured by name in an EndpointPickerConfig (docs/examples/precise-prefix.yaml, render
 * token source), in the embedded gateway in front of a simulated fleet that publishes KV events over ZeroMQ;
 * endpoints come from an endpoints file whose labels carry each server's event addresses.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startFleet } from '../../src/sim/index.ts';
import { kvEventsLabels } from '../../src/framework/datalayer.ts';
import { PrecisePrefixCacheProducer } from '../../src/plugins/requestcontrol/precise-prefix-cache-producer/index.ts';
import { FAST, MODEL, startGatewayEpp } from './rig.ts';
import { waitUntil } from '../support/wait.ts';

test('gateway + config by name: repeated prompts land on the server that caches them, metrics exported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'epp-precise-'));
  const fleet = await startFleet({ servers: 3, basePort: 0, serverOptions: { ...FAST, kvCacheSize: 256, maxModelLen: 2048, kvEventsReplayEndpoint: 'tcp://127.0.0.1:*' } });
  const file = join(dir, 'endpoints.yaml');
  writeFileSync(file, JSON.stringify({
    endpoints: fleet.servers.map((s) => ({
      address: '127.0.0.1', port: s.port, name: s.name,
      labels: kvEventsLabels(s),
    })),
  }));
  const configText = readFileSync(new URL('../../docs/examples/precise-prefix.yaml', import.meta.url), 'utf8');
  const epp = await startGatewayEpp({ configText, origin: 'docs/examples/precise-prefix.yaml', endpointsFile: file, seed: 17 });
  try {
    const producer = epp.config.plugins.find((p) => p instanceof PrecisePrefixCacheProducer) as PrecisePrefixCacheProducer;
    assert.ok(producer, 'precise producer loaded by type name');
    await waitUntil(() => fleet.servers.every((s) => producer.phaseOf(s.name) === 'SYNCED'), 'every endpoint in sync (initial replay)');
    const prompt = 'Summarise the incident report in three bullet points. '.repeat(20);
    const send = async (p: string) => {
      const res = await fetch(`http://127.0.0.1:${epp.gatewayPort}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: p, max_tokens: 2 }),
      });
      const json = (await res.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } };
      return { pod: res.headers.get('x-inference-pod'), cached: json.usage.prompt_tokens_details.cached_tokens };
    };
    const first = await send(prompt);
    await waitUntil(() => producer.index.replicasOf(first.pod!) > 0, 'the first prompt indexed from events');
    for (let i = 0; i < 4; i++) {
      const again = await send(prompt);
      assert.equal(again.pod, first.pod, 'sticks to the server that caches the prompt');
      assert.ok(again.cached > 0);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${epp.metricsPort}/metrics`)).text();
    assert.match(metrics, /epp_kv_events_batches_total\{producer="precise-prefix-cache-producer"\} [1-9]/);
    assert.match(metrics, new RegExp(`epp_kv_endpoint_phase\\{producer="precise-prefix-cache-producer",endpoint="${first.pod}",phase="SYNCED"\\} 1`));
    assert.match(metrics, /epp_kv_index_blocks\{producer="precise-prefix-cache-producer",tier="gpu"\} [1-9]/);
    assert.match(metrics, /epp_token_source_latency_seconds_count\{source="token-producer",backend="render"\} [1-9]/);
    assert.match(metrics, /epp_precise_prefix_requests_total\{producer="precise-prefix-cache-producer",mode="precise"\} 5/);
  } finally {
    await epp.close();
    await fleet.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
