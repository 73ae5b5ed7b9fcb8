/**
 * End to end without Envoy's data path: `startEpp` discovering a simulated vLLM fleet (static endpoints),
 * scraping its real /metrics into endpoint data, and routing ext_proc requests with upstream's default config.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../src/observability/logger.ts';
import {
  approxPrefixCacheProducerFactory,
  DEFAULT_LRU_CAPACITY_PER_SERVER,
  type ApproxPrefixCacheProducer,
} from '../src/plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { startEpp } from '../src/server/bootstrap.ts';
import { startFleet, type SimServerOptions } from '../src/sim/index.ts';
import { FakeEnvoy, setHeaders } from './support/fake-envoy.ts';
import { makeHandle } from './support/plugin-fixtures.ts';
import { waitUntil } from './support/wait.ts';

/** A 2-server simulated fleet and an EPP (upstream's default config) discovering it statically. */
async function fleetAndEpp(serverOptions: Partial<SimServerOptions> = {}) {
  const fleet = await startFleet({ servers: 2, basePort: 0, serverOptions });
  const epp = await startEpp({
    grpcPort: 0,
    grpcHealthPort: -1,
    host: '127.0.0.1',
    secureServing: false,
    discovery: { endpoints: fleet.servers.map((s) => `127.0.0.1:${s.port}`), refreshIntervalMs: 20 },
    logger: silentLogger(),
    shutdownGraceMs: 500,
  });
  return { fleet, epp };
}

test('serve: static discovery of a simulated fleet, live metrics in endpoint data, default-config routing', async () => {
  const { fleet, epp } = await fleetAndEpp();
  const envoy = new FakeEnvoy(epp.grpcPort);
  try {
    assert.ok(epp.dataLayer);
    await epp.dataLayer.whenReady();
    // Wait for the first scrape of every endpoint (event-driven: the store notifies on every metrics swap).
    const store = epp.store;
    await waitUntil(() => store.endpoints().every((e) => e.metrics.updateTime > 0), 'the first scrape of every endpoint');
    for (const e of epp.store.endpoints()) {
      assert.equal(e.metrics.cacheBlockSize, 16, 'block size from vllm:cache_config_info');
      assert.ok(e.metrics.cacheNumBlocks > 0);
    }
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/chat/completions' });
    s.requestBody(JSON.stringify({ model: 'sim-model', messages: [{ role: 'user', content: 'hello' }] }), true);
    const hdr = await s.next();
    const dest = setHeaders(hdr)[0]![1];
    assert.ok(fleet.servers.some((srv) => dest === `127.0.0.1:${srv.port}`), dest);
    s.end();
    await s.ended;
  } finally {
    envoy.close();
    await epp.close();
    await fleet.close();
  }
});


test('servers without a block-count metric: the approximate index falls back to 31,250 blocks per server (upstream)', async () => {
  // The routing benchmark's "unsized" scenarios: each server caches 2,048 blocks, the EPP cannot know it.
  const { fleet, epp } = await fleetAndEpp({ metricsNumGpuBlocks: false });
  try {
    await epp.dataLayer?.whenReady();
    const store = epp.store;
    await waitUntil(() => store.endpoints().length === 2 && store.endpoints().every((e) => e.metrics.updateTime > 0), 'the first scrape of every endpoint');
    const producer = approxPrefixCacheProducerFactory('prefix', {}, makeHandle()) as ApproxPrefixCacheProducer;
    for (const e of store.endpoints()) {
      assert.equal(e.metrics.cacheBlockSize, 16, 'the block size is still published');
      assert.equal(e.metrics.cacheNumBlocks, 0, 'no block count');
      assert.equal(producer.capacityBlocksFor(e), DEFAULT_LRU_CAPACITY_PER_SERVER);
      assert.equal(fleet.servers[0]?.sim.options.kvCacheSize, 2048);
    }
  } finally {
    await epp.close();
    await fleet.close();
  }
});
