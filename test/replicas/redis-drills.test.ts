/**
 * Failure drills with a real redis-server (started on a free loopback port, stopped at the end): three
 * embedded-gateway replicas share placements and load; Redis is killed and restarted empty, one replica's link
 * is blackholed (a proxy that stops forwarding without closing) while the stream is trimmed past it. Through all
 * of it: zero failed requests, no request waits on Redis, completion hooks exactly once, recovery without
 * restarts. (The SIGKILLed-replica drill is in replica-crash.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { startFleet, type Fleet } from '../../src/sim/index.ts';
import { BlackholeProxy, RedisServer } from '../support/redis.ts';
import { waitUntil } from '../support/wait.ts';
import { CompletionCounter, RequestLog, pairs, prompt, startReplica, type Completion } from './support.ts';

describe('replicas over Redis: failure drills', () => {
  let redis: RedisServer;
  let proxy: BlackholeProxy;
  let fleet: Fleet;
  const counter = new CompletionCounter();
  let a: RunningEpp;
  let b: RunningEpp;
  let c: RunningEpp;
  const log = new RequestLog();
  const results = log.results;
  const send = (epp: RunningEpp, p: string): Promise<Completion> => log.send(epp, p);

  before(async () => {
    redis = await RedisServer.start();
    proxy = new BlackholeProxy(redis.port);
    await proxy.listen();
    fleet = await startFleet({ servers: 3, basePort: 0, serverOptions: { maxNumSeqs: 64 } });
    const endpoints = fleet.servers.map((s) => `127.0.0.1:${s.port}`);
    [a, b, c] = await Promise.all([
      startReplica(redis.url, endpoints, counter, 'a'),
      startReplica(redis.url, endpoints, counter, 'b'),
      startReplica(proxy.url, endpoints, counter, 'c'),
    ]);
    for (const r of [a, b, c]) await r.sync?.ready;
    await waitUntil(() => [a, b, c].every((r) => r.sync?.peerCount() === 2), 'every replica hears both peers');
    await waitUntil(() => [a, b, c].every((r) => r.store.endpoints().every((e) => e.metrics.updateTime > 0)), 'first scrapes');
  });

  after(async () => {
    await Promise.all([a, b, c].map((r) => r?.close()));
    await fleet?.close();
    await proxy?.close();
    await redis?.kill();
  });

  it('a placement routed by one replica is applied by the others, which then route the prompt alike', async () => {
    const p = prompt('shared-1', 12);
    const first = await send(a, p);
    assert.equal(first.status, 200);
    const learnt = [...pairs(a)];
    await waitUntil(() => [b, c].every((r) => learnt.every((x) => pairs(r).has(x))), 'b and c apply a\'s placement');
    for (const r of [b, c]) assert.equal((await send(r, p)).pod, first.pod, 'same prefix, same server, whichever replica');
  });

  it('Redis killed: every request succeeds without waiting; up=0; Redis back empty: sync resumes, a new snapshot is written', async () => {
    await redis.kill();
    const during = [];
    for (let i = 0; i < 15; i++) during.push(await send([a, b, c][i % 3] as RunningEpp, prompt(`down-${i % 5}`, 6)));
    assert.deepEqual(during.map((r) => r.status), during.map(() => 200));
    await waitUntil(() => [a, b, c].every((r) => r.sync?.isUp() === false), 'every replica reports sync down', 5000);
    const upText = await a.metrics.registry.getSingleMetricAsString('epp_ha_sync_up');
    assert.match(upText, /epp_ha_sync_up 0/);
    const written = a.sync!.stats.snapshotsWritten + b.sync!.stats.snapshotsWritten + c.sync!.stats.snapshotsWritten;

    await redis.restart();
    await waitUntil(() => [a, b, c].every((r) => r.sync?.isUp() === true), 'every replica reconnects', 8000);
    const p = prompt('after-restart', 10);
    const before = pairs(b);
    const r = await send(b, p);
    assert.equal(r.status, 200);
    const learnt = [...pairs(b)].filter((x) => !before.has(x));
    assert.ok(learnt.length > 0);
    await waitUntil(() => learnt.every((x) => pairs(a).has(x) && pairs(c).has(x)), 'placements flow again without a restart', 5000);
    await waitUntil(() => a.sync!.stats.snapshotsWritten + b.sync!.stats.snapshotsWritten + c.sync!.stats.snapshotsWritten > written, 'a new snapshot within one interval', 3000);
    const admin = redis.client();
    try {
      assert.equal(await admin.exists('epp:{default/default}:snap:cur'), 1, 'the snapshot is back in the empty Redis');
    } finally {
      admin.disconnect();
    }
  });

  it('one replica blackholed: it serves on local state, is detected down, peers drop its load; a trim past it is healed from the snapshot', async () => {
    proxy.blackhole();
    const served = [];
    for (let i = 0; i < 10; i++) served.push(await send(c, prompt(`island-${i % 3}`, 6)));
    assert.deepEqual(served.map((x) => x.status), served.map(() => 200));
    await waitUntil(() => c.sync?.isUp() === false, 'c detects the partition (read watchdog)', 3000);
    await waitUntil(() => a.sync?.peerCount() === 1 && b.sync?.peerCount() === 1, 'a and b stop hearing c', 3000);

    // Meanwhile a routes something new, a snapshot covers it, and the log is trimmed past c.
    const p = prompt('while-c-is-away', 10);
    const before = pairs(a);
    assert.equal((await send(a, p)).status, 200);
    const mustLearn = [...pairs(a)].filter((x) => !before.has(x));
    assert.ok(mustLearn.length > 0);
    // Whichever of a and b holds the snapshot lease, the next snapshot must include the placement.
    await waitUntil(() => mustLearn.every((x) => pairs(b).has(x)), 'b applies the placement', 5000);
    const snaps = a.sync!.stats.snapshotsWritten + b.sync!.stats.snapshotsWritten;
    await waitUntil(() => a.sync!.stats.snapshotsWritten + b.sync!.stats.snapshotsWritten > snaps + 1, 'a snapshot that covers the placement', 5000);
    const admin = redis.client();
    await admin.xtrim('epp:{default/default}:sync', 'MAXLEN', 0);
    admin.disconnect();

    proxy.heal();
    await waitUntil(() => c.sync?.isUp() === true, 'c reconnects without a restart', 8000);
    await waitUntil(() => c.sync!.stats.trimGaps >= 1, `c counts the trim (${JSON.stringify(c.sync?.stats)})`, 5000);
    await waitUntil(() => mustLearn.every((x) => pairs(c).has(x)), 'c reloaded the snapshot', 5000);
    await waitUntil(() => a.sync?.peerCount() === 2, 'a hears c again', 3000);
  });

  it('no request failed or waited on Redis; completion hooks ran exactly once per request', async () => {
    assert.deepEqual(results.filter((r) => r.status !== 200), []);
    // No request path awaits Redis (by construction); this bound catches a request stuck behind a blackholed
    // link (it would hang) while leaving room for a shared 2-core machine under load.
    const slow = results.filter((r) => r.ms > 3000);
    assert.deepEqual(slow, [], 'no request took over 3 s');
    await waitUntil(() => counter.counts.size === results.length, 'every completion hook ran');
    assert.deepEqual(counter.notExactlyOnce(), []);
  });
});
