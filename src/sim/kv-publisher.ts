// KV events over ZeroMQ exactly as vLLM publishes them (vllm/distributed/kv_events.py): a PUB socket sending
// `[topic, seq (8 bytes big-endian), msgpack batch]` per engine step that produced events, and optionally a
// ROUTER answering replay requests `[identity, "", start_seq]` with every buffered batch from start_seq on —
// `[identity, "", (topic,) seq, payload]` — then `seq = -1` with an empty payload.
//
// The batch is `[ts, events, data_parallel_rank]`; events are positional arrays `[tag, field…]` with trailing
// defaults omitted (vLLM's `array_like`, `omit_defaults`) or vLLM's map form `{type, field…}`. The simulator's
// 53-bit hashes go on the wire spread over 64 bits (`wireHash`), so most exceed 2^53 as real engine hashes do.
//
// Fault knobs: `kv-events-drop-rate` loses a batch on the wire after its seq is assigned (it stays in the replay
// buffer, as a PUB high-water-mark drop would); `kv-events-delay` publishes later (simulated time).

import { Encoder } from '@msgpack/msgpack';
import type { Router, XPublisher } from 'zeromq';
import type { KvEvent, KvEventBatch } from './kv-events.ts';
import type { SimServer, KvStateDump } from './sim-server.ts';
import { SeededRandom } from './rng.ts';

/** The engine hash as sent: the 53-bit sim hash spread over 64 bits (a bijection). */
export function wireHash(h: number): bigint {
  return (BigInt(h) << 11n) | BigInt(h % 2048);
}

const END_SEQ = new Uint8Array(8).fill(0xff);
const encoder = new Encoder({ useBigInt64: true });

function seqFrame(seq: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(seq), false);
  return out;
}

/** Drops trailing null fields, as msgspec's omit_defaults does for positional structs. */
function trimmed(fields: unknown[]): unknown[] {
  let n = fields.length;
  while (n > 1 && (fields[n - 1] === null || fields[n - 1] === undefined)) n--;
  return fields.slice(0, n);
}

function encodeEvent(e: KvEvent, mapForm: boolean): unknown {
  switch (e.type) {
    case 'BlockStored': {
      const hashes = e.block_hashes.map(wireHash);
      const parent = e.parent_block_hash === null ? null : wireHash(e.parent_block_hash);
      const extra = e.extra_keys.some((x) => x !== null) ? e.extra_keys : null;
      if (mapForm) {
        return {
          type: 'BlockStored', block_hashes: hashes, parent_block_hash: parent, token_ids: e.token_ids, block_size: e.block_size,
          lora_id: null, medium: e.medium, lora_name: e.lora_name, extra_keys: extra, group_idx: 0, kv_cache_spec_kind: 'full_attention',
        };
      }
      return trimmed(['BlockStored', hashes, parent, e.token_ids, e.block_size, null, e.medium, e.lora_name, extra]);
    }
    case 'BlockRemoved': {
      const hashes = e.block_hashes.map(wireHash);
      return mapForm ? { type: 'BlockRemoved', block_hashes: hashes, medium: e.medium } : ['BlockRemoved', hashes, e.medium];
    }
    case 'AllBlocksCleared':
      return mapForm ? { type: 'AllBlocksCleared' } : ['AllBlocksCleared'];
  }
}

/** msgpack payload of one batch. */
export function encodeBatch(batch: KvEventBatch, mapForm: boolean): Uint8Array {
  return encoder.encode([batch.ts, batch.events.map((e) => encodeEvent(e, mapForm)), batch.data_parallel_rank]);
}

/** vLLM's bind/connect rule: bind when the address has a wildcard or is ipc/inproc, else connect. */
function shouldBind(address: string): boolean {
  return address.includes('*') || address.includes('::') || address.startsWith('ipc://') || address.startsWith('inproc://');
}

/** `/kv_state` in JSON: hashes as decimal strings of their wire form (JSON cannot carry u64). */
export function kvStateJson(dump: KvStateDump, topic: string): unknown {
  return {
    seq: String(dump.seq),
    block_size: dump.block_size,
    topic,
    incomplete_blocks: dump.incomplete_blocks,
    blocks: dump.blocks.map((b) => ({
      hash: wireHash(b.hash).toString(),
      parent: b.parent === null ? null : wireHash(b.parent).toString(),
      token_ids: b.token_ids,
      lora_name: b.lora_name,
      extra_keys: b.extra_keys,
      medium: b.medium,
      copies: b.copies,
    })),
  };
}

