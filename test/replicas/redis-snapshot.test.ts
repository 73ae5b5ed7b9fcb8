/**
 * A snapshot written to a real Redis in several HSETs (fields grouped up to ≈ 256 kB per command)
 * reads back whole, and a newer generation replaces it only once it is complete.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RedisTransport } from '../../src/datalayer/sync/redis-transport.ts';
import type { Snapshot } from '../../src/datalayer/sync/transport.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { RedisServer } from '../support/redis.ts';

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.start();
});
after(async () => {
  await redis.kill();
});

const field = (bytes: number, seed: number): Uint8Array => Uint8Array.from({ length: bytes }, (_, i) => (i * 31 + seed) & 0xff);

test('a snapshot larger than one command round-trips field by field, byte for byte', async () => {
  const t = new RedisTransport({ url: redis.url, keyPrefix: 'epp-test', pool: 'snap', retentionMs: 30_000, snapshotIntervalMs: 10_000, commandTimeoutMs: 2000, logger: silentLogger() });
  await t.connect();
  try {
    const fields = new Map<string, Uint8Array>();
    for (let e = 0; e < 3; e++) fields.set(`prefix\nep${e}`, field(4 + 8 * 31_250, e)); // 250 kB each
    for (let e = 3; e < 40; e++) fields.set(`prefix\nep${e}`, field(4 + 8 * 100, e)); // small: grouped
    const meta = { v: 1, createdAtMs: 1_000, origin: 'a:1', streamId: '5-0', fingerprints: { prefix: 7 }, blockSizes: { prefix: 16 } };
    await t.putSnapshot({ meta, fields } as Snapshot);
    const back = await t.getSnapshot();
    assert.ok(back);
    assert.deepEqual(back.meta, meta);
    assert.equal(back.fields.size, fields.size);
    for (const [k, v] of fields) assert.deepEqual(new Uint8Array(back.fields.get(k) as Uint8Array), v, k);

    await t.putSnapshot({ meta: { ...meta, createdAtMs: 2_000, streamId: '9-0' }, fields: new Map([['prefix\nep0', field(12, 9)]]) } as Snapshot);
    const newer = await t.getSnapshot();
    assert.equal(newer?.meta.streamId, '9-0');
    assert.equal(newer?.fields.size, 1, 'the new generation only, not merged into the old one');
  } finally {
    await t.close();
  }
});
