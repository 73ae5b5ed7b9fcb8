/**
 * A minimal keep-alive HTTP/1.1 GET client for scraping `/metrics`, one connection per endpoint.
 *
 * Why not a library: every Node HTTP client (undici, node:http, fetch) reads its socket through the
 * `net.Socket` stream path — a freshly allocated Buffer per read, pushed through `Readable` and emitted as
 * `'data'`. At 2000 scrapes/s that path, not HTTP parsing, is most of the client's cost. Measured on the
 * scrape benchmark's fleet (2 vCPU VM, same run, bare GETs of a 28 KB body, nothing parsed): undici
 * `dispatch` 18–20 % of a core, node:http with a keep-alive Agent 27–30 %, a socket read via `'data'` events
 * 15–20 %, the same socket with `onread` (reads land in one preallocated buffer, no stream machinery)
 * 6.5–7.5 %. No client library exposes `onread`, hence this file. `onread` takes a function that returns the
 * buffer for the next read (Node calls it right after each read), so every read lands directly in the
 * connection's receive buffer where the response is assembled: no copy of the body in user space. It is deliberately small: GET only, no
 * pipelining, no redirects, no compression (we send no Accept-Encoding and refuse a Content-Encoding).
 *
 * What it does handle: Content-Length, chunked (with extensions and trailers) and close-delimited bodies;
 * 1xx interim responses; `Connection: close` and HTTP/1.0; keep-alive reuse, with one retry on a fresh
 * socket when a reused one turns out to be closed by the server before any response byte (the classic
 * idle-timeout race); a deadline per request (connect + response), checked by one sweep timer per client;
 * abort through an `AbortSignal`; a body size limit; TLS (`node:tls`, same code path). Any protocol error
 * destroys the socket; the next request connects again.
 *
 * Results are views: the body is `buf[bodyStart, bodyEnd)` of the connection's own receive buffer, valid until
 * the next request on that connection. Callers parse it synchronously and keep nothing that points into it.
 *
 * Why one file: a connection's parser state (status line, headers, chunked decoding) lives in the receive buffer
 * it reads into; splitting the parser from the socket would add a copy or an interface on the hot path.
 */
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** Error with a stable code: `ETIMEDOUT`, `EABORTED`, `EPROTO` (bad response), `ETOOBIG`, or a socket code. */
export class ScrapeHttpError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScrapeHttpError';
    this.code = code;
  }
}

export interface ScrapeClientOptions {
  /** Use TLS; `rejectUnauthorized: false` skips certificate verification. Undefined = plain TCP. */
  readonly tls?: { readonly rejectUnauthorized: boolean } | undefined;
  /** Larger bodies fail the request with `ETOOBIG`. */
  readonly maxBodyBytes: number;
  /** Value of the Accept header. */
  readonly accept: string;
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE_BYTES = 4 * 1024;
const INITIAL_BUFFER_BYTES = 32 * 1024;
/** A connection whose buffer grew past this for one huge response gets a small one again afterwards. */
const SHRINK_ABOVE_BYTES = 1024 * 1024;

/** Reads are offered at least this much room (the buffer grows before a read otherwise). */
const MIN_READ_BYTES = 16 * 1024;
/** Read target for sockets the connection no longer uses (their bytes are dropped). */
const DISCARD = Buffer.allocUnsafe(4 * 1024);

const CR = 13;
const LF = 10;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

const enum Phase {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  ChunkTrailer,
  Close,
}

/** Splits `host:port` / `[v6]:port`. */
function splitHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  const port = Number(hostPort.slice(colon + 1));
  let host = hostPort.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new ScrapeHttpError('EINVAL', `invalid metrics host '${hostPort}' (want host:port)`);
  }
  return { host, port };
}

/**
 * One keep-alive connection to one `host:port`, one request at a time. Created and owned by `ScrapeClient`.
 */
export class ScrapeConnection {
  /** Result of the last completed request (see the file header: a view, valid until the next request). */
  status = 0;
  buf: Buffer = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
  bodyStart = 0;
  bodyEnd = 0;

  readonly hostPort: string;
  readonly #client: ScrapeClient;
  readonly #host: string;
  readonly #port: number;
  #socket: Socket | undefined;
  /** Requests sent on the current socket (a reused socket may retry once, see header). */
  #sentOnSocket = 0;
  #request: Buffer | undefined;
  #requestPath = '';

