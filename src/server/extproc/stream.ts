/**
 * One ext_proc stream = one HTTP request through Envoy (epp-spec §1). Envoy runs the filter in
 * FULL_DUPLEX_STREAMED mode for both bodies:
 *
 *   request_headers        → nothing yet (or, for a body-less request, a random endpoint at once)
 *   request_body* (EoS)    → director.route(); request-headers reply (destination, Content-Length, echoed
 *                            headers, envoy.lb metadata), then the body (as received unless it changed) as
 *                            ≤62,000-byte pieces
 *   response_headers       → header hooks (awaited) → response-headers reply
 *   response_body*         → streamed: each chunk answered at once (its hooks run later, in order);
 *                            buffered: answered once at end of stream. The final reply waits for every hook
 *                            and carries the hooks' dynamic metadata.
 *   response_trailers      → finishes the response, then an empty trailers reply
 *
 * Envoy may skip phases (per-route `processing_mode` overrides, `request_header_mode: SKIP`, ...), so every
 * message is answered by its kind, whatever came before (upstream does the same, epp-spec §1.2): a stream may
 * start with `response_headers`, carry `response_body` without `response_headers`, or `request_body` without
 * `request_headers`. Without a routing decision there are no hooks and no completion: response headers are
 * echoed (system-owned ones left out), a streamed body (SSE) is answered chunk by chunk, any other body once at
 * its end, trailers with a trailers reply; a request body that arrives without its headers cannot be routed
 * (the destination is a header) and is passed through unchanged, chunk by chunk. Only sequences no Envoy can
 * send are refused (a second `request_headers` or `response_headers`, request headers after the response
 * began, a response phase while the request headers still wait for their reply). Nothing is ever sent for a message Envoy did not send: no reply without its request.
 *
 * Messages are handled strictly in arrival order: while an asynchronous step runs (routing, header hooks,
 * the final chunk), later messages wait in a small per-stream list. All state lives on this object.
 */
import type { JsonObject } from '@bufbuild/protobuf';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { EppError } from '../../framework/errors.ts';
import type { Endpoint } from '../../framework/datalayer.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { HttpBody, HttpHeaders, ProcessingRequest } from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { RequestSpan, RequestTracer } from '../../observability/tracing.ts';
import type { Director, RoutingDecision } from '../../runtime/director.ts';
import {
  DESTINATION_ENDPOINT_HEADER,
  ENVOY_LB_NAMESPACE,
  ensureRequestId,
  isSystemOwnedHeader,
  requestPath,
} from '../../runtime/headers.ts';
import type { RelayPolicy, ResponseRelay } from '../../runtime/response-relay.ts';
import { isThenable } from '../../util/deferred.ts';
import type { BodyBudget, BodyReservation } from '../body-budget.ts';
import { encodeStreamedBodyReply, type Reply } from './codec.ts';
import {
  BODY_BYTE_LIMIT,
  bodyResponses,
  immediateResponse,
  readHeaders,
  requestHeadersResponse,
  responseHeadersResponse,
  responseTrailersResponse,
  setHeader,
} from './messages.ts';

export interface ExtProcStreamContext {
  readonly director: Director;
  /** A uniformly random endpoint of the pool for a body-less request (no scheduling, as upstream), or undefined. */
  readonly pickUnscheduled: () => Endpoint | undefined;
  /** The response and error policy of this data plane (runtime/response-relay.ts); one per server. */
  readonly relay: RelayPolicy;
  readonly metrics: EppMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  /** Requests whose body exceeds this get a 413 ImmediateResponse. */
  readonly maxRequestBodyBytes: number;
  /** Request spans and upstream trace-context headers; undefined when tracing is off. */
  readonly tracer?: RequestTracer | undefined;
  /** A stream that receives no message for this long is ended (completion: aborted); 0 or absent = never. */
  readonly idleTimeoutMs?: number;
  /** In-flight request-body bytes shared with the other data plane; exhausted → 429. */
  readonly bodyBudget?: BodyBudget;
  /** Called once when the stream is fully done (for draining and leak accounting). */
  readonly onClosed: (stream: ExtProcStream) => void;
}

