/**
 * Hostile-client rigs: a scriptable fake model server (each test decides how it misbehaves) and an EPP running
 * the embedded gateway in front of it, all on loopback with ephemeral ports and short, test-chosen limits.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { fixedStore, startTestEpp } from '../support/epp.ts';

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A model server whose behaviour per request is `handler`; records every request it saw. */
export class FakeUpstream {
  readonly seen: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }> = [];
  handler: UpstreamHandler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  modelsHandler: ((res: ServerResponse) => void) | undefined;
  readonly #server: http.Server;
  port = 0;

  constructor() {
    this.#server = http.createServer((req, res) => {
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      if (req.method === 'GET' && req.url === '/v1/models') {
        if (this.modelsHandler) return this.modelsHandler(res);
        return void res.writeHead(404).end();
      }
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => this.handler(req, res, Buffer.concat(parts)));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export interface GatewayUnderTest {
  readonly epp: RunningEpp;
  readonly upstream: FakeUpstream;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** EPP (gateway only, random picker) in front of one FakeUpstream. `endpoints` overrides the pool. */
export async function startGateway(options: Parameters<typeof startTestEpp>[0] & { endpoints?: string[] } = {}): Promise<GatewayUnderTest> {
  const upstream = await new FakeUpstream().start();
  const { endpoints, ...rest } = options;
  const epp = await startTestEpp({
    extProc: false,
    gateway: { port: 0 },
    store: fixedStore(endpoints ?? [`127.0.0.1:${upstream.port}`]),
    shutdownGraceMs: 100,
    ...rest,
  });
  const port = epp.gatewayPort as number;
  return {
    epp,
    upstream,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await epp.close();
      await upstream.close();
    },
  };
}

/** A raw TCP connection to the gateway; resolves `closed` when the server closes it, with what it answered. */
export function rawConnection(port: number): { socket: net.Socket; closed: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  return { socket, closed };
}

export const chat = (model = 'm1', stream = false): string => JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] });

export async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: r.status, text: await r.text(), headers: r.headers };
}
