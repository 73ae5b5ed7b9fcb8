/**
 * The sync engine over the in-memory transport on manual time: convergence, idempotence, self-echo, gaps,
 * incompatible peers, gauge freshness, the drop-oldest publish queue, apply slicing, snapshots and warm-up,
 * outages (refused and blackholed), trims and an empty restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBatch, decodeBatchView, encodeBatch, PlacementCursor, WireFormatError } from '../../../src/datalayer/sync/codec.ts';
import { decodeSnapshotField, encodeSnapshotField } from '../../../src/datalayer/sync/snapshot-field.ts';
import { fromHalves, toHalves } from '../../../src/framework/replication.ts';
import { Fleet, hashes, longestStretch } from './helpers.ts';

test('codec: a batch round-trips and truncation is a clear error', () => {
  const b = {
    origin: 'r1:0000abcd',
    seq: 7,
    sentAtMs: 1_700_000_000_123.5,
    flags: 1,
    channels: [{ name: 'prefix', fingerprint: 0xdeadbeef }, { name: 'load', fingerprint: 0 }],
    endpoints: ['ns/pod-a-rank-0', '10.0.0.1:8000'],
    placements: [{ channel: 0, endpoint: 1, blockSizeTokens: 16, hashes: [0n, 2n ** 64n - 1n, 12345678901234567n] }],
    gauges: [{ channel: 1, endpoint: 0, requests: 3, tokens: 900 }],
  };
  const bytes = encodeBatch(b);
  assert.deepEqual(decodeBatch(bytes), b);
  assert.throws(() => decodeBatch(bytes.subarray(0, bytes.length - 3)), WireFormatError);
});

test('codec: a snapshot field round-trips full 64-bit hashes as halves, in order, and a bad length is a clear error', () => {
  const hs = [0n, 1n, 0xffffffffn, 0x1_0000_0000n, 0xfedcba9876543210n, 0xffffffffffffffffn];
  const field = encodeSnapshotField(31_250, toHalves(hs));
  assert.equal(new DataView(field.buffer).getBigUint64(4 + 8 * 4, true), 0xfedcba9876543210n, 'little-endian u64 on the wire, as before');
  const back = decodeSnapshotField(field);
  assert.equal(back.capacityBlocks, 31_250);
  assert.deepEqual(fromHalves(back.hashes), hs);
  assert.throws(() => decodeSnapshotField(field.subarray(0, 11)), WireFormatError);
});

test('codec: the cursor walks a batch\'s placements in one reused array; a bad placement fails the whole batch up front', () => {
  const placements = [
    { channel: 0, endpoint: 1, blockSizeTokens: 16, hashes: [1n, 2n, 3n] },
    { channel: 0, endpoint: 0, blockSizeTokens: 16, hashes: [2n ** 64n - 1n] },
    { channel: 0, endpoint: 1, blockSizeTokens: 32, hashes: [4n, 5n] },
  ];
  const b = { origin: 'r1:0000abcd', seq: 1, sentAtMs: 5, flags: 0, channels: [{ name: 'prefix', fingerprint: 1 }], endpoints: ['a', 'b'], placements, gauges: [] };
  const view = decodeBatchView(encodeBatch(b));
  assert.equal(view.placementCount, 3);
  const cursor = new PlacementCursor().reset(view);
  const seen: Array<{ endpoint: number; blockSizeTokens: number; hashes: bigint[] }> = [];
  while (cursor.next()) seen.push({ endpoint: cursor.endpoint, blockSizeTokens: cursor.blockSizeTokens, hashes: fromHalves(cursor.hashes) });
  assert.deepEqual(seen, placements.map(({ endpoint, blockSizeTokens, hashes: h }) => ({ endpoint, blockSizeTokens, hashes: h })));
  assert.equal(cursor.next(), false);
  const again = cursor.hashes;
  cursor.reset(view).next();
  assert.equal(cursor.hashes, again, 'the same object for every placement');
  assert.equal(cursor.hashes.hi, again.hi, 'and the same arrays');
  // A placement naming an endpoint the batch does not list is refused before anything is applied.
  assert.throws(() => decodeBatchView(encodeBatch({ ...b, placements: [...placements, { channel: 0, endpoint: 2, blockSizeTokens: 16, hashes: [9n] }] })), WireFormatError);
});

test('three replicas converge to identical indexes; each applies only its peers\' placements', async () => {
  const fleet = new Fleet();
  const rs = ['r1', 'r2', 'r3'].map((n) => fleet.add(n, { settings: { coalesceMs: 0 } }));
  await Promise.all(rs.map((r) => r.engine.start()));
  for (const r of rs) assert.equal(r.engine.isWarm(), true);
  let sent = 0;
  for (let i = 0; i < 300; i++) {
    const r = rs[Math.floor(fleet.random.next() * 3)]!;
    r.index.route(`ep${Math.floor(fleet.random.next() * 4)}`, hashes(Math.floor(fleet.random.next() * 50), 8));
    sent++;
    if (i % 10 === 0) await fleet.run(3);
  }
  await fleet.run(50);
  const [a, b, c] = rs.map((r) => r.index.pairs());
  assert.ok(a!.length > 0);
  assert.deepEqual(b, a);
  assert.deepEqual(c, a);
  const applied = rs.reduce((s, r) => s + r.engine.stats.appliedPlacements, 0);
  assert.equal(applied, 2 * sent, 'each placement applied on the two other replicas, never on its origin');
  assert.ok(rs.every((r) => r.engine.peerCount() === 2));
  await fleet.stopAll();
});

test('touch coalescing: re-sending the same prefix within coalesceMs publishes only new hashes', async () => {
  const fleet = new Fleet();
  const [a, b] = [fleet.add('a'), fleet.add('b')];
  await Promise.all([a.engine.start(), b.engine.start()]);
  for (let i = 0; i < 10; i++) {
    a.index.route('ep0', [...hashes(1, 30), ...hashes(100 + i, 2)]);
    await fleet.run(10);
  }
  await fleet.run(20);
  assert.equal(b.index.index.blocksOf('ep0'), 30 + 20, 'all distinct hashes arrived');
  // 30 shared + 10 × 2 unique hashes travelled once each: 50 × 8 bytes of hashes, not 320 × 8.
  assert.ok(a.engine.stats.publishedBytes < 50 * 8 + 10 * 200 + 40 * 60, `published ${a.engine.stats.publishedBytes} bytes`);
  await fleet.stopAll();
});

test('touch coalescing: an endpoint gone idle hands its tables to the next endpoint, and spares go after a minute', async () => {
  const fleet = new Fleet();
  const [a, b] = [fleet.add('a'), fleet.add('b')];
  await Promise.all([a.engine.start(), b.engine.start()]);
  const routeAll = async (eps: string[]): Promise<void> => {
    for (const ep of eps) a.index.route(ep, hashes(1, 20));
    await fleet.run(50);
  };
  await routeAll(['ep0', 'ep1', 'ep2']);
  assert.equal(a.engine.stats.coalesceTablesCreated, 3);
  await fleet.run(3000, 10); // nothing routed for over 2 × coalesceMs: the three endpoints' tables go spare
  await routeAll(['ep3', 'ep4', 'ep0']);
  assert.equal(a.engine.stats.coalesceTablesCreated, 3, 'the returning and the new endpoints took the spares');
  for (const ep of ['ep3', 'ep4', 'ep0']) assert.equal(b.index.index.blocksOf(ep), 20, `${ep}: every hash published through a reused table`);
  await routeAll(['ep5']);
  assert.equal(a.engine.stats.coalesceTablesCreated, 4, 'no spare left: new tables');
  await fleet.run(3000 + 60_000, 50); // everything idle, then unused as spares for a minute: dropped
  await routeAll(['ep6']);
  assert.equal(a.engine.stats.coalesceTablesCreated, 5);
  assert.equal(b.index.index.blocksOf('ep6'), 20);
  await fleet.stopAll();
});

test('lost, lagged and reordered batches: gaps are counted, what arrives is applied, duplicates change nothing', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { settings: { coalesceMs: 0 }, faults: { lossRate: 0.3, lagMs: 20, reorderMs: 30 } });
  const b = fleet.add('b');
  await Promise.all([a.engine.start(), b.engine.start()]);
  for (let i = 0; i < 100; i++) {
    a.index.route('ep0', hashes(i, 4));
    await fleet.run(6);
  }
  await fleet.run(200);
  assert.ok(b.engine.stats.seqGaps > 0, 'lost batches show up as sequence gaps');
  const got = b.index.pairs().length;
  assert.ok(got > 0 && got < 400, `b holds part of a's placements (${got})`);
  // Re-applying the whole stream changes nothing but recency.
  const before = b.index.pairs();
  for (const e of b.index.exportSnapshot()) b.index.importSnapshot([e]);
  assert.deepEqual(b.index.pairs(), before);
  await fleet.stopAll();
});

test('an incompatible peer (fingerprint or block size) is ignored and counted, once logged', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a');
  const odd = fleet.add('odd', { setup: (ix) => (ix.fingerprint = 99) });
  const big = fleet.add('big', { setup: (ix) => (ix.blockSizeTokens = 64) });
  await Promise.all(fleet.replicas.map((r) => r.engine.start()));
  odd.index.route('ep0', hashes(1, 4));
  big.index.route('ep1', hashes(2, 4));
  await fleet.run(20);
  odd.index.route('ep0', hashes(3, 4));
  await fleet.run(20);
  assert.deepEqual(a.index.pairs(), []);
  assert.equal(a.engine.stats.incompatiblePlacements, 3);
  assert.equal(a.logger.count('warn', 'incompatible peer'), 2, 'one line per peer, not per batch');
  await fleet.stopAll();
});

test('remote gauges count until exactly loadStaleMs after the last one; bye drops them at once', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { withIndex: false });
  const b = fleet.add('b', { withIndex: false });
  const c = fleet.add('c', { withIndex: false });
  await Promise.all(fleet.replicas.map((r) => r.engine.start()));
  b.gauges.local = [{ endpoint: 'ep0', requests: 5, tokens: 500 }];
  c.gauges.local = [{ endpoint: 'ep0', requests: 2, tokens: 100 }];
  await fleet.run(60);
  assert.equal(a.gauges.remoteRequests('ep0'), 7);
  // b crashes: no more heartbeats. Its last gauges (sent at some t ≤ now) expire 500 ms after receipt.
  b.link.faults.outage = 'hang';
  const lastB = a.gauges.remote.get('b:00000001')!.expiresAtMs;
  await fleet.run(lastB - fleet.time.now() - 1);
  assert.equal(a.gauges.remoteRequests('ep0'), 7, 'still fresh 1 ms before loadStaleMs');
  await fleet.run(1);
  assert.equal(a.gauges.remoteRequests('ep0'), 2, 'expired at exactly loadStaleMs');
  // c shuts down gracefully: dropped at once.
  await c.engine.stop();
  await fleet.run(5);
  assert.equal(a.gauges.remote.has('c:00000001'), false);
  b.link.faults.outage = 'none';
  await fleet.stopAll();
});

test('Redis down: the publish queue drops the oldest batches at its cap, up=false, then recovers', async () => {
  const fleet = new Fleet();
  const cap = 4096;
  const a = fleet.add('a', { settings: { coalesceMs: 0, maxQueueBytes: cap } });
  const b = fleet.add('b');
  await Promise.all([a.engine.start(), b.engine.start()]);
  a.link.faults.outage = 'hang';
  for (let i = 0; i < 200; i++) {
    a.index.route('ep0', hashes(i, 8));
    await fleet.run(20, 5);
  }
  assert.equal(a.engine.isUp(), false);
  assert.ok(a.engine.stats.dropped.queue_full > 0, 'oldest batches dropped');
  assert.ok(a.engine.stats.maxQueueBytesSeen <= cap, `queue peaked at ${a.engine.stats.maxQueueBytesSeen} ≤ ${cap}`);
  assert.ok(a.link.resets >= 1, 'the watchdog reset the blackholed reader');
  assert.ok(a.events.includes('up=false'));
  a.link.faults.outage = 'none';
  await fleet.run(3000, 10);
  assert.equal(a.engine.isUp(), true);
  assert.equal(a.logger.count('warn', 'transport down'), 1, 'one log line per state change');
  a.index.route('ep9', hashes(999, 3));
  await fleet.run(20);
  assert.equal(b.index.index.blocksOf('ep9'), 3, 'placements flow again without a restart');
  await fleet.stopAll();
});

test('apply runs in CPU-bounded slices and yields between them', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { settings: { coalesceMs: 0, batchMs: 50 } });
  const b = fleet.add('b');
  await Promise.all([a.engine.start(), b.engine.start()]);
  const slicesBefore = b.engine.stats.applySlices;
  for (let i = 0; i < 500; i++) a.index.route(`ep${i % 5}`, hashes(i, 2));
  await fleet.run(100);
  assert.equal(b.engine.stats.appliedPlacements, 500);
  // Each CPU reading advances 0.1 ms and the clock is read after every placement: a 0.5 ms slice holds 5.
  assert.ok(b.engine.stats.applySlices - slicesBefore >= 500 / 5, `${b.engine.stats.applySlices - slicesBefore} slices`);
  await fleet.stopAll();
});

test('a reader catching up asks for about readMaxBytes per read, not readCount entries of any size', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { capacity: 100_000, settings: { coalesceMs: 0 } });
  await a.engine.start();
  for (let i = 0; i < 120; i++) {
    a.index.route(`ep${i % 4}`, hashes(i, 1000)); // one ≈ 8 kB batch each
    await fleet.run(6);
  }
  // A replica starting now replays those batches from the log (no snapshot yet).
  const b = fleet.add('b', { capacity: 100_000 });
  const replies: number[] = [];
  const read = b.link.read.bind(b.link);
  b.link.read = async (afterId, count, blockMs) => {
    const got = await read(afterId, count, blockMs);
    if (got.length > 0) replies.push(got.reduce((n, e) => n + e.payload.byteLength, 0));
    return got;
  };
  await b.engine.start();
  await fleet.run(50);
  assert.deepEqual(b.index.pairs(), a.index.pairs(), 'caught up with everything');
  const limit = b.engine.settings.readMaxBytes;
  assert.ok(replies.length >= 120 * 8000 / limit, `${replies.length} reads`);
  assert.ok(Math.max(...replies) <= limit, `largest read ${Math.max(...replies)} bytes (limit ${limit}; 120 entries would be ≈ 960 kB)`);
  await fleet.stopAll();
});

test('over a slow link, reads grow past readMaxBytes while they come back full, so the reader keeps up', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { capacity: 100_000, settings: { coalesceMs: 0 } });
  const b = fleet.add('b', { capacity: 100_000 });
  // Every read of b's takes a 250 ms round trip.
  const read = b.link.read.bind(b.link);
  b.link.read = (afterId, count, blockMs) => new Promise((resolve) => fleet.time.setTimeout(() => resolve(read(afterId, count, blockMs)), 250));
  await a.engine.start();
  void b.engine.start();
  await fleet.run(3000, 10);
  assert.equal(b.engine.isWarm(), true, 'caught up with a\'s heartbeats and ready');
  // ≈ 8 kB batches at 160/s: 1.3 MB/s, where 32 KiB per 250 ms round trip would carry 128 kB/s.
  for (let i = 0; i < 480; i++) {
    a.index.route(`ep${i % 4}`, hashes(i, 1000));
    await fleet.run(6);
  }
  await fleet.run(2000, 10);
  assert.equal(b.engine.stats.appliedPlacements, 480, 'caught up within 2 s of the last batch');
  assert.deepEqual(b.index.pairs(), a.index.pairs());
  await fleet.stopAll();
});

test('a replica starting 1 s away from the log reads at full speed from its second read', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { settings: { coalesceMs: 0 } });
  await a.engine.start();
  for (let i = 0; i < 300; i++) {
    a.index.route(`ep${i % 4}`, hashes(i, 4)); // small batches, one per 6 ms
    await fleet.run(6);
  }
  const b = fleet.add('b');
  const read = b.link.read.bind(b.link);
  b.link.read = (afterId, count, blockMs) => new Promise((resolve) => fleet.time.setTimeout(() => resolve(read(afterId, count, blockMs)), 1000));
  void b.engine.start();
  // Round trips of 1 s: one entry, then the rest (≈ 340 entries) in one or two reads, then a short read: warm.
  await fleet.run(3500, 10);
  assert.equal(b.engine.isWarm(), true, 'caught up within 3.5 round trips');
  assert.deepEqual(b.index.pairs(), a.index.pairs());
  await fleet.stopAll();
});

test('snapshot + log: a new replica starts warm with the same index and LRU order', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { capacity: 50 });
  await a.engine.start();
  for (let i = 0; i < 30; i++) {
    a.index.route(`ep${i % 3}`, hashes(i, 5));
    await fleet.run(2);
  }
  assert.equal(await a.engine.writeSnapshot(), true);
  // Placements after the snapshot reach the newcomer through the log.
  a.index.route('ep7', hashes(77, 3));
  await fleet.run(20);
  const n = fleet.add('n', { capacity: 50 });
  await n.engine.start();
  assert.equal(n.engine.isWarm(), true);
  assert.equal(n.engine.stats.snapshotsLoaded, 1);
  assert.deepEqual(n.index.pairs(), a.index.pairs());
  for (const ep of ['ep0', 'ep1', 'ep2']) assert.deepEqual(n.index.index.hashesOf(ep), a.index.index.hashesOf(ep), `LRU order of ${ep}`);
  await fleet.stopAll();
});

test('a large endpoint is snapshotted and loaded in pieces, yielding within the slice budget; nothing is lost or reordered', async () => {
  const fleet = new Fleet();
  // 20,000 blocks on one endpoint at 0.3 µs of (virtual) CPU per block exported or imported: 6 ms if done whole.
  const charge = (blocks: number): void => void (fleet.cpu += blocks * 0.0003);
  const a = fleet.add('a', { capacity: 20_000, setup: (ix) => ((ix.snapshotPieceBlocks = 1024), (ix.onExport = charge)) });
  await a.engine.start();
  a.index.route('ep0', hashes(1, 20_000));
  a.index.route('ep1', hashes(2, 10));
  a.index.route('ep0', hashes(1, 3)); // the first blocks become the most recent again
  const before = fleet.cpuAtYield.length;
  assert.equal(await a.engine.writeSnapshot(), true);
  const budget = a.engine.settings.applySliceMs;
  const writing = longestStretch(fleet, before);
  assert.ok(writing <= budget + 1024 * 0.0003 + 0.2, `writing held the loop for ${writing.toFixed(2)} ms of CPU at most between yields`);
  const n = fleet.add('n', { capacity: 20_000, setup: (ix) => (ix.onImport = charge) });
  const loading = fleet.cpuAtYield.length;
  await n.engine.start();
  const loadStretch = longestStretch(fleet, loading);
  assert.ok(loadStretch <= budget + 2048 * 0.0003 + 0.2, `loading held the loop for ${loadStretch.toFixed(2)} ms of CPU at most between yields`);
  assert.equal(n.engine.stats.snapshotsLoaded, 1);
  assert.deepEqual(n.index.index.hashesOf('ep0'), a.index.index.hashesOf('ep0'), 'the same 20,000 blocks in the same LRU order');
  assert.deepEqual(n.index.index.hashesOf('ep1'), a.index.index.hashesOf('ep1'));
  await fleet.stopAll();
});

test('a snapshot of an index in steady state allocates no array buffers: its field buffers are the last snapshot\'s, the index lends its walk arrays', async () => {
  // 4 endpoints × 20,000 blocks: 640 kB of fields. Per snapshot, new arrays per exported piece, a part per piece
  // and the joined field were 3 × that in short-lived array buffers; V8 counts array buffers allocated since the
  // last full collection against the old generation's headroom, and each snapshot of a 250k-entry index started a
  // mark-compact (2–7 ms pauses in bench:replicas-path).
  const fleet = new Fleet();
  const a = fleet.add('a', { capacity: 20_000, setup: (ix) => (ix.snapshotPieceBlocks = 1024) });
  await a.engine.start();
  for (let e = 0; e < 4; e++) a.index.index.add(`ep${e}`, 20_000, hashes(e, 20_000));
  const fieldBytes = 4 * (4 + 8 * 20_000);
  const first = process.memoryUsage().arrayBuffers;
  assert.equal(await a.engine.writeSnapshot(), true);
  const firstGrown = process.memoryUsage().arrayBuffers - first;
  // The first snapshot allocates its field buffers once, sized from the index's hint (not grown piece by piece).
  assert.ok(firstGrown <= 2.25 * fieldBytes, `the first snapshot allocated ${(firstGrown / 1024).toFixed(0)} kB for ${(fieldBytes / 1024).toFixed(0)} kB of fields (and the transport's copy)`);
  a.index.route('ep1', hashes(1, 3)); // a little churn between snapshots
  for (let i = 0; i < 2; i++) {
    const before = process.memoryUsage().arrayBuffers;
    assert.equal(await a.engine.writeSnapshot(), true);
    const grown = process.memoryUsage().arrayBuffers - before;
    // What remains is the memory transport's copy of the fields (Redis copies them into its commands the same way).
    assert.ok(grown <= 1.25 * fieldBytes, `snapshot ${i + 2} allocated ${(grown / 1024).toFixed(0)} kB of array buffers for ${(fieldBytes / 1024).toFixed(0)} kB of fields`);
  }
  // What was written is the index, in LRU order.
  const n = fleet.add('n', { capacity: 20_000 });
  await n.engine.start();
  for (let e = 0; e < 4; e++) assert.deepEqual(n.index.index.hashesOf(`ep${e}`), a.index.index.hashesOf(`ep${e}`), `ep${e}`);
  await fleet.stopAll();
});

test('a snapshot hashed with another block size is refused and counted, not imported', async () => {
  const fleet = new Fleet();
  const a = fleet.add('a', { capacity: 50 });
  await a.engine.start();
  for (let i = 0; i < 6; i++) a.index.route(`ep${i % 3}`, hashes(i, 5));
  await fleet.run(20);
  assert.equal(await a.engine.writeSnapshot(), true);
  // A newcomer hashing 32-token blocks: a's entries would only fill its LRU with blocks it can never match.
  const n = fleet.add('n', { capacity: 50, setup: (ix) => (ix.blockSizeTokens = 32) });
  await n.engine.start();
  assert.equal(n.engine.stats.snapshotsLoaded, 1, 'the snapshot was read');
  assert.deepEqual(n.index.pairs(), [], 'none of its entries imported');
  assert.equal(n.engine.stats.incompatiblePlacements, 3, 'one per snapshot entry (endpoint); the log it covers is not read again');
  assert.equal(n.logger.count('warn', 'incompatible peer'), 1);
  // A compatible newcomer still imports it.
  const m = fleet.add('m', { capacity: 50 });
  await m.engine.start();
  assert.deepEqual(m.index.pairs(), a.index.pairs());
  await fleet.stopAll();
});

test('an unreachable transport at start means ready at once, cold; a blackholed one, within the call timeout', async () => {
  const fleet = new Fleet();
  const down = fleet.add('down', { faults: { outage: 'error' } });
  const hung = fleet.add('hung', { faults: { outage: 'hang' }, settings: { warmupTimeoutMs: 5000, callTimeoutMs: 1000 } });
  void down.engine.start();
  void hung.engine.start();
  await fleet.run(2);
  assert.equal(down.engine.isReady(), true);
  assert.equal(down.engine.isWarm(), false);
  await fleet.run(990, 10);
  assert.equal(hung.engine.isReady(), false);
  await fleet.run(20, 10);
  assert.equal(hung.engine.isReady(), true);
  assert.equal(hung.engine.isWarm(), false);
  down.link.faults.outage = 'none';
  hung.link.faults.outage = 'none';
  await fleet.stopAll();
});

test('a reader stalled past retention reloads the snapshot and counts the gap; an empty restart heals', async () => {
  const fleet = new Fleet(2000);
  const a = fleet.add('a', { settings: { coalesceMs: 0, snapshotIntervalMs: 1000 } });
  const b = fleet.add('b', { settings: { snapshotIntervalMs: 1000 } });
  await Promise.all([a.engine.start(), b.engine.start()]);
  b.link.faults.outage = 'error';
  for (let i = 0; i < 40; i++) {
    a.index.route('ep0', hashes(i, 2));
    await fleet.run(100, 10);
  }
  b.link.faults.outage = 'none';
  await fleet.run(3000, 10);
  assert.equal(b.engine.stats.trimGaps, 1);
  assert.ok(b.engine.stats.snapshotsLoaded >= 1);
  assert.deepEqual(b.index.pairs(), a.index.pairs(), 'the snapshot + log restored every placement');
  assert.equal(b.logger.count('warn', 'trimmed past this replica'), 1);

  fleet.bus.restartEmpty();
  a.index.route('ep5', hashes(555, 4));
  await fleet.run(50);
  assert.equal(b.index.index.blocksOf('ep5'), 4, 'a restarted-empty log is written and read again');
  await fleet.run(1100, 10);
  assert.ok(a.engine.stats.snapshotsWritten + b.engine.stats.snapshotsWritten >= 2, 'a new snapshot within one interval');
  await fleet.stopAll();
});
