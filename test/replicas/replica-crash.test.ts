/**
 * Drill: a replica (a real `epp gateway` child process) is SIGKILLed while it holds in-flight load; its peer
 * stops counting that load within loadStaleMs (no leak), keeps serving, and the restarted replica starts warm
 * from the snapshot + log. Real redis-server on a free loopback port.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { startFleet } from '../../src/sim/index.ts';
import { freePort } from '../../scripts/free-port.js';
import { RedisServer } from '../support/redis.ts';
import { waitUntil, within } from '../support/wait.ts';
import { CompletionCounter, complete, loadProducer, MODEL, pairs, prompt, replicaConfig, startReplica } from './support.ts';

const BIN = resolve(import.meta.dirname, '../../bin/epp.js');

interface Child {
  readonly proc: ChildProcess;
  readonly gatewayPort: number;
  readonly metricsPort: number;
}

async function startChild(configFile: string, endpoints: string[]): Promise<Child> {
  const metricsPort = await freePort();
  const proc = spawn(process.execPath, [BIN, 'gateway', '--port', '0', '--metrics-port', String(metricsPort), '--endpoints', endpoints.join(','), '--config-file', configFile, '-v', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const gatewayPort = await within(
    new Promise<number>((res, rej) => {
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /gateway listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) res(Number(m[1]));
      });
      proc.once('exit', (code) => rej(new Error(`epp gateway exited with ${code}: ${out}`)));
    }),
    'the child replica to listen',
    20_000,
  );
  return { proc, gatewayPort, metricsPort };
}

async function metricValue(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

test('SIGKILL a replica holding load: its peer drops that load within loadStaleMs; restarted, it comes back warm', async () => {
  const redis = await RedisServer.start();
  const fleet = await startFleet({ servers: 2, basePort: 0, serverOptions: { maxNumSeqs: 64 } });
  const endpoints = fleet.servers.map((s) => `127.0.0.1:${s.port}`);
  const dir = mkdtempSync(join(tmpdir(), 'epp-replica-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, replicaConfig(redis.url, false));
  const counter = new CompletionCounter();
  const a = await startReplica(redis.url, endpoints, counter, 'a');
  let child: Child | undefined;
  const statuses: number[] = [];
  try {
    await a.sync?.ready;
    child = await startChild(configFile, endpoints);
    await waitUntil(() => a.sync?.peerCount() === 1, 'a hears the child replica', 10_000);

    // a routes prompts (a snapshot will hold them); the child holds slow requests in flight.
    for (let i = 0; i < 4; i++) statuses.push((await complete(a.gatewayPort as number, prompt(`warm-${i}`, 10))).status);
    const slow = Array.from({ length: 4 }, () =>
      fetch(`http://127.0.0.1:${child!.gatewayPort}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt: prompt('slow', 4), max_tokens: 2000, stream: true }),
      }).then((r) => r.arrayBuffer(), () => undefined).catch(() => undefined),
    );
    const load = loadProducer(a);
    const remoteLoad = (): number => endpoints.reduce((s, ep) => s + load.totalLoadOf(ep).requests - load.loadOf(ep).requests, 0);
    await waitUntil(() => remoteLoad() >= 4, 'a counts the child\'s in-flight load', 5000);

    child.proc.kill('SIGKILL');
    const killedAt = performance.now();
    await waitUntil(() => remoteLoad() === 0, 'a drops the dead replica\'s load', 5000);
    const dropMs = performance.now() - killedAt;
    // loadStaleMs = 500; the bound leaves room for a busy shared machine, and a leak would never clear.
    assert.ok(dropMs < 2500, `remote load dropped after ${dropMs.toFixed(0)} ms`);
    await Promise.allSettled(slow);
    for (let i = 0; i < 6; i++) statuses.push((await complete(a.gatewayPort as number, prompt(`after-crash-${i % 2}`, 6))).status);
    await waitUntil(() => (a.sync?.stats.snapshotsWritten ?? 0) > 0, 'a writes a snapshot', 3000);

    const startedAt = performance.now();
    child = await startChild(configFile, endpoints);
    const port = child.metricsPort;
    let ready = false;
    // Polls /readyz of the child process (real I/O in another process: nothing to await directly).
    for (const deadline = performance.now() + 10_000; !ready && performance.now() < deadline; ) {
      ready = (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200;
      if (!ready) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(ready, 'ready within 10 s');
    const readyMs = performance.now() - startedAt;
    assert.equal(await metricValue(port, 'epp_ha_sync_warm'), 1, 'started warm');
    const held = await metricValue(port, 'inference_extension_prefix_indexer_size');
    assert.ok((held ?? 0) >= pairs(a).size * 0.95, `restarted replica holds ${held} of a's ${pairs(a).size} entries (ready after ${readyMs.toFixed(0)} ms incl. process start)`);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'the surviving replica failed nothing');
    await waitUntil(() => counter.counts.size === statuses.length, 'every completion hook ran');
    assert.deepEqual(counter.notExactlyOnce(), []);
  } finally {
    child?.proc.kill('SIGKILL');
    await a.close();
    await fleet.close();
    await redis.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
