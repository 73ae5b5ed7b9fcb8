import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Encoder } from '@msgpack/msgpack';
import { ManualClock, RecordingLogger } from '../../../../test/support/doubles.ts';
import { EndpointSync, newSyncCounters } from './endpoint-sync.ts';
import { KvEventApplier } from './ingest.ts';
import { KvBlockIndex } from './kv-block-index.ts';
import { RequestKeyer } from './request-keys.ts';
import type { EventTransport, RawMessage } from './zmq-transport.ts';

const enc = new Encoder({ useBigInt64: true });
/** Batch `seq` stores one root block with engine hash 100 + seq. */
const batch = (seq: number): RawMessage => ({
  topic: 'kv@a', seq: BigInt(seq), payload: enc.encode([0, [['BlockStored', [100 + seq], null, [seq, seq, seq, seq], 4]]]),
});

/** A transport driven by the test: `emit` delivers live messages; replay answers from `buffer`. */
class FakeTransport implements EventTransport {
  onMessage: (m: RawMessage) => void = () => undefined;
  buffer: RawMessage[] = [];
  replays: bigint[] = [];
  replay?: (from: bigint) => Promise<RawMessage[]>;
  constructor(withReplay: boolean) {
    if (withReplay) this.replay = (from) => {
      this.replays.push(from);
      return Promise.resolve(this.buffer.filter((m) => m.seq >= from));
    };
  }
  start(onMessage: (m: RawMessage) => void): void {
    this.onMessage = onMessage;
  }
  close(): void {}
  emit(m: RawMessage): void {
    this.buffer.push(m);
    this.onMessage(m);
  }
}

function setup(withReplay: boolean) {
  const index = new KvBlockIndex([{ name: 'gpu', weight: 1 }]);
  const transport = new FakeTransport(withReplay);
  const counters = newSyncCounters();
  const sync = new EndpointSync({
    endpoint: 'a', transport, index, applier: new KvEventApplier(index, new RequestKeyer(4)),
    decodeStats: { unknownTags: 0, unknownFields: 0, malformedEvents: 0 }, counters, logger: new RecordingLogger(), clock: new ManualClock(),
    maxPending: 100, retryCooldownMs: 1000, onBlockSizeMismatch: () => undefined,
  });
  sync.start();
  return { index, transport, counters, sync };
}

describe('EndpointSync', () => {
  it('replays a gap, queueing live batches meanwhile, and applies each batch once', async () => {
    const { index, transport, counters, sync } = setup(true);
    await sync.idle;
    assert.equal(sync.phase, 'SYNCED');
    transport.emit(batch(0));
    transport.buffer.push(batch(1), batch(2)); // lost on the wire
    transport.emit(batch(3));
    assert.equal(sync.phase, 'REPLAYING');
    transport.emit(batch(4)); // arrives during the replay
    transport.emit(batch(3)); // a duplicate
    await sync.idle;
    assert.equal(sync.phase, 'SYNCED');
    assert.equal(sync.lastSeq, 4n);
    assert.deepEqual([...index.engineRefs('a').values()], [1, 1, 1, 1, 1]);
    assert.equal(counters.gaps, 1);
    assert.deepEqual(transport.replays, [0n, 1n]);
  });

  it('an undecodable batch counts as lost and is recovered like a gap; nothing else is dropped', async () => {
    const { index, transport, counters, sync } = setup(true);
    await sync.idle;
    transport.emit(batch(0));
    transport.onMessage({ topic: 'kv@a', seq: 1n, payload: new Uint8Array([0xc1]) }); // 0xc1 is never valid msgpack
    transport.buffer.push(batch(1)); // the engine's buffer holds the good copy
    await sync.idle;
    transport.emit(batch(2));
    await sync.idle;
    assert.equal(counters.malformed, 1);
    assert.equal(sync.phase, 'SYNCED');
    assert.equal(index.engineRefs('a').size, 3);
  });

  it('without replay: DESYNCED on a gap, entries dropped, live events still applied; a restart from seq 0 resyncs', async () => {
    const { index, transport, counters, sync } = setup(false);
    transport.emit(batch(0));
    assert.equal(sync.phase, 'SYNCED');
    transport.emit(batch(2));
    await sync.idle;
    assert.equal(sync.phase, 'DESYNCED');
    assert.match(sync.reason, /gap: expected seq 1, got 2/);
    assert.equal(counters.desyncs, 1);
    assert.deepEqual([...index.engineRefs('a').keys()], ['102'], 'only what followed the gap');
    transport.emit(batch(0)); // the engine restarted
    assert.equal(sync.phase, 'SYNCED');
    assert.equal(counters.restarts, 1);
    assert.deepEqual([...index.engineRefs('a').keys()], ['100']);
  });

  it('a replay that starts above the requested seq (buffer exceeded) is incomplete: DESYNCED', async () => {
    const { transport, sync } = setup(true);
    await sync.idle;
    transport.emit(batch(0));
    transport.buffer = [batch(5), batch(6)];
    transport.emit(batch(7));
    await sync.idle;
    assert.equal(sync.phase, 'DESYNCED');
    assert.match(sync.reason, /incomplete/);
  });
});