/**
 * Request side of the stream. `idle`: no request phase yet; `passthrough`: a request body without request
 * headers (answered unchanged, never routed); `unrouted`: the response began before the request was routed.
 */
type State = 'idle' | 'request-body' | 'routing' | 'routed' | 'passthrough' | 'unrouted' | 'done';

type Call = ServerDuplexStream<ProcessingRequest, Reply>;

export class ExtProcStream {
  readonly #call: Call;
  readonly #ctx: ExtProcStreamContext;
  /** The request's abort signal, created when routing first needs it (most streams never abort). */
  #abort: AbortController | null = null;
  #abortedFor: string | undefined;
  #state: State = 'idle';
  /** Counted in the active-streams gauge (from the first message handled). */
  #active = false;
  #responseHeadersSeen = false;
  #responseBodySeen = false;
  #headers: Record<string, string> = {};
  #requestId = '';
  #receivedAt = 0;
  #firstBodyAt = 0;
  #body: Uint8Array[] = [];
  #bodyBytes = 0;
  #proxyMetadata: Record<string, Record<string, unknown>> = {};
  #decision: RoutingDecision | undefined;
  /** The response's relay (from the first response phase). */
  #relay: ResponseRelay | undefined;
  #responseFinished = false;
  #busy = false;
  #pending: ProcessingRequest[] = [];
  #closed = false;
  #span: RequestSpan | undefined;
  // Hardening (limits of docs/operations.md): idle timer, request-body budget (the response buffer cap is the relay's).
  #idleTimer: NodeJS.Timeout | undefined;
  /** When the last message arrived (performance.now()): the idle timer re-arms itself from it, lazily. */
  #lastMessageAt = 0;
  #reservation: BodyReservation | undefined;

