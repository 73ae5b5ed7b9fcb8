/**
 * The scrape HTTP/1.1 client (src/plugins/datalayer/source/metrics-data-source/http-client.ts) against raw
 * TCP/TLS servers on loopback whose bytes each test scripts exactly: body framings (Content-Length, chunked
 * split at every byte, close-delimited), keep-alive reuse and its races, interim responses, and every failure
 * path (timeout, abort, refused, garbage, oversized, unsupported codings, unsolicited bytes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { generateSelfSignedCertificate } from '../../src/server/extproc/tls.ts';
import { ScrapeClient, ScrapeHttpError, type ScrapeConnection } from '../../src/plugins/datalayer/source/metrics-data-source/http-client.ts';
import { within } from '../support/wait.ts';

/** What the scripted server does with one request: write bytes, possibly over time, possibly close. */
type Responder = (socket: Socket, request: string, n: number) => void | Promise<void>;

class RawServer {
  readonly requests: string[] = [];
  connections = 0;
  readonly sockets = new Set<Socket>();
  responder: Responder;
  readonly #server: Server;
  #noSocketWaiters: Array<() => void> = [];

  constructor(responder: Responder, server?: Server) {
    this.responder = responder;
    this.#server = server ?? createServer();
    this.#server.on(server === undefined ? 'connection' : 'secureConnection', (s: Socket) => this.#onSocket(s));
  }

