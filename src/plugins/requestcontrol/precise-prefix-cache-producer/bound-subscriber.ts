/**
 * llm-d's "global socket" mode: the EPP *binds* one SUB socket (`kvEventsConfig.zmqEndpoint: tcp://*:5557`) and
 * every engine's PUB connects to it (vLLM connects when its `--kv-events-config` endpoint has no wildcard). One
 * socket carries every endpoint's stream, so messages are routed by their topic, llm-d's `kv@<ip>:<port>@<model>`:
 * the `<ip>:<port>` part names the pool endpoint (its inference address). Each endpoint gets a virtual
 * `EventTransport` over the shared socket; there is no replay in this mode (engines dial in, the EPP cannot dial
 * their replay sockets), so a gap goes straight to the dump or DESYNCED.
 */
import type { Subscriber } from 'zeromq';
import { topicHostPort } from './kv-events.ts';
import { loadZmq, parseLiveFrames, type EventTransport, type RawMessage } from './zmq-transport.ts';

interface Sink {
  readonly onMessage: (m: RawMessage) => void;
}

export class BoundSubscriber {
  readonly address: string;
  readonly #topicFilter: string;
  readonly #sinks = new Map<string, Sink>();
  #sub: Subscriber | undefined;
  #started = false;
  #closed = false;
  /** Messages whose topic names no known endpoint, or whose framing is wrong (counted for metrics and tests). */
  unroutable = 0;
  /** Why the socket failed to bind or stopped, if it did. */
  failure: string | undefined;

  readonly #onFailure: (message: string) => void;

  constructor(address: string, topicFilter: string, onFailure: (message: string) => void) {
    this.address = address;
    this.#topicFilter = topicFilter;
    this.#onFailure = onFailure;
  }

  /** A transport for the endpoint serving at `hostPort` (as it appears in the engines' topics). */
  transportFor(hostPort: string): EventTransport {
    return {
      start: (onMessage) => {
        this.#sinks.set(hostPort, { onMessage });
        this.#start();
      },
      close: () => {
        this.#sinks.delete(hostPort);
      },
    };
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    void loadZmq().then(async (zmq) => {
      if (this.#closed) return;
      const sub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 100_000 });
      this.#sub = sub;
      await sub.bind(this.address);
      sub.subscribe(this.#topicFilter);
      for await (const frames of sub) {
        const m = parseLiveFrames(frames);
        if (typeof m === 'string') {
          this.unroutable++;
          continue;
        }
        const hp = topicHostPort(m.topic);
        const sink = hp === undefined ? undefined : this.#sinks.get(hp);
        if (sink === undefined) this.unroutable++;
        else sink.onMessage(m);
      }
    }).catch((err: unknown) => {
      if (this.#closed) return;
      this.failure = `KV event socket ${this.address}: ${(err as Error).message}`;
      this.#onFailure(this.failure);
    });
  }

  close(): void {
    this.#closed = true;
    this.#sinks.clear();
    this.#sub?.close();
  }
}
