import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { END_SEQ, KvEventDecodeError, decodeBatch, readSeq, topicHostPort, toHash64, writeSeq, type DecodeStats } from './kv-events.ts';

interface Fixture {
  name: string;
  hex: string;
  expect: { error?: string; ts?: number; dpRank?: number | null; events?: unknown[]; stats?: Partial<DecodeStats> };
}
const fixtures = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/kv-events/golden.json', import.meta.url), 'utf8'),
) as Fixture[];

/** bigint → decimal string, so expectations stay plain JSON. */
const plain = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint32Array ? Array.from(x) : x)));

describe('KV event decoder (golden msgpack fixtures)', () => {
  for (const f of fixtures) {
    it(f.name, () => {
      const stats: DecodeStats = { unknownTags: 0, unknownFields: 0, malformedEvents: 0 };
      const payload = Buffer.from(f.hex, 'hex');
      if (f.expect.error !== undefined) {
        assert.throws(() => decodeBatch('kv@x', 0n, payload, stats), (e: unknown) => e instanceof KvEventDecodeError && e.message.includes(f.expect.error as string));
        return;
      }
      const b = decodeBatch('kv@10.0.0.1:8000@m', 42n, payload, stats);
      assert.equal(b.seq, 42n);
      assert.equal(b.ts, f.expect.ts);
      assert.equal(b.dpRank, f.expect.dpRank);
      assert.deepEqual(plain(b.events), f.expect.events);
      for (const [k, v] of Object.entries(f.expect.stats ?? {})) assert.equal(stats[k as keyof DecodeStats], v, k);
    });
  }

  it('counts unknown map fields and extra positional fields instead of failing', () => {
    const stats: DecodeStats = { unknownTags: 0, unknownFields: 0, malformedEvents: 0 };
    const f = fixtures.find((x) => x.name.startsWith('map-form'))!;
    decodeBatch('t', 0n, Buffer.from(f.hex, 'hex'), stats);
    assert.equal(stats.unknownFields, 1);
  });

  it('keeps 64-bit hashes exact (never a lossy JS number)', () => {
    assert.equal(toHash64(2 ** 53 + 2), 9007199254740994n);
    assert.equal(toHash64(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])), 0x0203040506070809n);
    assert.equal(toHash64(-1n), END_SEQ);
  });

  it('reads and writes 8-byte big-endian sequence frames, END_SEQ as all ones', () => {
    assert.equal(readSeq(writeSeq(258n)), 258n);
    assert.deepEqual([...writeSeq(258n)], [0, 0, 0, 0, 0, 0, 1, 2]);
    assert.equal(readSeq(new Uint8Array(8).fill(0xff)), END_SEQ);
    assert.throws(() => readSeq(new Uint8Array(4)), /4 bytes, expected 8/);
  });

  it("routes by llm-d's topic convention kv@<ip>:<port>@<model>: the <ip>:<port> part, model optional", () => {
    assert.equal(topicHostPort('kv@10.0.0.1:8000@Qwen/Qwen3-32B'), '10.0.0.1:8000');
    assert.equal(topicHostPort('kv@[fd00::1]:8000@org/model@rev'), '[fd00::1]:8000');
    assert.equal(topicHostPort('kv@10.0.0.1:8000'), '10.0.0.1:8000');
    assert.equal(topicHostPort('kv@@m'), undefined);
    assert.equal(topicHostPort('kv'), undefined);
    assert.equal(topicHostPort(''), undefined);
  });
});