  // In-flight request state.
  #resolve: ((c: ScrapeConnection) => void) | undefined;
  #reject: ((e: Error) => void) | undefined;
  #deadline = 0;
  #timeoutMs = 0;
  #retried = false;
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => {
    if (this.#resolve !== undefined) this.#fail(new ScrapeHttpError('EABORTED', 'aborted', { cause: this.#signal?.reason }), false);
  };

  // Response parser state.
  #phase = Phase.Idle;
  #len = 0;
  #scan = 0;
  #keepAlive = true;
  #contentEnd = 0;
  #chunkLeft = 0;
  #pos = 0;

  constructor(client: ScrapeClient, hostPort: string) {
    this.#client = client;
    this.hostPort = hostPort;
    const { host, port } = splitHostPort(hostPort);
    this.#host = host;
    this.#port = port;
  }

  get busy(): boolean {
    return this.#resolve !== undefined;
  }

  /**
   * Resolves once the socket this connection holds now has closed and been let go (at once when it holds none),
   * so the next request connects anew. For tests that must know the client has seen a close (e.g. a server's
   * idle close) before they send the next request, instead of sleeping.
   */
  whenSocketClosed(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined) return Promise.resolve();
    // Registered after #connect's own 'close' listener, so #onSocketClose has run by the time this resolves.
    return new Promise<void>((resolve) => socket.once('close', () => resolve()));
  }