  constructor(call: Call, ctx: ExtProcStreamContext) {
    this.#call = call;
    this.#ctx = ctx;
    const idleMs = ctx.idleTimeoutMs ?? 0;
    if (idleMs > 0) {
      // One timer per stream, not touched per message: when it fires it re-arms for the time still left since
      // the last message, and ends the stream only once that much time passed without one.
      this.#lastMessageAt = performance.now();
      const check = (): void => {
        const left = idleMs - (performance.now() - this.#lastMessageAt);
        if (left > 0) {
          this.#idleTimer = setTimeout(check, Math.ceil(left));
          this.#idleTimer.unref();
          return;
        }
        this.#onIdle(idleMs);
      };
      this.#idleTimer = setTimeout(check, idleMs);
      this.#idleTimer.unref();
    }
    call.on('data', (msg: ProcessingRequest) => this.#receive(msg));
    call.on('end', () => this.#onEnd());
    call.on('cancelled', () => this.#terminate('cancelled by the proxy'));
    call.on('error', (err: Error) => this.#terminate(`stream error: ${err.message}`));
  }

  /** True once the stream finished and released its state. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Ends the stream from the server side (shutdown after the drain deadline). */
  shutdown(): void {
    this.#terminate('server shutting down');
    if (!this.#call.destroyed) this.#call.end();
  }

  // ------------------------------------------------------------------ sequencing

  #receive(msg: ProcessingRequest): void {
    if (this.#state === 'done') return;
    if (this.#idleTimer !== undefined) this.#lastMessageAt = performance.now();
    if (this.#busy) {
      this.#pending.push(msg);
      return;
    }
    this.#run(msg);
  }

  #run(first: ProcessingRequest): void {
    let msg: ProcessingRequest | undefined = first;
    while (msg !== undefined) {
      let r: void | Promise<void>;
      try {
        r = this.#handle(msg);
      } catch (err) {
        this.#fail(err);
        return;
      }
      if (isThenable(r)) {
        this.#busy = true;
        r.then(
          () => {
            this.#busy = false;
            const next = this.#pending.shift();
            if (next !== undefined && this.#state !== 'done') this.#run(next);
          },
          (err: unknown) => {
            this.#busy = false;
            this.#pending.length = 0;
            this.#fail(err);
          },
        );
        return;
      }
      msg = this.#pending.shift();
      if (this.#state === 'done') return;
    }
  }

  #handle(msg: ProcessingRequest): void | Promise<void> {
    // Upstream replaces the request metadata with every message's metadata_context.
    this.#proxyMetadata = (msg.metadataContext?.filterMetadata ?? NO_METADATA) as Record<string, Record<string, unknown>>;
    const req = msg.request;
    if (!this.#active && req.case !== undefined) {
      this.#active = true;
      this.#ctx.metrics.activeStreams.inc({ data_plane: 'ext_proc' });
    }
    switch (req.case) {
      case 'requestHeaders':
        return this.#onRequestHeaders(req.value);
      case 'requestBody':
        return this.#onRequestBody(req.value);
      case 'requestTrailers':
        return; // upstream sends nothing for request trailers
      case 'responseHeaders':
        return this.#onResponseHeaders(req.value);
      case 'responseBody':
        return this.#onResponseBody(req.value);
      case 'responseTrailers':
        return this.#onResponseTrailers();
      default:
        throw new EppError('BadRequest', 'ext_proc message carries no request phase');
    }
  }

  // ------------------------------------------------------------------ request path

  #onRequestHeaders(h: HttpHeaders): void {
    if (this.#state !== 'idle') throw protocolError(`request_headers received in state ${this.#state}`);
    if (this.#responseStarted) throw protocolError('request_headers received after the response began');
    this.#receivedAt = this.#ctx.now();
    this.#headers = readHeaders(h);
    this.#requestId = ensureRequestId(this.#headers);
    this.#span = this.#ctx.tracer?.startRequest(this.#headers);
    if (!h.endOfStream) {
      this.#state = 'request-body';
      return;
    }
    // Body-less request (e.g. GET): a random endpoint, no scheduling and no plugins (upstream behaviour).
    const endpoint = this.#ctx.pickUnscheduled();
    if (!endpoint) throw new EppError('Internal', 'no pods available in datastore');
    this.#state = 'routed';
    this.#write(requestHeadersResponse(this.#echoRequestHeaders(endpoint.hostPort, 0), envoyLb(endpoint.hostPort)));
  }

  #onRequestBody(b: HttpBody): void | Promise<void> {
    if ((this.#state === 'idle' && !this.#responseStarted) || this.#state === 'passthrough') {
      // No request headers (Envoy skips them): no destination can be set, so the body goes through unchanged.
      if (this.#state === 'idle') this.#ctx.logger.debug({}, 'request_body without request_headers: passing the body through unrouted');
      this.#state = 'passthrough';
      for (const r of bodyResponses('requestBody', b.body, b.endOfStream)) this.#write(r);
      return;
    }
    if (this.#state !== 'request-body') return; // a second end_of_stream (or late chunk) is ignored
    if (this.#body.length === 0) this.#firstBodyAt = this.#ctx.now();
    if (b.body.length > 0) {
      this.#bodyBytes += b.body.length;
      if (this.#bodyBytes > this.#ctx.maxRequestBodyBytes) {
        this.#body = [];
        throw new EppError('PayloadTooLarge', `request body exceeds ${this.#ctx.maxRequestBodyBytes} bytes`);
      }
      const budget = this.#ctx.bodyBudget;
      if (budget) {
        this.#reservation ??= budget.open();
        if (!this.#reservation.grow(b.body.length)) {
          this.#body = [];
          this.#ctx.metrics.bodyBudgetRejections.inc({ data_plane: 'ext_proc' });
          throw new EppError('ResourceExhausted', 'too many request bytes in flight; retry later');
        }
      }
      this.#body.push(b.body);
    }
    if (!b.endOfStream) return;
    this.#ctx.metrics.requestBodyWait.observe((this.#ctx.now() - this.#firstBodyAt) / 1000);
    this.#state = 'routing';
    const parts = this.#body;
    this.#body = [];
    const body = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, this.#bodyBytes);
    return this.#route(body);
  }

  async #route(body: Uint8Array): Promise<void> {
    const input = {
      headers: this.#headers,
      requestId: this.#requestId,
      body,
      path: requestPath(this.#headers),
      proxyMetadata: this.#proxyMetadata,
      receivedAt: this.#receivedAt,
      signal: this.#signal(),
    };
    const span = this.#span;
    let decision: RoutingDecision;
    try {
      decision = span ? await span.orchestrate(() => this.#ctx.director.route(input)) : await this.#ctx.director.route(input);
    } finally {
      this.#reservation?.release();
    }
    if (this.#state === 'done') {
      // The stream ended while we were scheduling: the request will never run.
      void decision.response.abort('stream ended before routing finished');
      return;
    }
    this.#decision = decision;
    this.#state = 'routed';
    this.#write(requestHeadersResponse(this.#echoRequestHeaders(decision.destination, decision.body.length), envoyLb(decision.destination)));
    const forwarded = decision.body;
    if (forwarded.length <= BODY_BYTE_LIMIT) this.#write(encodeStreamedBodyReply('requestBody', forwarded, true));
    else {
      // The headers reply leaves first, on its own; then one ≤62,000-byte piece per event-loop turn, so other
      // streams are served between the pieces. Later messages of this stream wait (the stream is busy).
      for (let at = 0; at < forwarded.length; at += BODY_BYTE_LIMIT) {
        await nextTurn();
        if (this.#closed || (this.#state as State) === 'done') return;
        const end = Math.min(forwarded.length, at + BODY_BYTE_LIMIT);
        this.#write(encodeStreamedBodyReply('requestBody', forwarded.subarray(at, end), end === forwarded.length));
      }
    }
    this.#ctx.logger.debug({ requestId: this.#requestId, destination: decision.destination }, 'EPP sent request body response(s) to proxy');
  }

  /**
   * Destination first, then Content-Length, then trace context (when tracing), then every non-system request
   * header (upstream order). Incoming trace headers are replaced by ours, not echoed next to them.
   */
  #echoRequestHeaders(destination: string, contentLength: number) {
    const out = [setHeader(DESTINATION_ENDPOINT_HEADER, destination)];
    if (contentLength > 0) out.push(setHeader('Content-Length', String(contentLength)));
    const span = this.#span;
    const traceFields = span ? this.#ctx.tracer?.fields : undefined;
    if (span) for (const [k, v] of span.inject()) out.push(setHeader(k, v));
    for (const [k, v] of Object.entries(this.#headers)) if (!isSystemOwnedHeader(k) && !traceFields?.has(k)) out.push(setHeader(k, v));
    return out;
  }

  // ------------------------------------------------------------------ response path

  get #responseStarted(): boolean {
    return this.#responseHeadersSeen || this.#responseBodySeen;
  }

  /**
   * A response phase arrived. Without any request phase the stream stays unrouted. While the request headers
   * are still unanswered (request body arriving) no Envoy can send a response phase: it waits for that reply.
   */
  #startResponse(phase: string): ResponseRelay {
    if (this.#state === 'request-body') throw protocolError(`${phase} received before the request was answered`);
    if (this.#state === 'idle') this.#state = 'unrouted';
    return (this.#relay = this.#ctx.relay.open(this.#decision));
  }

  #onResponseHeaders(h: HttpHeaders): void | Promise<void> {
    if (this.#responseStarted) throw protocolError(this.#responseBodySeen ? 'response_headers received after response_body' : 'response_headers received twice');
    const relay = this.#startResponse('response_headers');
    this.#responseHeadersSeen = true;
    const headers = readHeaders(h);
    const statusText = headers[':status'] ?? headers.status ?? '200';
    const status = Number.parseInt(statusText, 10) || 200;
    const reply = (): void => {
      const set = [setHeader('x-went-into-resp-headers', 'true')];
      for (const [k, v] of Object.entries(headers)) if (!isSystemOwnedHeader(k)) set.push(setHeader(k, v));
      this.#write(responseHeadersResponse(set));
    };
    const r = relay.start(status, headers, this.#proxyMetadata);
    if (r === undefined) return reply();
    return r.then(reply);
  }

  /** First response message without response headers (Envoy skipped them): no header reply, no header hooks. */
  #startResponseWithoutHeaders(phase: string): void {
    this.#startResponse(phase).start(200, undefined);
  }

  #onResponseBody(b: HttpBody): void | Promise<void> {
    if (!this.#responseStarted) this.#startResponseWithoutHeaders('response_body');
    this.#responseBodySeen = true;
    if (this.#responseFinished) return; // nothing after the final chunk
    const relay = this.#relay as ResponseRelay;
    if (relay.passingThrough) return this.#passThroughBody(b);
    if (!relay.streaming) {
      const held = relay.hold(b.body);
      if (held !== undefined) {
        // Outgrew the buffer cap: what was held goes out now, and the rest of the body passes through unbuffered.
        if (held.length > 0) for (const m of bodyResponses('responseBody', held, false)) this.#write(m);
        return this.#passThroughBody(b);
      }
      if (!b.endOfStream) return;
      return this.#finishBuffered(true);
    }
    const data = relay.restore(b.body);
    if (!b.endOfStream) {
      const r = relay.chunk(b.body);
      if (r === undefined) {
        for (const m of bodyResponses('responseBody', data, false)) this.#write(m);
        return;
      }
      return r.then(() => {
        for (const m of bodyResponses('responseBody', data, false)) this.#write(m);
      });
    }
    this.#responseFinished = true;
    if (!this.#decision) {
      for (const m of bodyResponses('responseBody', data, true)) this.#write(m);
      return;
    }
    return relay.end(b.body)?.then(() => {
      for (const m of bodyResponses('responseBody', data, true, this.#metadata())) this.#write(m);
      this.#ctx.logger.debug({ requestId: this.#requestId }, 'EPP sent response body back to proxy');
    });
  }

  #passThroughBody(b: HttpBody): void | Promise<void> {
    if (!b.endOfStream) {
      for (const m of bodyResponses('responseBody', b.body, false)) this.#write(m);
      return;
    }
    this.#responseFinished = true;
    const send = (): void => {
      for (const m of bodyResponses('responseBody', b.body, true, this.#metadata())) this.#write(m);
    };
    const done = this.#relay?.finish();
    return done === undefined ? send() : done.then(send);
  }

  /** End of a buffered response: hooks and completion first, then the whole body with the metadata. */
  #finishBuffered(endOfStream: boolean): Promise<void> | void {
    this.#responseFinished = true;
    const relay = this.#relay as ResponseRelay;
    const whole = relay.takeHeld();
    if (!this.#decision) {
      for (const m of bodyResponses('responseBody', whole, endOfStream)) this.#write(m);
      return;
    }
    const out = relay.restore(whole);
    const r = relay.end(whole);
    const send = (): void => {
      for (const m of bodyResponses('responseBody', out, endOfStream, this.#metadata())) this.#write(m);
    };
    return r === undefined ? send() : r.then(send);
  }

  #onResponseTrailers(): void | Promise<void> {
    if (!this.#responseStarted) this.#startResponseWithoutHeaders('response_trailers');
    const trailers = (): void => this.#write(responseTrailersResponse());
    if (this.#responseFinished) return trailers();
    const relay = this.#relay as ResponseRelay;
    if (!this.#responseBodySeen) {
      // Trailers without any body: there is no body to answer; a routed request completes here.
      this.#responseFinished = true;
      relay.discard();
      const done = relay.finish();
      return done === undefined ? trailers() : done.then(trailers);
    }
    if (!relay.streaming) {
      // gRPC-style end: the buffered body goes out without end_of_stream, then the trailers reply.
      const r = this.#finishBuffered(false);
      return r === undefined ? trailers() : r.then(trailers);
    }
    this.#responseFinished = true;
    const done = relay.finish();
    if (done === undefined) return trailers();
    return done.then(() => {
      const md = this.#metadata();
      if (md) for (const m of bodyResponses('responseBody', new Uint8Array(0), false, md)) this.#write(m);
      trailers();
    });
  }

  #metadata(): JsonObject | undefined {
    const md = this.#decision?.response.info.dynamicMetadata;
    if (!md) return undefined;
    for (const _ in md) return md as JsonObject;
    return undefined;
  }

  // ------------------------------------------------------------------ ending

  #write(msg: Reply): void {
    if (this.#state === 'done' && (msg instanceof Uint8Array || msg.response.case !== 'immediateResponse')) return;
    if (!this.#call.destroyed && this.#call.writable) this.#call.write(msg);
  }

  /** A request-path failure: one ImmediateResponse, then the stream ends cleanly. */
  #fail(err: unknown): void {
    if (this.#state === 'done') return;
    if (err instanceof ProtocolError) {
      this.#ctx.logger.warn({ requestId: this.#requestId, err: err.message }, 'ext_proc protocol violation; closing the stream');
      this.#finishStream('protocol violation');
      if (!this.#call.destroyed) this.#call.emit('error', { code: GrpcStatus.INVALID_ARGUMENT, details: err.message });
      return;
    }
    this.#ctx.relay.failed(err, this.#requestId, this.#decision, (error) => this.#write(immediateResponse(error.httpStatus ?? 500, error.clientMessage)));
    this.#finishStream('request failed');
    if (!this.#call.destroyed) this.#call.end();
  }

  #onEnd(): void {
    // Envoy half-closed: nothing more will arrive.
    this.#finishStream(HALF_CLOSED);
    if (!this.#call.destroyed) this.#call.end();
  }

  /** No message from the proxy for `ms`: end the stream (completion sees aborted). */
  #onIdle(ms: number): void {
    if (this.#state === 'done') return;
    this.#ctx.metrics.clientTimeouts.inc({ data_plane: 'ext_proc', phase: this.#state });
    this.#ctx.logger.info({ requestId: this.#requestId || undefined, state: this.#state, idleMs: ms }, 'ext_proc stream idle for too long; ending it');
    this.#terminate(`stream idle for ${ms}ms`);
    if (!this.#call.destroyed) this.#call.emit('error', { code: GrpcStatus.DEADLINE_EXCEEDED, details: `ext_proc stream idle for ${ms}ms` });
  }

  #terminate(reason: string): void {
    // grpc-js reports `cancelled` for a stream it closes after a normal end too: nothing to abort then.
    if (this.#state === 'done') return;
    this.#abortWith(reason);
    this.#finishStream(reason);
  }

  #signal(): AbortSignal {
    if (this.#abort === null) {
      this.#abort = new AbortController();
      if (this.#abortedFor !== undefined) this.#abort.abort(new Error(this.#abortedFor));
    }
    return this.#abort.signal;
  }

  /** Fires the request's signal (first reason wins); nothing to allocate when no one ever asked for it. */
  #abortWith(reason: string): void {
    if (this.#abortedFor !== undefined) return;
    this.#abortedFor = reason;
    this.#abort?.abort(new Error(reason));
  }

  #finishStream(reason: string): void {
    if (this.#state === 'done') return;
    const prev = this.#state;
    const wasActive = this.#active;
    this.#state = 'done';
    clearTimeout(this.#idleTimer);
    this.#reservation?.release();
    this.#pending.length = 0;
    this.#body = [];
    this.#relay?.discard();
    const decision = this.#decision;
    // The request's signal means "ended abnormally": a stream that half-closes after its response completed
    // ended normally, so nothing is aborted (and no Error is made) for it.
    if (!(reason === HALF_CLOSED && decision !== undefined && decision.response.completed)) this.#abortWith(reason);
    if (this.#span) {
      const clean = reason === HALF_CLOSED && (prev === 'routed' || this.#responseStarted) && (decision === undefined || decision.response.completed);
      this.#span.end(clean ? undefined : reason);
    }
    const finalize = (): void => {
      this.#closed = true;
      if (wasActive) this.#ctx.metrics.activeStreams.dec({ data_plane: 'ext_proc' });
      this.#ctx.onClosed(this);
    };
    if (decision && !decision.response.completed) {
      decision.response.abort(reason).then(finalize, finalize);
    } else {
      finalize();
    }
  }
}

const HALF_CLOSED = 'stream ended before the response completed';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** The proxy metadata of a message that carries none (most): one shared, frozen empty object. */
const NO_METADATA: Record<string, Record<string, unknown>> = Object.freeze({}) as Record<string, Record<string, unknown>>;

function envoyLb(destination: string): JsonObject {
  return { [ENVOY_LB_NAMESPACE]: { [DESTINATION_ENDPOINT_HEADER]: destination } };
}

class ProtocolError extends Error {}

function protocolError(message: string): ProtocolError {
  return new ProtocolError(`unexpected ext_proc message: ${message}`);
}

