/**
 * A test client that behaves like Envoy's ext_proc filter in FULL_DUPLEX_STREAMED mode: one gRPC stream per
 * HTTP request, phases sent in order, replies read one by one.
 *
 * Like Envoy, it refuses replies it did not ask for (see reply-ledger.ts): `next()` rejects with the reason, and
 * `FakeEnvoy.close()` throws if any stream it opened received one — so every suite that closes its client in an
 * `after` hook fails on an unsolicited reply, read or not.
 */
import { create } from '@bufbuild/protobuf';
import { Client, credentials, type ClientDuplexStream, type ChannelCredentials } from '@grpc/grpc-js';
import { externalProcessorService } from '../../src/server/extproc/service.ts';
import {
  ProcessingRequestSchema,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { ReplyLedger } from './reply-ledger.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

export class FakeEnvoy {
  readonly #client: Client;
  readonly #violations: string[] = [];
  #opened = 0;
  constructor(port: number, creds: ChannelCredentials = credentials.createInsecure(), options: Record<string, unknown> = {}) {
    this.#client = new Client(`127.0.0.1:${port}`, creds, { 'grpc.max_receive_message_length': 64 << 20, ...options });
  }
  open(): EnvoyStream {
    const d = externalProcessorService.Process;
    const call = this.#client.makeBidiStreamRequest(d.path, d.requestSerialize, d.responseDeserialize);
    const n = this.#opened++;
    return new EnvoyStream(call, (v) => this.#violations.push(`stream #${n}: ${v}`));
  }
  /** Every unsolicited reply received so far, on any stream of this client. */
  violations(): string[] {
    return [...this.#violations];
  }
  /** Closes the client; throws if any stream received a reply Envoy would have refused. */
  close(): void {
    this.#client.close();
    const v = this.violations();
    if (v.length > 0) throw new Error(`the EPP sent replies Envoy did not ask for:\n${v.join('\n')}`);
  }
}

export class EnvoyStream {
  readonly responses: ProcessingResponse[] = [];
  /** Messages sent and replies received, checked as Envoy would (no unsolicited replies). */
  readonly ledger: ReplyLedger;
  readonly #unsolicited = new Map<ProcessingResponse, string>();
  readonly ended: Promise<{ code: number; details: string }>;
  #waiters: Array<(r: ProcessingResponse) => void> = [];
  #read = 0;
  constructor(
    readonly call: ClientDuplexStream<ProcessingRequest, ProcessingResponse>,
    onViolation?: (reason: string) => void,
  ) {
    this.ledger = new ReplyLedger(onViolation);
    call.on('data', (r: ProcessingResponse) => {
      const why = this.ledger.received(r);
      if (why !== undefined) this.#unsolicited.set(r, why);
      this.responses.push(r);
      const w = this.#waiters.shift();
      if (w) {
        this.#read++;
        w(r);
      }
    });
    this.ended = new Promise((resolve) => {
      call.on('status', (s: { code: number; details: string }) => resolve({ code: s.code, details: s.details }));
      call.on('error', () => {});
    });
  }
  /** The next reply not yet returned by `next()`; rejects if Envoy would have refused it (unsolicited). */
  next(): Promise<ProcessingResponse> {
    const r = this.#read < this.responses.length ? Promise.resolve(this.responses[this.#read++] as ProcessingResponse) : new Promise<ProcessingResponse>((resolve) => this.#waiters.push(resolve));
    return r.then((reply) => {
      const why = this.#unsolicited.get(reply);
      if (why !== undefined) throw new Error(`unsolicited ext_proc reply (${String(reply.response.case)}): ${why}`);
      return reply;
    });
  }
  async nextN(n: number): Promise<ProcessingResponse[]> {
    const out: ProcessingResponse[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next());
    return out;
  }
  send(init: Parameters<typeof create<typeof ProcessingRequestSchema>>[1]): void {
    const msg = create(ProcessingRequestSchema, init);
    this.ledger.sent(msg);
    this.call.write(msg);
  }
  requestHeaders(headers: Record<string, string>, endOfStream = false): void {
    this.send({
      request: {
        case: 'requestHeaders',
        value: { headers: { headers: Object.entries(headers).map(([key, v]) => ({ key, rawValue: enc.encode(v) })) }, endOfStream },
      },
    });
  }
  requestBody(body: Uint8Array | string, endOfStream: boolean): void {
    this.send({ request: { case: 'requestBody', value: { body: typeof body === 'string' ? enc.encode(body) : body, endOfStream } } });
  }
  responseHeaders(headers: Record<string, string>, metadata?: Record<string, Record<string, string>>): void {
    this.send({
      request: { case: 'responseHeaders', value: { headers: { headers: Object.entries(headers).map(([key, v]) => ({ key, rawValue: enc.encode(v) })) } } },
      ...(metadata ? { metadataContext: { filterMetadata: metadata } } : {}),
    });
  }
  responseBody(body: Uint8Array | string, endOfStream: boolean): void {
    this.send({ request: { case: 'responseBody', value: { body: typeof body === 'string' ? enc.encode(body) : body, endOfStream } } });
  }
  responseTrailers(): void {
    this.send({ request: { case: 'responseTrailers', value: {} } });
  }
  end(): void {
    this.call.end();
  }
  cancel(): void {
    this.call.cancel();
  }
}

/** Header mutation of a request/response headers reply as [key, value] pairs, in order. */
export function setHeaders(r: ProcessingResponse): Array<[string, string]> {
  const v = r.response.value as { response?: { headerMutation?: { setHeaders: Array<{ header?: { key: string; rawValue: Uint8Array; value: string } }> } } };
  return (v.response?.headerMutation?.setHeaders ?? []).map((o) => [o.header?.key ?? '', o.header?.rawValue.length ? dec.decode(o.header.rawValue) : (o.header?.value ?? '')]);
}

/** The streamed body piece of a body reply. */
export function streamedBody(r: ProcessingResponse): { body: string; bytes: Uint8Array; endOfStream: boolean } {
  const v = r.response.value as { response?: { bodyMutation?: { mutation: { case: string; value: { body: Uint8Array; endOfStream: boolean } } } } };
  const m = v.response?.bodyMutation?.mutation;
  if (!m || m.case !== 'streamedResponse') throw new Error(`not a streamed body reply: ${r.response.case}`);
  return { body: dec.decode(m.value.body), bytes: m.value.body, endOfStream: m.value.endOfStream };
}
