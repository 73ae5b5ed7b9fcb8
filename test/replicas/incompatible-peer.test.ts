/**
 * Failure drill with a real redis-server: a peer that hashes prompts with another block size (a replica
 * configured with `blockSizeTokens: 32, autoTune: false` among replicas that follow the servers' 16). Its
 * placements and its snapshot entries are refused and counted on both sides, never mixed into an index; every
 * request still succeeds, and the compatible replicas keep sharing as before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { startFleet, type Fleet } from '../../src/sim/index.ts';
import { RedisServer } from '../support/redis.ts';
import { waitUntil } from '../support/wait.ts';
import { CompletionCounter, RequestLog, pairs, prompt, startReplica, type Completion } from './support.ts';

const ODD = '{autoTune: false, blockSizeTokens: 32}';

const snapshotsBy = (rs: readonly RunningEpp[]): number => rs.reduce((n, r) => n + (r.sync?.stats.snapshotsWritten ?? 0), 0);
const refused = (epp: RunningEpp): number => epp.sync?.stats.incompatiblePlacements ?? 0;

/** What an operator sees: `epp_ha_sync_incompatible_total` on the replica's metrics. */
async function incompatibleMetric(epp: RunningEpp): Promise<number> {
  const text = await epp.metrics.registry.getSingleMetricAsString('epp_ha_sync_incompatible_total');
  const m = /^epp_ha_sync_incompatible_total (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('replicas over Redis: a peer with an incompatible block size', () => {
  let redis: RedisServer;
  let fleet: Fleet;
  const counter = new CompletionCounter();
  const replicas: RunningEpp[] = [];
  let a: RunningEpp;
  let b: RunningEpp;
  let odd: RunningEpp;
  const log = new RequestLog();
  const results = log.results;
  const send = (epp: RunningEpp, p: string): Promise<Completion> => log.send(epp, p);

  before(async () => {
    redis = await RedisServer.start();
    fleet = await startFleet({ servers: 2, basePort: 0, serverOptions: { maxNumSeqs: 64 } });
    const endpoints = fleet.servers.map((s) => `127.0.0.1:${s.port}`);
    [a, b] = await Promise.all([startReplica(redis.url, endpoints, counter, 'a'), startReplica(redis.url, endpoints, counter, 'b')]);
    replicas.push(a, b);
    for (const r of replicas) await r.sync?.ready;
    // a or b takes the snapshot lease first and keeps renewing it: every snapshot of this drill is 16-token.
    await waitUntil(() => snapshotsBy([a, b]) > 0, 'a compatible replica holds the snapshot lease', 5000);
    odd = await startReplica(redis.url, endpoints, counter, 'odd', ODD);
    replicas.push(odd);
    await odd.sync?.ready;
    await waitUntil(() => replicas.every((r) => r.sync?.peerCount() === 2), 'every replica hears both peers');
    await waitUntil(() => replicas.every((r) => r.store.endpoints().every((e) => e.metrics.cacheBlockSize === 16)), 'block size 16 scraped');
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await fleet?.close();
    await redis?.kill();
  });

  it('placements cross between compatible replicas only; each side counts what it refused', async () => {
    const p = prompt('compatible', 12);
    assert.equal((await send(a, p)).status, 200);
    const fromA = [...pairs(a)];
    assert.ok(fromA.length > 0);
    await waitUntil(() => fromA.every((x) => pairs(b).has(x)), 'b applies a\'s placement');
    await waitUntil(() => refused(odd) >= 1, 'odd counts a\'s placement as incompatible');
    assert.ok(fromA.every((x) => !pairs(odd).has(x)), 'odd holds none of a\'s 16-token blocks');

    const q = prompt('odd-one', 12);
    assert.equal((await send(odd, q)).status, 200);
    const fromOdd = [...pairs(odd)];
    assert.ok(fromOdd.length > 0);
    await waitUntil(() => refused(a) >= 1 && refused(b) >= 1, 'a and b count odd\'s placement');
    for (const r of [a, b, odd]) assert.equal(await incompatibleMetric(r), refused(r), 'the metric shows the count');
    for (const r of [a, b]) assert.ok(fromOdd.every((x) => !pairs(r).has(x)), 'no 32-token block in a 16-token index');
    // Load gauges do not depend on the block size: odd is still a peer of both.
    assert.equal(a.sync?.peerCount(), 2);
    assert.equal(b.sync?.peerCount(), 2);
  });

  it('a late replica with the odd block size warm-starts from the snapshot without importing its entries', async () => {
    const before = snapshotsBy([a, b]);
    await waitUntil(() => snapshotsBy([a, b]) > before, 'a (16-token) snapshot covering a\'s placement', 5000);
    assert.equal(odd.sync?.stats.snapshotsWritten, 0, 'odd never held the lease');
    const endpoints = fleet.servers.map((s) => `127.0.0.1:${s.port}`);
    const late = await startReplica(redis.url, endpoints, counter, 'late-odd', ODD);
    replicas.push(late);
    await late.sync?.ready;
    assert.ok((late.sync?.stats.snapshotsLoaded ?? 0) >= 1, 'the snapshot was read');
    const writtenBy16 = [...pairs(a)];
    assert.ok(writtenBy16.length > 0);
    assert.ok(writtenBy16.every((x) => !pairs(late).has(x)), 'none of the 16-token entries imported');
    await waitUntil(() => refused(late) >= 1, 'late counts what it refused');
    assert.equal((await send(late, prompt('late', 8))).status, 200);
  });

  it('no request failed; completion hooks ran exactly once per request', async () => {
    assert.deepEqual(results.filter((r) => r.status !== 200), []);
    await waitUntil(() => counter.counts.size === results.length, 'every completion hook ran');
    assert.deepEqual(counter.notExactlyOnce(), []);
  });
});
