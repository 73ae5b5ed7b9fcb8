/**
 * The Redis transport against a real Redis. A snapshot written in several HSETs (fields grouped up to ≈ 256 kB per
 * command) reads back whole, and a newer generation replaces it only once it is complete. Snapshot fields and
 * appended batches go to the socket uncopied (no per-command copy by ioredis' encoder) and read back byte for byte;
 * appends in order, with their stream ids.
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Command } from 'ioredis';
import { RedisTransport, UncopiedCommand } from '../../src/datalayer/sync/redis-transport.ts';
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

/** A transport on its own pool (`keyPrefix` epp-test), so the tests' keys do not meet. */
const transport = (pool: string): RedisTransport =>
  new RedisTransport({ url: redis.url, keyPrefix: 'epp-test', pool, retentionMs: 30_000, snapshotIntervalMs: 10_000, commandTimeoutMs: 2000, logger: silentLogger() });

const field = (bytes: number, seed: number): Uint8Array => Uint8Array.from({ length: bytes }, (_, i) => (i * 31 + seed) & 0xff);

test('each snapshot HSET carries at most 256 KiB of fields, unless a single field is larger', async () => {
  const t = transport('sizes');
  const admin = redis.client();
  const monitor = await admin.monitor();
  const hsets: string[][] = [];
  let sawMarker: () => void = () => undefined;
  const marker = new Promise<void>((resolve) => (sawMarker = resolve));
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'hset' && args[1]?.includes('{sizes}')) hsets.push(args.slice(2).filter((_, i) => i % 2 === 0).map((f) => f.replace(/\\n/g, '\n')));
    if (args[0]?.toLowerCase() === 'echo' && args[1] === 'snapshot-written') sawMarker();
  });
  await t.connect();
  try {
    const size = new Map<string, number>();
    const fields = new Map<string, Uint8Array>();
    const put = (name: string, bytes: number): void => void (fields.set(name, field(bytes, fields.size)), size.set(name, bytes));
    put('prefix\nbig0', 4 + 8 * 31_250); // 250 kB: two of these are over the limit
    put('prefix\nbig1', 4 + 8 * 31_250);
    for (let e = 0; e < 40; e++) put(`prefix\nsmall${e}`, 4 + 8 * 1000); // 8 kB each
    put('prefix\nhuge', 4 + 8 * 40_000); // 320 kB: over the limit on its own
    await t.putSnapshot({ meta: { v: 1, createdAtMs: 3_000, origin: 'a:1', streamId: '5-0', fingerprints: { prefix: 7 }, blockSizes: { prefix: 16 } }, fields } as Snapshot);
    // MONITOR reports commands in execution order: once it shows this one, it has shown every HSET.
    await admin.echo('snapshot-written');
    await marker;
    const groups = hsets.filter((g) => !g.includes('_meta'));
    assert.deepEqual(groups.flat().sort(), [...fields.keys()].sort(), 'every field sent once');
    for (const g of groups) {
      const bytes = g.reduce((n, f) => n + (size.get(f) ?? 0), 0);
      assert.ok(g.length === 1 || bytes <= 256 * 1024, `one HSET carried ${g.length} fields, ${bytes} bytes: ${g.join(', ').replace(/\n/g, '/')}`);
    }
    assert.ok(groups.length <= 6, `${groups.length} HSETs: small fields are still grouped`);
  } finally {
    monitor.disconnect();
    admin.disconnect();
    await t.close();
  }
});

test('a snapshot larger than one command round-trips field by field, byte for byte', async () => {
  const t = transport('snap');
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

test("snapshot HSETs hand the field buffers to the socket uncopied, in the bytes ioredis' own encoder would send", async () => {
  const written: Array<string | Buffer> = [];
  let corked = 0;
  const socket = {
    cork: () => void corked++,
    uncork: () => void corked--,
    write: (chunk: string | Buffer) => (written.push(chunk), true),
  };
  const big = Buffer.from(field(4 + 8 * 31_250, 1));
  const args = ['epp:{ns/pool}:snap:7-a', 'prefix\nep0', big, 'prefix\nempty', Buffer.alloc(0), 'prefix\nep1', Buffer.from(field(12, 2))];
  const cmd = new UncopiedCommand('hset', args);
  // ioredis writes what toWritable returns right after it, on the same socket.
  written.push(cmd.toWritable(socket));
  assert.equal(corked, 1, 'corked while the pieces are written');
  await new Promise<void>((resolve) => process.nextTick(resolve));
  assert.equal(corked, 0, 'uncorked on the next tick');
  assert.ok(written.includes(big), 'the 250 kB field went to the socket as the same Buffer, not a copy');
  const sent = Buffer.concat(written.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)));
  const reference = new Command('hset', args).toWritable(socket);
  assert.ok(sent.equals(Buffer.isBuffer(reference) ? reference : Buffer.from(reference)), 'byte-identical RESP');
  // Without a corkable socket (never seen in ioredis 6), it falls back to ioredis' encoder.
  const fallback = new UncopiedCommand('hset', args).toWritable({});
  assert.ok(Buffer.isBuffer(fallback) && fallback.equals(sent));
});

test('an appended batch reaches the socket uncopied and reads back byte for byte', async () => {
  const t = transport('append');
  await t.connect();
  const written: unknown[] = [];
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    written.push(chunk);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
  const payloads = [field(5_000, 1), field(1, 2), field(70_000, 3)];
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