  #onSocket(s: Socket): void {
    this.connections++;
    this.sockets.add(s);
    s.on('close', () => {
      this.sockets.delete(s);
      if (this.sockets.size === 0) for (const w of this.#noSocketWaiters.splice(0)) w();
    });
    s.on('error', () => {});
    let pending = '';
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let at = pending.indexOf('\r\n\r\n'); at !== -1; at = pending.indexOf('\r\n\r\n')) {
        const req = pending.slice(0, at + 4);
        pending = pending.slice(at + 4);
        this.requests.push(req);
        void this.responder(s, req, this.requests.length);
      }
    });
  }

  /** Resolves once every accepted socket has closed on this side (the 'close' events), at once if none is open. */
  whenNoSockets(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise<void>((r) => this.#noSocketWaiters.push(r));
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}${extra}\r\n\r\n${body}`;

function chunked(body: string, sizes: number[]): string {
  let out = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  let i = 0;
  for (let k = 0; i < body.length; k++) {
    const n = Math.min(sizes[k % sizes.length] as number, body.length - i);
    out += `${n.toString(16)}${k % 2 ? ';ext=1' : ''}\r\n${body.slice(i, i + n)}\r\n`;
    i += n;
  }
  return `${out}0\r\nX-Trailer: yes\r\n\r\n`;
}

const text = (c: ScrapeConnection): string => c.buf.toString('utf8', c.bodyStart, c.bodyEnd);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    const err = e as ScrapeHttpError & { code?: string };
    assert.equal(err.code, code, `${err.message}`);
    if (re) assert.match(err.message, re);
    return true;
  });
}

function setup(t: { after: (fn: () => Promise<void> | void) => void }, responder: Responder, maxBodyBytes = 1 << 20) {
  const server = new RawServer(responder);
  const client = new ScrapeClient({ maxBodyBytes, accept: 'text/plain', tls: undefined });
  t.after(async () => {
    client.close();
    await server.stop();
  });
  return { server, client };
}

test('Content-Length bodies over one kept-alive connection; request line and headers', async (t) => {
  const { server, client } = setup(t, (s, _r, n) => void s.write(ok(`body ${n} ✓`)));
  const hp = await server.start();
  for (let i = 1; i <= 3; i++) {
    const c = await client.get('e', hp, '/metrics', 1000);
    assert.equal(c.status, 200);
    assert.equal(text(c), `body ${i} ✓`);
  }
  assert.equal(server.connections, 1);
  assert.equal(client.stats.copiedReads, 0, 'every read landed in place');
  assert.ok(client.stats.reads >= 3);
  assert.equal(server.requests[0], `GET /metrics HTTP/1.1\r\nHost: ${hp}\r\nUser-Agent: endpoint-picker\r\nAccept: text/plain\r\n\r\n`);
  await client.get('e', hp, '/other', 1000);
  assert.match(server.requests[3] as string, /^GET \/other HTTP\/1\.1\r\n/);
});

test('chunked bodies (extensions, trailers) delivered one byte at a time, then reused', async (t) => {
  const body = 'vllm:num_requests_running 3\n'.repeat(200);
  const { server, client } = setup(t, async (s, _r, n) => {
    const wire = chunked(body, n === 1 ? [1, 7, 300, 4096] : [5000]);
    if (n === 1) {
      for (let i = 0; i < wire.length; i += 1 + (i % 3)) {
        s.write(wire.slice(i, i + 1 + (i % 3)));
        if (i % 64 === 0) await tick();
      }
    } else s.write(wire);
  });
  const hp = await server.start();
  assert.equal(text(await client.get('e', hp, '/metrics', 5000)), body);
  assert.equal(text(await client.get('e', hp, '/metrics', 5000)), body);
  assert.equal(server.connections, 1);
  assert.equal(client.stats.copiedReads, 0, 'many small reads, each appended in place');
});

test('a large body in many reads, then a small one', async (t) => {
  const big = 'x'.repeat(3 * 1024 * 1024 + 17);
  const { server, client } = setup(t, (s, _r, n) => void s.write(ok(n === 1 ? big : 'small')), 8 << 20);
  const hp = await server.start();
  assert.equal(text(await client.get('e', hp, '/metrics', 5000)), big);
  const c = await client.get('e', hp, '/metrics', 5000);
  assert.equal(text(c), 'small');
  assert.ok(c.buf.length < 1024 * 1024, 'the receive buffer shrank back after the big response');
  assert.equal(client.stats.copiedReads, 1, 'only the read Node had already aimed at the replaced buffer was copied');
});

test('close-delimited, Connection: close and HTTP/1.0 responses end the connection; the next request reconnects', async (t) => {
  const { server, client } = setup(t, (s, _r, n) => {
    if (n === 1) s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close');
    else if (n === 2) s.write(ok('closing', '\r\nConnection: close'));
    else if (n === 3) s.write('HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!');
    else if (n === 4) s.write('HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nalive');
    else s.write(ok('last'));
  });
  const hp = await server.start();
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'until close');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'closing');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'old!');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'alive');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'last');
  assert.equal(server.connections, 4, 'requests 1, 2 and 3 each closed their connection; 4 kept it for 5');
});

test('interim 1xx responses are skipped; 204 has no body; non-200 bodies are read and the connection kept', async (t) => {
  const { server, client } = setup(t, (s, _r, n) => {
    if (n === 1) s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n' + ok('after interim'));
    else if (n === 2) s.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (n === 3) s.write('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!');
    else s.write(ok('fine'));
  });
  const hp = await server.start();
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'after interim');
  const c204 = await client.get('e', hp, '/', 1000);
  assert.deepEqual([c204.status, text(c204)], [204, '']);
  const c500 = await client.get('e', hp, '/', 1000);
  assert.deepEqual([c500.status, text(c500)], [500, 'oops!']);
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'fine');
  assert.equal(server.connections, 1);
});

test('a kept-alive socket the server closed while idle is replaced', async (t) => {
  const { server, client } = setup(t, (s) => void s.write(ok('hi')));
  const hp = await server.start();
  const c = await client.get('e', hp, '/', 1000);
  const seen = c.whenSocketClosed();
  for (const s of server.sockets) s.end(); // server idle timeout
  await within(seen, 'the client to see the idle close');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'hi');
  assert.equal(server.connections, 2);
  assert.equal(server.requests.length, 2, 'nothing was sent on the closed socket (no retry needed)');
});

test('a reused socket closed before any response byte is retried once on a new one; a fresh one is not', async (t) => {
  let closeNext = 0;
  const { server, client } = setup(t, (s) => {
    if (closeNext > 0) {
      closeNext--;
      s.destroy(); // the idle-close race: the request reached a socket the server was closing
    } else s.write(ok('hi'));
  });
  const hp = await server.start();
  await client.get('e', hp, '/', 1000);
  closeNext = 1;
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'hi', 'retried on a new connection');
  assert.equal(server.connections, 2);
  closeNext = 2; // reused socket fails, and so does the retry: no second retry
  await rejectsWith(client.get('e', hp, '/', 1000), 'ECONNRESET');
  closeNext = 1; // the socket was dropped, so this request goes out on a fresh one: no retry
  await rejectsWith(client.get('e', hp, '/', 1000), 'ECONNRESET');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'hi', 'recovers');
});

test('a response cut mid-body fails without retry', async (t) => {
  const { server, client } = setup(t, (s, _r, n) => {
    if (n === 2) s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort');
    else s.write(ok('hi'));
  });
  const hp = await server.start();
  await client.get('e', hp, '/', 1000);
  await rejectsWith(client.get('e', hp, '/', 1000), 'ECONNRESET', /mid-response/);
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'hi');
});

test('timeout, abort, refused: rejected with a code, the socket dropped, and the next request works', async (t) => {
  let hang = true;
  const { server, client } = setup(t, (s) => {
    if (!hang) s.write(ok('back'));
  });
  const hp = await server.start();
  const t0 = Date.now();
  await rejectsWith(client.get('e', hp, '/', 60), 'ETIMEDOUT', /timed out after 60 ms/);
  assert.ok(Date.now() - t0 >= 55 && Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
  const ac = new AbortController();
  const p = client.get('e', hp, '/', 10_000, ac.signal);
  while (server.requests.length < 2) await tick();
  ac.abort(new Error('stop'));
  await rejectsWith(p, 'EABORTED');
  await rejectsWith(client.get('e', hp, '/', 1000, ac.signal), 'EABORTED'); // already aborted
  hang = false;
  assert.equal(text(await client.get('e', hp, '/', 1000, new AbortController().signal)), 'back');
  assert.equal(server.connections, 3, 'the timed-out and the aborted sockets were not reused');
  await server.stop();
  await assert.rejects(client.get('e', hp, '/', 1000), (e: unknown) => (e as { code?: string }).code === 'ECONNREFUSED');
});

test('one request per connection at a time; invalid host', async (t) => {
  const { server, client } = setup(t, () => {});
  const hp = await server.start();
  const first = client.get('e', hp, '/', 200);
  await rejectsWith(client.get('e', hp, '/', 200), 'EBUSY');
  await rejectsWith(first, 'ETIMEDOUT');
  await rejectsWith(client.get('x', 'no-port', '/', 200), 'EINVAL');
});

test('protocol errors: garbage, bad framing, unsupported codings, oversized bodies', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['<html>502</html>\r\n\r\n', 'EPROTO', /not an HTTP\/1\.x response/],
    ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', 'EPROTO', /malformed header/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n', 'EPROTO', /invalid Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 'EPROTO', /conflicting/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'EPROTO', /unsupported Transfer-Encoding/],
    ['HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx', 'EPROTO', /unsupported Content-Encoding/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'EPROTO', /invalid chunk size/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX', 'EPROTO', /not followed by CRLF/],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', 'EPROTO', /101/],
    [`HTTP/1.1 200 OK\r\nContent-Length: ${2048}\r\n\r\n`, 'ETOOBIG', /larger than 1024/],
    [`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n${'a'.repeat(1024)}\r\n1\r\nb\r\n0\r\n\r\n`, 'ETOOBIG', /larger than 1024/],
    [`HTTP/1.1 200 OK\r\n\r\n${'a'.repeat(2000)}`, 'ETOOBIG', /larger than 1024/],
    [`HTTP/1.1 200 OK\r\n${'X-Pad: y\r\n'.repeat(8000)}`, 'EPROTO', /header section too large/],
  ];
  let current = '';
  const { server, client } = setup(t, (s) => void s.write(current), 1024);
  const hp = await server.start();
  for (const [wire, code, re] of cases) {
    current = wire;
    await rejectsWith(client.get('e', hp, '/', 1000), code, re);
  }
  current = ok('recovered');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'recovered');
  assert.equal(server.connections, cases.length + 1, 'every protocol error dropped its connection');
});

test('unsolicited bytes on an idle connection and bytes past the body drop the connection, not the next request', async (t) => {
  const { server, client } = setup(t, (s, _r, n) => {
    if (n === 1) s.write(ok('first') + 'HTTP/1.1 200 OK\r\n'); // trailing garbage after the body
    else s.write(ok(`again ${n}`));
  });
  const hp = await server.start();
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'first');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'again 2');
  assert.equal(server.connections, 2);
  for (const s of server.sockets) s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'); // nobody asked
  // Only the client closes these sockets: once the server sees them closed, the client has dropped its connection.
  await within(server.whenNoSockets(), 'the client to drop the connection');
  assert.equal(text(await client.get('e', hp, '/', 1000)), 'again 3');
  assert.equal(server.connections, 3);
});

test('a changed host:port for the same key reconnects; drop closes', async (t) => {
  const a = setup(t, (s) => void s.write(ok('A')));
  const b = new RawServer((s) => void s.write(ok('B')));
  t.after(() => b.stop());
  const hpA = await a.server.start();
  const hpB = await b.start();
  assert.equal(text(await a.client.get('e', hpA, '/', 1000)), 'A');
  assert.equal(text(await a.client.get('e', hpB, '/', 1000)), 'B');
  await within(a.server.whenNoSockets(), 'the old connection to close');
  assert.equal(b.sockets.size, 1);
  a.client.drop('e');
  await within(b.whenNoSockets(), 'drop to close the connection');
});

test('TLS: verification skipped on request, enforced otherwise', async (t) => {
  const { certPem, keyPem } = await generateSelfSignedCertificate(2048);
  const server = new RawServer((s) => void s.write(ok('secure')), createTlsServer({ cert: certPem, key: keyPem }));
  const hp = await server.start();
  const insecure = new ScrapeClient({ maxBodyBytes: 1024, accept: '*/*', tls: { rejectUnauthorized: false } });
  const strict = new ScrapeClient({ maxBodyBytes: 1024, accept: '*/*', tls: { rejectUnauthorized: true } });
  t.after(async () => {
    insecure.close();
    strict.close();
    await server.stop();
  });
  assert.equal(text(await insecure.get('e', hp, '/', 2000)), 'secure');
  assert.equal(text(await insecure.get('e', hp, '/', 2000)), 'secure');
  assert.equal(server.connections, 1);
  await assert.rejects(strict.get('e', hp, '/', 2000), /self[- ]signed|certificate/i);
});
