/**
 * A byte-level ext_proc client over plain HTTP/2, for hardening tests. Unlike a grpc-js client it cancels the way
 * Envoy does — an RST_STREAM(CANCEL) on the wire at once, even before anything was flushed (grpc-js's client
 * drops a cancel issued right after a write without telling the server, which reads as a stream that stays open)
 * — and it can write undecodable gRPC frames.
 */
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  type ProcessingResponse,
} from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { ReplyLedger } from '../support/reply-ledger.ts';

const PATH = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';
const enc = new TextEncoder();

export type RequestInit = Parameters<typeof create<typeof ProcessingRequestSchema>>[1];

export interface StreamEnd {
  /** gRPC status code (1 CANCELLED when we reset the stream and no status came back). */
  readonly code: number;
  readonly details: string;
}

export function grpcFrame(payload: Uint8Array): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b.writeUInt32BE(payload.length, 1);
  Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).copy(b, 5);
  return b;
}

/**
 * One HTTP/2 connection at a time, replaced when the server ends it. (Node's HTTP/2 server closes a connection
 * whose client resets streams very fast — its rapid-reset protection — so a storm of cancels needs reconnects,
 * as Envoy would make.)
 */
export class RawExtProcClient {
  readonly #port: number;
  #session: ClientHttp2Session;
  /** Connections opened so far. */
  connections = 0;
  /** GOAWAY error codes received from the server. */
  readonly goaways: number[] = [];

  readonly #streamsPerConnection: number;
  readonly #active = new WeakMap<ClientHttp2Session, number>();
  readonly #retiring = new WeakMap<ClientHttp2Session, () => void>();
  #opened = 0;

  /** `streamsPerConnection`: move to a fresh connection after this many streams (the old one closes when idle). */
  constructor(port: number, options: { streamsPerConnection?: number } = {}) {
    this.#port = port;
    this.#streamsPerConnection = options.streamsPerConnection ?? Infinity;
    this.#session = this.#connect();
  }

