/**
 * Appends to a real Redis hand the batch to the socket as it is (no per-append copy by ioredis' encoder) and read
 * back byte for byte, in order, with their stream ids.
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { RedisTransport } from '../../src/datalayer/sync/redis-transport.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { RedisServer } from '../support/redis.ts';

let redis: RedisServer;
before(async () => {
  redis = await RedisServer.start();
});
after(async () => {
  await redis.kill();
});

const batch = (bytes: number, seed: number): Uint8Array => Uint8Array.from({ length: bytes }, (_, i) => (i * 7 + seed) & 0xff);

test('an appended batch reaches the socket uncopied and reads back byte for byte', async () => {
  const t = new RedisTransport({ url: redis.url, keyPrefix: 'epp-test', pool: 'append', retentionMs: 30_000, snapshotIntervalMs: 10_000, commandTimeoutMs: 2000, logger: silentLogger() });
  await t.connect();
  const written: unknown[] = [];
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    written.push(chunk);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
  const payloads = [batch(5_000, 1), batch(1, 2), batch(70_000, 3)];
  const ids: string[] = [];
  try {
    for (const p of payloads) ids.push(await t.append(p));
  } finally {
    Socket.prototype.write = write;
  }
  try {
    for (const p of payloads) {
      const sent = written.find((c): c is Buffer => Buffer.isBuffer(c) && c.buffer === p.buffer);
      assert.ok(sent, `the ${p.byteLength}-byte batch was written from its own memory, not a copy`);
      assert.equal(sent.byteOffset, p.byteOffset);
      assert.equal(sent.byteLength, p.byteLength);
    }
    assert.ok(ids.every((id) => /^\d+-\d+$/.test(id)), `stream ids: ${ids.join(', ')}`);
    const back = await t.read('0-0', 10, 0);
    assert.deepEqual(back.map((e) => e.id), ids);
    back.forEach((e, i) => assert.deepEqual(new Uint8Array(e.payload), payloads[i]));
  } finally {
    await t.close();
  }
});