  /** GET `path`; resolves with this connection once a complete response (any status) has been read. */
  get(path: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<ScrapeConnection> {
    if (this.#resolve !== undefined) return Promise.reject(new ScrapeHttpError('EBUSY', 'a request is already running on this connection'));
    if (signal?.aborted) return Promise.reject(new ScrapeHttpError('EABORTED', 'aborted', { cause: signal.reason }));
    if (signal !== this.#signal) {
      this.#signal?.removeEventListener('abort', this.#onAbort);
      this.#signal = signal;
      signal?.addEventListener('abort', this.#onAbort);
    }
    if (path !== this.#requestPath || this.#request === undefined) {
      this.#requestPath = path;
      this.#request = Buffer.from(
        `GET ${path} HTTP/1.1\r\nHost: ${this.hostPort}\r\nUser-Agent: endpoint-picker\r\nAccept: ${this.#client.accept}\r\n\r\n`,
        'latin1',
      );
    }
    this.#timeoutMs = timeoutMs;
    this.#deadline = Date.now() + timeoutMs;
    this.#retried = false;
    const p = new Promise<ScrapeConnection>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#send();
    this.#client.watch(timeoutMs);
    return p;
  }

  /** Called by the client's sweep timer. */
  checkDeadline(now: number): void {
    if (this.#resolve !== undefined && now >= this.#deadline) {
      this.#fail(new ScrapeHttpError('ETIMEDOUT', `timed out after ${this.#timeoutMs} ms`), false);
    }
  }

  /** Closes the socket; a running request fails. */
  close(): void {
    if (this.#resolve !== undefined) this.#fail(new ScrapeHttpError('ECLOSED', 'connection closed by the client'), false);
    this.#destroySocket();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = undefined;
  }

  #send(): void {
    if (this.buf.length > SHRINK_ABOVE_BYTES) this.buf = Buffer.allocUnsafe(INITIAL_BUFFER_BYTES);
    this.#len = 0;
    this.#scan = 0;
    this.#phase = Phase.Head;
    this.status = 0;
    this.bodyStart = this.bodyEnd = 0;
    if (this.#socket === undefined) this.#connect();
    this.#sentOnSocket++;
    (this.#socket as Socket).write(this.#request as Buffer);
  }

  #connect(): void {
    const onread: OnReadOpts = {
      buffer: (): Uint8Array => this.#readBuffer(socket),
      callback: (n: number, view: Uint8Array): boolean => this.#onData(socket, n, view),
    };
    const tls = this.#client.tls;
    let socket: Socket;
    if (tls === undefined) socket = netConnect({ host: this.#host, port: this.#port, onread, noDelay: true });
    else {
      // node:tls honours `onread` like net.Socket (Node >= 14); @types/node leaves it out of ConnectionOptions.
      const options: ConnectionOptions & { onread: OnReadOpts } = {
        host: this.#host,
        port: this.#port,
        onread,
        rejectUnauthorized: tls.rejectUnauthorized,
        ...(isIP(this.#host) === 0 ? { servername: this.#host } : {}),
      };
      socket = tlsConnect(options);
      socket.setNoDelay(true);
    }
    socket.on('error', (err: Error) => this.#onSocketError(socket, err));
    socket.on('close', () => this.#onSocketClose(socket));
    this.#socket = socket;
    this.#sentOnSocket = 0;
  }

  #destroySocket(): void {
    const s = this.#socket;
    this.#socket = undefined;
    s?.destroy();
  }

  #onSocketError(socket: Socket, err: Error): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    socket.destroy();
    if (this.#resolve !== undefined) this.#fail(err, true);
  }

  #onSocketClose(socket: Socket): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    if (this.#resolve === undefined) return; // idle keep-alive socket closed by the server: reconnect next time
    if (this.#phase === Phase.Close) {
      this.bodyEnd = this.#len;
      this.#done();
      return;
    }
    this.#fail(new ScrapeHttpError('ECONNRESET', this.#len === 0 ? 'connection closed before the response' : 'connection closed mid-response'), true);
  }

  /**
   * `onread` buffer: where the next read lands. Node asks right after each read (and once at connect). Between
   * responses that is the start of the receive buffer (the body just read stays intact: the next bytes come
   * only after the next request, by when the caller has parsed it); mid-response, right after the data.
   */
  #readBuffer(socket: Socket): Uint8Array {
    if (socket !== this.#socket) return DISCARD;
    if (this.#phase === Phase.Idle) return this.buf;
    if (this.buf.length - this.#len < MIN_READ_BYTES) this.#grow(this.#len + MIN_READ_BYTES);
    return this.buf.subarray(this.#len);
  }

  #grow(need: number): void {
    const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.#len);
    this.buf = grown;
  }

  /** `onread` callback: `n` bytes arrived in `view` (normally right at `buf[len]`); advance the parser. */
  #onData(socket: Socket, n: number, view: Uint8Array): boolean {
    if (socket !== this.#socket) return false;
    if (this.#resolve === undefined) {
      // Bytes nobody asked for: the connection is out of sync; drop it.
      this.#destroySocket();
      return false;
    }
    const need = this.#len + n;
    const stats = this.#client.stats;
    stats.reads++;
    if (view.buffer !== this.buf.buffer || view.byteOffset !== this.buf.byteOffset + this.#len) {
      stats.copiedReads++;
      // The read landed elsewhere (the buffer was replaced after Node took the view): copy it into place.
      if (need > this.buf.length) this.#grow(need);
      this.buf.set(view.subarray(0, n), this.#len);
    }
    this.#len = need;
    if (need > 2 * (this.#client.maxBodyBytes + MAX_HEAD_BYTES)) {
      this.#fail(new ScrapeHttpError('ETOOBIG', `body larger than ${this.#client.maxBodyBytes} bytes`), false);
      return false;
    }
    try {
      this.#parse();
    } catch (err) {
      this.#fail(err as Error, false);
    }
    return true;
  }

  #parse(): void {
    const buf = this.buf;
    for (;;) {
      switch (this.#phase) {
        case Phase.Head: {
          let at = buf.indexOf(HEAD_END, this.#scan);
          if (at !== -1 && at + 4 > this.#len) at = -1; // matched stale bytes past the data
          if (at === -1) {
            if (this.#len > MAX_HEAD_BYTES) throw new ScrapeHttpError('EPROTO', 'response header section too large');
            this.#scan = Math.max(0, this.#len - 3);
            return;
          }
          if (!this.#head(at)) continue; // 1xx: parse the next head
          break;
        }
        case Phase.Length:
          if (this.#len < this.#contentEnd) return;
          if (this.#len > this.#contentEnd) this.#keepAlive = false; // unsolicited extra bytes
          this.bodyEnd = this.#contentEnd;
          this.#done();
          return;
        case Phase.ChunkSize: {
          const nl = this.#lineEnd(this.#pos);
          if (nl === -1) {
            if (this.#len - this.#pos > MAX_CHUNK_LINE_BYTES) throw new ScrapeHttpError('EPROTO', 'chunk size line too long');
            return;
          }
          let size = 0;
          let i = this.#pos;
          let digits = 0;
          for (; i < nl; i++) {
            const c = buf[i] as number;
            const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
            if (d === -1) break;
            size = size * 16 + d;
            if (++digits > 12) throw new ScrapeHttpError('EPROTO', 'chunk size too large');
          }
          const stop = buf[i] as number;
          if (digits === 0 || (i < nl && stop !== 59 /* ; */ && stop !== CR && stop !== 32 && stop !== 9)) {
            throw new ScrapeHttpError('EPROTO', 'invalid chunk size line');
          }
          this.#pos = nl + 1;
          if (size === 0) {
            this.#phase = Phase.ChunkTrailer;
            break;
          }
          if (this.bodyEnd - this.bodyStart + size > this.#client.maxBodyBytes) {
            throw new ScrapeHttpError('ETOOBIG', `body larger than ${this.#client.maxBodyBytes} bytes`);
          }
          this.#chunkLeft = size;
          this.#phase = Phase.ChunkData;
          break;
        }
        case Phase.ChunkData: {
          const avail = Math.min(this.#chunkLeft, this.#len - this.#pos);
          if (avail > 0) {
            // Compact in place: the decoded body never overtakes the raw read position.
            if (this.bodyEnd !== this.#pos) buf.copy(buf, this.bodyEnd, this.#pos, this.#pos + avail);
            this.bodyEnd += avail;
            this.#pos += avail;
            this.#chunkLeft -= avail;
          }
          if (this.#chunkLeft > 0) return;
          this.#phase = Phase.ChunkDataEnd;
          break;
        }
        case Phase.ChunkDataEnd: {
          if (this.#pos >= this.#len) return;
          const c = buf[this.#pos];
          if (c === LF) this.#pos += 1;
          else if (c === CR) {
            if (this.#pos + 1 >= this.#len) return;
            if (buf[this.#pos + 1] !== LF) throw new ScrapeHttpError('EPROTO', 'chunk data not followed by CRLF');
            this.#pos += 2;
          } else throw new ScrapeHttpError('EPROTO', 'chunk data not followed by CRLF');
          this.#phase = Phase.ChunkSize;
          break;
        }
        case Phase.ChunkTrailer: {
          const nl = this.#lineEnd(this.#pos);
          if (nl === -1) {
            if (this.#len - this.#pos > MAX_HEAD_BYTES) throw new ScrapeHttpError('EPROTO', 'trailer section too large');
            return;
          }
          const empty = nl === this.#pos || (nl === this.#pos + 1 && buf[this.#pos] === CR);
          this.#pos = nl + 1;
          if (!empty) break; // a trailer field: ignored
          if (this.#pos < this.#len) this.#keepAlive = false;
          this.#done();
          return;
        }
        case Phase.Close:
          if (this.#len - this.bodyStart > this.#client.maxBodyBytes) {
            throw new ScrapeHttpError('ETOOBIG', `body larger than ${this.#client.maxBodyBytes} bytes`);
          }
          return;
        default:
          return;
      }
    }
  }

  /** Index of the next LF in [from, len), or -1. */
  #lineEnd(from: number): number {
    const at = this.buf.indexOf(LF, from);
    return at === -1 || at >= this.#len ? -1 : at;
  }

  /**
   * Parses the head ending at `at` (the CRLFCRLF) and sets up the body phase. Returns false for a 1xx interim
   * response (its head is consumed and the next head is awaited).
   */
  #head(at: number): boolean {
    const head = this.buf.toString('latin1', 0, at);
    const sp = head.indexOf(' ');
    const version = head.slice(0, sp);
    const status = Number(head.slice(sp + 1, sp + 4));
    if ((version !== 'HTTP/1.1' && version !== 'HTTP/1.0') || !Number.isInteger(status) || status < 100 || status > 999) {
      throw new ScrapeHttpError('EPROTO', `not an HTTP/1.x response (starts with '${head.slice(0, 24)}')`);
    }
    const bodyStart = at + 4;
    if (status >= 100 && status < 200) {
      if (status === 101) throw new ScrapeHttpError('EPROTO', 'unexpected 101 Switching Protocols');
      // Drop the interim head: shift what follows to the front.
      this.buf.copy(this.buf, 0, bodyStart, this.#len);
      this.#len -= bodyStart;
      this.#scan = 0;
      return false;
    }
    let contentLength = -1;
    let chunked = false;
    let connection = '';
    let eol = head.indexOf('\r\n', sp);
    while (eol !== -1) {
      const start = eol + 2;
      eol = head.indexOf('\r\n', start);
      const line = eol === -1 ? head.slice(start) : head.slice(start, eol);
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ScrapeHttpError('EPROTO', `malformed header line '${line.slice(0, 40)}'`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value)) throw new ScrapeHttpError('EPROTO', `invalid Content-Length '${value.slice(0, 20)}'`);
        const n = Number(value);
        if (contentLength !== -1 && contentLength !== n) throw new ScrapeHttpError('EPROTO', 'conflicting Content-Length headers');
        contentLength = n;
      } else if (name === 'transfer-encoding') {
        const codings = value.toLowerCase().split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'identity');
        if (codings.length !== 1 || codings[0] !== 'chunked') throw new ScrapeHttpError('EPROTO', `unsupported Transfer-Encoding '${value}'`);
        chunked = true;
      } else if (name === 'content-encoding') {
        if (value.toLowerCase() !== 'identity') throw new ScrapeHttpError('EPROTO', `unsupported Content-Encoding '${value}' (none was requested)`);
      } else if (name === 'connection') {
        connection = value.toLowerCase();
      }
    }
    this.status = status;
    this.bodyStart = this.bodyEnd = bodyStart;
    this.#keepAlive = version === 'HTTP/1.1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    if (status === 204 || status === 304) {
      this.#contentEnd = bodyStart;
      this.#phase = Phase.Length;
    } else if (chunked) {
      this.#pos = bodyStart;
      this.#phase = Phase.ChunkSize;
    } else if (contentLength >= 0) {
      if (contentLength > this.#client.maxBodyBytes) throw new ScrapeHttpError('ETOOBIG', `body larger than ${this.#client.maxBodyBytes} bytes`);
      this.#contentEnd = bodyStart + contentLength;
      this.#phase = Phase.Length;
    } else {
      this.#keepAlive = false;
      this.#phase = Phase.Close;
    }
    return true;
  }

  #done(): void {
    this.#phase = Phase.Idle;
    if (!this.#keepAlive) this.#destroySocket();
    const resolve = this.#resolve as (c: ScrapeConnection) => void;
    this.#resolve = this.#reject = undefined;
    resolve(this);
  }

  /** Fails the running request; `retryable` errors on a reused socket retry once on a new one. */
  #fail(err: Error, retryable: boolean): void {
    this.#destroySocket();
    this.#phase = Phase.Idle;
    if (this.#resolve === undefined) return;
    if (retryable && !this.#retried && this.#sentOnSocket > 1 && this.#len === 0 && Date.now() < this.#deadline) {
      this.#retried = true;
      this.#send();
      return;
    }
    const reject = this.#reject as (e: Error) => void;
    this.#resolve = this.#reject = undefined;
    reject(err);
  }
}

/**
 * The connections of one data source, keyed by the caller (endpoint name), and the sweep timer that enforces
 * request deadlines (one unref'd interval, running while there are connections).
 */
export class ScrapeClient {
  /** Socket reads, and those that did not land in place and were copied (should stay near 0). */
  readonly stats = { reads: 0, copiedReads: 0 };
  readonly tls: { readonly rejectUnauthorized: boolean } | undefined;
  readonly maxBodyBytes: number;
  readonly accept: string;
  readonly #conns = new Map<string, ScrapeConnection>();
  #sweep: NodeJS.Timeout | undefined;
  #sweepMs = 0;

  constructor(options: ScrapeClientOptions) {
    this.tls = options.tls;
    this.maxBodyBytes = options.maxBodyBytes;
    this.accept = options.accept;
  }

  /** GET `path` from `hostPort` on the connection kept under `key` (reconnecting if `hostPort` changed). */
  get(key: string, hostPort: string, path: string, timeoutMs: number, signal?: AbortSignal): Promise<ScrapeConnection> {
    let conn = this.#conns.get(key);
    if (conn === undefined || conn.hostPort !== hostPort) {
      conn?.close();
      try {
        conn = new ScrapeConnection(this, hostPort);
      } catch (err) {
        return Promise.reject(err);
      }
      this.#conns.set(key, conn);
    }
    return conn.get(path, timeoutMs, signal);
  }

  /** Closes and forgets the connection kept under `key`. */
  drop(key: string): void {
    this.#conns.get(key)?.close();
    this.#conns.delete(key);
    if (this.#conns.size === 0) this.#stopSweep();
  }

  close(): void {
    for (const c of this.#conns.values()) c.close();
    this.#conns.clear();
    this.#stopSweep();
  }

  /** Makes sure the sweep runs often enough for `timeoutMs` (a fifth of it, 5–250 ms). */
  watch(timeoutMs: number): void {
    const period = Math.min(250, Math.max(5, Math.floor(timeoutMs / 5)));
    if (this.#sweep !== undefined && this.#sweepMs <= period) return;
    this.#stopSweep();
    this.#sweepMs = period;
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.#conns.values()) c.checkDeadline(now);
    }, period);
    this.#sweep.unref();
  }

  #stopSweep(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.#sweepMs = 0;
  }
}