export class KvEventPublisher {
  readonly #sim: SimServer;
  readonly #topic: string;
  readonly #buffer: { seq: number; payload: Uint8Array }[] = [];
  readonly #dropRng: SeededRandom;
  #pub: XPublisher | undefined;
  #router: Router | undefined;
  #unsubscribe: (() => void) | undefined;
  #unRestart: (() => void) | undefined;
  #closed = false;
  /** Addresses actually bound/connected (wildcard ports resolved). */
  endpoint = '';
  replayEndpoint = '';
  /** Batches published / lost on purpose (tests). */
  published = 0;
  dropped = 0;
  /** Current topic subscriptions (an XPUB sees them; on the wire it is a PUB, as vLLM's). */
  subscriptions = 0;

  constructor(sim: SimServer, topic: string) {
    this.#sim = sim;
    this.#topic = topic;
    this.#dropRng = new SeededRandom(sim.options.seed ^ 0x2545f491);
  }

  get topic(): string {
    return this.#topic;
  }

  async start(): Promise<void> {
    const zmq = await import('zeromq');
    const o = this.#sim.options;
    // XPUB: identical to PUB for subscribers, and it reports subscriptions, so tests can wait for one instead of
    // racing ZeroMQ's slow-joiner window.
    const pub = new zmq.XPublisher({ linger: 0, sendHighWaterMark: 100_000 });
    this.#pub = pub;
    if (shouldBind(o.kvEventsEndpoint)) await pub.bind(o.kvEventsEndpoint);
    else pub.connect(o.kvEventsEndpoint);
    this.endpoint = pub.lastEndpoint ?? o.kvEventsEndpoint;
    void (async () => {
      try {
        for await (const [frame] of pub) {
          if (frame !== undefined && frame.length > 0) this.subscriptions += frame[0] === 1 ? 1 : -1;
        }
      } catch {
        // closed
      }
    })();
    if (o.kvEventsReplayEndpoint !== '') {
      const router = new zmq.Router({ linger: 0 });
      this.#router = router;
      await router.bind(o.kvEventsReplayEndpoint);
      this.replayEndpoint = router.lastEndpoint ?? o.kvEventsReplayEndpoint;
      void this.#serveReplay(router);
    }
    this.#unsubscribe = this.#sim.kvEvents.subscribe((batch) => this.#onBatch(batch));
    this.#unRestart = this.#sim.onRestart(() => {
      this.#buffer.length = 0;
    });
  }

  #onBatch(batch: KvEventBatch): void {
    const o = this.#sim.options;
    const payload = encodeBatch(batch, o.kvEventsMapFormat);
    this.#buffer.push({ seq: batch.seq, payload });
    if (this.#buffer.length > o.kvEventsBufferSteps) this.#buffer.shift();
    if (o.kvEventsDropRate > 0 && this.#dropRng.next() * 100 < o.kvEventsDropRate) {
      this.dropped++;
      return;
    }
    const send = (): void => {
      if (this.#closed || this.#pub === undefined) return;
      this.published++;
      // A full PUB queue drops, as vLLM's does; the seq gap tells subscribers.
      this.#pub.send([this.#topic, seqFrame(batch.seq), payload]).catch(() => undefined);
    };
    if (o.kvEventsDelayMs > 0) this.#sim.clock.setTimer(this.#sim.clock.nowMs() + o.kvEventsDelayMs, send);
    else send();
  }

  async #serveReplay(router: Router): Promise<void> {
    try {
      for await (const frames of router) {
        const [identity, , start] = frames as [Buffer, Buffer, Buffer | undefined];
        if (start === undefined || start.length !== 8) continue;
        const from = Number(new DataView(start.buffer, start.byteOffset, 8).getBigUint64(0, false));
        const withTopic = this.#sim.options.kvEventsReplayTopicFrame;
        for (const b of this.#buffer) {
          if (b.seq < from) continue;
          await router.send(withTopic ? [identity, '', this.#topic, seqFrame(b.seq), b.payload] : [identity, '', seqFrame(b.seq), b.payload]);
        }
        await router.send(withTopic ? [identity, '', '', END_SEQ, ''] : [identity, '', END_SEQ, '']);
      }
    } catch {
      // closed
    }
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unRestart?.();
    this.#pub?.close();
    this.#router?.close();
  }
}
