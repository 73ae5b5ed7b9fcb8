/** Test helpers for the data layer: a programmable fake model server, a plugin handle, waiting helpers. */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Clock, Logger, PluginHandle } from '../../src/framework/plugin.ts';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { PluginMetricSources } from '../../src/runtime/plugin-metrics.ts';
import { ManualClock, RecordingLogger } from '../support/doubles.ts';

export { ManualClock, RecordingLogger } from '../support/doubles.ts';

export function testHandle(logger: Logger = new RecordingLogger(), clock: Clock = new ManualClock()): PluginHandle {
  return {
    logger,
    clock,
    random: { next: () => 0.5 },
    plugin: () => undefined,
    endpoints: () => [],
    inflight: new InFlightTracker(), metrics: new PluginMetricSources(),
  };
}

export type FakeBehaviour =
  | { readonly kind: 'ok'; readonly body: string }
  | { readonly kind: 'status'; readonly status: number; readonly body?: string }
  /** Accept the request but never answer (until the behaviour changes or the server stops). */
  | { readonly kind: 'hang' };

/**
 * A fake model server `/metrics` endpoint on 127.0.0.1:0. `behaviour` can be switched at any time; `hits`
 * counts requests; `down()` closes the listener and open sockets (connection refused), `up()` rebinds the
 * same port.
 */
export class FakeModelServer {
  behaviour: FakeBehaviour;
  hits = 0;
  readonly paths: string[] = [];
  #server: Server;
  #port = 0;
  readonly #sockets = new Set<Socket>();
  readonly #hanging = new Set<ServerResponse>();

  constructor(behaviour: FakeBehaviour) {
    this.behaviour = behaviour;
    this.#server = this.#create();
  }

  #create(): Server {
    const server = createServer((req, res) => {
      this.hits++;
      this.paths.push(req.url ?? '');
      const b = this.behaviour;
      if (b.kind === 'ok') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(b.body);
      } else if (b.kind === 'status') {
        res.writeHead(b.status, { 'content-type': 'text/plain' });
        res.end(b.body ?? 'error');
      } else {
        this.#hanging.add(res);
        res.on('close', () => this.#hanging.delete(res));
      }
    });
    server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    return server;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(this.#port, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
    return this.hostPort;
  }

  get hostPort(): string {
    return `127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** Stops listening and resets every connection. */
  async down(): Promise<void> {
    for (const r of this.#hanging) r.destroy();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    this.#server = this.#create();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.#server.listening) await this.down();
  }
}

/**
 * Resolves when `predicate()` holds, re-checking whenever `subscribe` reports a change (an event, not a
 * timer). Rejects if nothing satisfies it within `timeoutMs` (a safety net against hanging tests only).
 */
export function waitFor(
  subscribe: (onChange: () => void) => () => void,
  predicate: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for: ${what}`));
    }, timeoutMs);
    const off = subscribe(() => {
      if (predicate()) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

/**
 * Resolves once `predicate()` holds, re-checking after each turn of the event loop (for conditions that
 * depend on socket I/O completing, which has no event of its own to subscribe to). Bounded.
 */
export async function eventually(predicate: () => boolean, what: string, turns = 200_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (predicate()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}
