/**
 * ZeroMQ transport of one endpoint's KV events, as vLLM publishes them: a SUB socket dialled to the engine's
 * PUB (`--kv-events-config endpoint`, frames `[topic, seq, payload]`) and, when the engine has a
 * `replay_endpoint`, a DEALER to its ROUTER for replay: send `["", start_seq]`, receive
 * `["", seq, payload]` (vLLM < 0.26, SGLang) or `["", topic, seq, payload]` (vLLM ≥ 0.26) per buffered
 * batch, ending with seq −1 and an empty payload.
 *
 * `zeromq` (a prebuilt N-API addon) is imported lazily, so an EPP that never configures precise routing never
 * loads it.
 */
import type { Dealer, Subscriber } from 'zeromq';
import { END_SEQ, readSeq, writeSeq } from './kv-events.ts';

export interface RawMessage {
  readonly topic: string;
  readonly seq: bigint;
  readonly payload: Uint8Array;
}

export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayError';
  }
}

/** What the sync state machine needs from a transport (a fake in unit tests, ZeroMQ for real). */
export interface EventTransport {
  /** Starts receiving. `onMalformed` gets messages whose framing is wrong (counted; their seq is lost). */
  start(onMessage: (m: RawMessage) => void, onMalformed: (reason: string) => void): void;
  /** Buffered batches with seq ≥ fromSeq, in order; throws `ReplayError` on timeout or bad framing. */
  replay?: (fromSeq: bigint) => Promise<RawMessage[]>;
  close(): void;
}

type ZmqModule = typeof import('zeromq');
let zmqModule: Promise<ZmqModule> | undefined;
/** Loads `zeromq` once; rejects with a clear message when the native addon cannot load. */
export function loadZmq(): Promise<ZmqModule> {
  zmqModule ??= import('zeromq').catch((err: unknown) => {
    zmqModule = undefined;
    throw new Error(`the zeromq package could not be loaded (${(err as Error).message}); precise prefix routing over ZeroMQ needs it`);
  });
  return zmqModule;
}

const decoder = new TextDecoder();

/** One live PUB message `[topic, seq, payload]`, or why its framing is wrong. */
export function parseLiveFrames(frames: readonly Uint8Array[]): RawMessage | string {
  if (frames.length !== 3) return `message has ${frames.length} frames, expected 3 [topic, seq, payload]`;
  let seq: bigint;
  try {
    seq = readSeq(frames[1] as Uint8Array);
  } catch (err) {
    return (err as Error).message;
  }
  return { topic: decoder.decode(frames[0]), seq, payload: frames[2] as Uint8Array };
}

export interface ZmqTransportOptions {
  /** PUB address to dial, e.g. `tcp://10.0.0.5:5557`. */
  readonly pubAddress: string;
  /** ROUTER address for replay, or undefined. */
  readonly replayAddress?: string | undefined;
  /** SUB topic prefix (`kv@` in llm-d's convention; "" = everything). */
  readonly topicFilter: string;
  /** Idle timeout of one replay attempt (no frame for this long = failure). */
  readonly replayIdleTimeoutMs: number;
  /** Cap on batches accepted from one replay (vLLM buffers 10,000). */
  readonly maxReplayBatches: number;
}

export class ZmqTransport implements EventTransport {
  readonly #o: ZmqTransportOptions;
  #sub: Subscriber | undefined;
  #closed = false;
  replay?: (fromSeq: bigint) => Promise<RawMessage[]>;

  constructor(o: ZmqTransportOptions) {
    this.#o = o;
    if (o.replayAddress !== undefined) this.replay = (from) => this.#replay(from);
  }

  start(onMessage: (m: RawMessage) => void, onMalformed: (reason: string) => void): void {
    void loadZmq().then(async (zmq) => {
      if (this.#closed) return;
      const sub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 100_000 });
      this.#sub = sub;
      sub.connect(this.#o.pubAddress);
      sub.subscribe(this.#o.topicFilter);
      try {
        for await (const frames of sub) {
          const m = parseLiveFrames(frames);
          if (typeof m === 'string') onMalformed(m);
          else onMessage(m);
        }
      } catch (err) {
        if (!this.#closed) onMalformed(`subscriber stopped: ${(err as Error).message}`);
      }
    }, (err: unknown) => onMalformed((err as Error).message));
  }

  async #replay(fromSeq: bigint): Promise<RawMessage[]> {
    const zmq = await loadZmq();
    const dealer: Dealer = new zmq.Dealer({ linger: 0, receiveTimeout: this.#o.replayIdleTimeoutMs });
    try {
      dealer.connect(this.#o.replayAddress as string);
      await dealer.send([new Uint8Array(0), writeSeq(fromSeq)]);
      const out: RawMessage[] = [];
      for (;;) {
        let frames: Buffer[];
        try {
          frames = await dealer.receive();
        } catch (err) {
          throw new ReplayError(`no replay frame within ${this.#o.replayIdleTimeoutMs} ms (${(err as Error).message})`);
        }
        // [empty delimiter, (topic,) seq, payload]
        if (frames.length < 3 || frames.length > 4 || (frames[0] as Buffer).length !== 0) {
          throw new ReplayError(`replay message has ${frames.length} frames, expected ["", (topic,) seq, payload]`);
        }
        const withTopic = frames.length === 4;
        const seq = readSeq(frames[withTopic ? 2 : 1] as Uint8Array);
        if (seq === END_SEQ) return out;
        if (out.length >= this.#o.maxReplayBatches) throw new ReplayError(`replay exceeded ${this.#o.maxReplayBatches} batches`);
        out.push({ topic: withTopic ? decoder.decode(frames[1]) : '', seq, payload: frames[withTopic ? 3 : 2] as Uint8Array });
      }
    } finally {
      dealer.close();
    }
  }

  close(): void {
    this.#closed = true;
    this.#sub?.close();
  }
}