  #connect(): ClientHttp2Session {
    this.connections++;
    const session = connect(`http://127.0.0.1:${this.#port}`);
    session.on('error', () => {});
    session.on('goaway', (code: number) => this.goaways.push(code));
    return session;
  }

  open(): RawStream {
    if (this.#opened >= this.#streamsPerConnection && !this.#session.closed) {
      // Retire the connection once its last stream is done (closing it now would cut its open streams).
      const old = this.#session;
      this.#session = this.#connect();
      this.#opened = 0;
      const closeWhenIdle = (): void => {
        if (this.#active.get(old) === 0) old.close();
      };
      this.#retiring.set(old, closeWhenIdle);
      closeWhenIdle();
    }
    if (this.#session.closed || this.#session.destroyed) this.#session = this.#connect();
    this.#opened++;
    const session = this.#session;
    this.#active.set(session, (this.#active.get(session) ?? 0) + 1);
    const stream = session.request({ ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers' });
    stream.once('close', () => {
      this.#active.set(session, (this.#active.get(session) ?? 1) - 1);
      this.#retiring.get(session)?.();
    });
    return new RawStream(stream);
  }

  close(): Promise<void> {
    const s = this.#session;
    if (s.closed || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }
}

export class RawStream {
  readonly responses: ProcessingResponse[] = [];
  /** Resolves when the server sent its status (the call is over, whatever we still had queued), or on close. */
  readonly ended: Promise<StreamEnd>;
  #resolve: (e: StreamEnd) => void = () => {};
  /** Replies that could not be decoded (must stay 0). */
  undecodable = 0;
  /** Messages sent and replies received, checked as Envoy would: `ledger.violations` must stay empty. */
  readonly ledger = new ReplyLedger();
  readonly #stream: ClientHttp2Stream;
  #buf: Buffer = Buffer.alloc(0);
  #status: StreamEnd | undefined;
  #cancelled = false;

  constructor(stream: ClientHttp2Stream) {
    this.#stream = stream;
    stream.on('error', () => {});
    stream.on('response', (h) => this.#statusFrom(h));
    stream.on('trailers', (h) => this.#statusFrom(h));
    stream.on('data', (d: Buffer) => this.#onData(d));
    this.ended = new Promise((resolve) => {
      this.#resolve = resolve;
      stream.on('close', () => {
        // No status and not cancelled by us: the connection went away under the stream (UNAVAILABLE, as grpc-js reports it).
        resolve(this.#status ?? { code: this.#cancelled ? 1 : 14, details: `stream closed without status (rst ${stream.rstCode})` });
      });
    });
  }

  send(init: RequestInit): void {
    const msg = create(ProcessingRequestSchema, init);
    this.ledger.sent(msg);
    this.sendBytes(grpcFrame(toBinary(ProcessingRequestSchema, msg)));
  }

  /** Raw bytes on the HTTP/2 stream (framing included: pass grpcFrame(...) for a well-framed message). */
  sendBytes(b: Uint8Array): void {
    if (!this.#stream.closed && !this.#stream.destroyed && this.#stream.writable) this.#stream.write(b);
  }

  requestHeaders(headers: Record<string, string>, endOfStream = false): void {
    this.send({ request: { case: 'requestHeaders', value: { headers: { headers: Object.entries(headers).map(([key, v]) => ({ key, rawValue: enc.encode(v) })) }, endOfStream } } });
  }

  requestBody(body: Uint8Array | string, endOfStream: boolean): void {
    this.send({ request: { case: 'requestBody', value: { body: typeof body === 'string' ? enc.encode(body) : body, endOfStream } } });
  }

  responseHeaders(headers: Record<string, string>): void {
    this.send({ request: { case: 'responseHeaders', value: { headers: { headers: Object.entries(headers).map(([key, v]) => ({ key, rawValue: enc.encode(v) })) } } } });
  }

  responseBody(body: Uint8Array | string, endOfStream: boolean): void {
    this.send({ request: { case: 'responseBody', value: { body: typeof body === 'string' ? enc.encode(body) : body, endOfStream } } });
  }

  /** Half-close (END_STREAM), as Envoy does when the HTTP exchange is over. */
  end(): void {
    if (!this.#stream.closed && !this.#stream.destroyed && this.#stream.writable) this.#stream.end();
  }

  /** RST_STREAM(CANCEL) now. */
  cancel(): void {
    this.#cancelled = true;
    if (!this.#stream.closed) this.#stream.close(constants.NGHTTP2_CANCEL);
  }

  /** Resolves with the reply count once at least `n` replies arrived (or the stream ended). */
  async waitReplies(n: number): Promise<number> {
    while (this.responses.length < n && !this.#stream.closed) await new Promise((r) => setImmediate(r));
    return this.responses.length;
  }

  #statusFrom(h: Record<string, unknown>): void {
    const s = h['grpc-status'];
    if (s === undefined) return;
    this.#status = { code: Number(s), details: decodeURIComponent(String(h['grpc-message'] ?? '')) };
    this.#resolve(this.#status);
    // The call is over: drop whatever we still had queued (a large write the server no longer reads). Deferred:
    // closing a stream from inside an HTTP/2 event callback corrupted Node 20's native heap under load.
    setImmediate(() => {
      if (!this.#stream.closed) this.#stream.close(constants.NGHTTP2_NO_ERROR);
    });
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    this.#parse();
  }

  #parse(): void {
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32BE(1);
      if (this.#buf.length < 5 + len) return;
      try {
        const reply = fromBinary(ProcessingResponseSchema, this.#buf.subarray(5, 5 + len));
        this.ledger.received(reply);
        this.responses.push(reply);
      } catch {
        this.undecodable++;
      }
      this.#buf = this.#buf.subarray(5 + len);
    }
  }
}
