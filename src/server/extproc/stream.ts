/**
 * One ext_proc stream = one HTTP request through Envoy (epp-spec §1): its state machine. Envoy runs the filter
 * in FULL_DUPLEX_STREAMED mode for both bodies:
 *
 *   request_headers        → nothing yet (or, for a body-less request, a random endpoint at once)
 *   request_body* (EoS)    → director.route(); request-headers reply (destination, Content-Length, echoed
 *                            headers, envoy.lb metadata), then the body (as received unless it changed) as
 *                            ≤62,000-byte pieces
 *   response_*             → the response side (response-side.ts): header hooks, streamed or buffered body,
 *                            trailers; the final reply waits for every hook and carries their metadata
 *
 * Envoy may skip phases (per-route `processing_mode` overrides, `request_header_mode: SKIP`, ...), so every
 * message is answered by its kind, whatever came before (upstream does the same, epp-spec §1.2): a stream may
 * start with `response_headers`, carry `response_body` without `response_headers`, or `request_body` without
 * `request_headers`. Without a routing decision there are no hooks and no completion (response-side.ts); a
 * request body that arrives without its headers cannot be routed (the destination is a header) and is passed
 * through unchanged, chunk by chunk. Only sequences no Envoy can send are refused (a second `request_headers` or
 * `response_headers`, request headers after the response began, a response phase while the request headers
 * still wait for their reply). Nothing is ever sent for a message Envoy did not send: no reply without its request.
 *
 * Messages are handled strictly in arrival order (message-order.ts): while an asynchronous step runs (routing,
 * header hooks, the final chunk), later messages wait in a small per-stream list. This file owns the phase
 * checks, the request side's states and the stream's end; the pieces live beside it: the request body while it
 * arrives (request-body.ts: limit and body budget), the replies of a routed request (request-replies.ts), the
 * response side (response-side.ts), the idle limit (idle-timer.ts), and the protocol error (protocol-error.ts).
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { EppError } from '../../framework/errors.ts';
import type { Endpoint } from '../../framework/datalayer.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { HttpBody, HttpHeaders, ProcessingRequest } from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { RequestSpan, RequestTracer } from '../../observability/tracing.ts';
import type { Director } from '../../runtime/director.ts';
import type { RoutingDecision } from '../../runtime/request-path.ts';
import { ensureRequestId, requestPath } from '../../runtime/headers.ts';
import { RequestAbort } from '../../runtime/request-abort.ts';
import type { RelayPolicy } from '../../runtime/response-relay.ts';
import type { BodyBudget } from '../body-budget.ts';
import { encodeStreamedBodyReply, type Reply } from './codec.ts';
import { IdleTimer } from './idle-timer.ts';
import type { TimerSource } from '../../util/timer-wheel.ts';
import { MessageOrder } from './message-order.ts';
import { BODY_BYTE_LIMIT, bodyResponses, immediateResponse, readHeaders } from './messages.ts';
import { ProtocolError, protocolError } from './protocol-error.ts';
import { RequestBody } from './request-body.ts';
import { routedHeadersReply, writeBodyInPieces } from './request-replies.ts';
import { ResponseSide } from './response-side.ts';

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
  /** Timers of the idle limit (the server's shared wheel); Node's own, one per stream, when absent. */
  readonly idleTimers?: TimerSource;
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
  readonly #order: MessageOrder<ProcessingRequest>;
  /** The request's abort: its signal is created only if the request path reads it (runtime/request-abort.ts). */
  readonly #abort = new RequestAbort();
  #state: State = 'idle';
  /** Counted in the active-streams gauge (from the first message handled). */
  #active = false;
  #headers: Record<string, string> = {};
  #requestId = '';
  #receivedAt = 0;
  #firstBodyAt = 0;
  /** The request body while it arrives (from the first request_body chunk); holds its share of the body budget. */
  #body: RequestBody | undefined;
  #proxyMetadata: Record<string, Record<string, unknown>> = {};
  #decision: RoutingDecision | undefined;
  /** The response side (from the first response phase). */
  #response: ResponseSide | undefined;
  #closed = false;
  #span: RequestSpan | undefined;
  /** The idle limit (docs/operations.md); undefined when there is none. */
  #idle: IdleTimer | undefined;

  constructor(call: Call, ctx: ExtProcStreamContext) {
    this.#call = call;
    this.#ctx = ctx;
    this.#order = new MessageOrder((msg) => this.#handle(msg), (err) => this.#fail(err), () => this.#state === 'done');
    const idleMs = ctx.idleTimeoutMs ?? 0;
    if (idleMs > 0) this.#idle = new IdleTimer(idleMs, () => this.#onIdle(idleMs), ctx.idleTimers);
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
    this.#idle?.touch();
    this.#order.receive(msg);
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
        return this.#responseWithoutHeaders('response_body').body(req.value);
      case 'responseTrailers':
        return this.#responseWithoutHeaders('response_trailers').trailers();
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
    this.#write(routedHeadersReply(this.#headers, endpoint.hostPort, 0, this.#span, this.#ctx.tracer));
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
    const body = (this.#body ??= new RequestBody(this.#ctx.maxRequestBodyBytes, this.#ctx.bodyBudget, this.#ctx.metrics));
    if (body.empty) this.#firstBodyAt = this.#ctx.now();
    body.add(b.body);
    if (!b.endOfStream) return;
    this.#ctx.metrics.requestBodyWait.observe((this.#ctx.now() - this.#firstBodyAt) / 1000);
    this.#state = 'routing';
    return this.#route(body.take());
  }

  async #route(body: Uint8Array): Promise<void> {
    const input = {
      headers: this.#headers,
      requestId: this.#requestId,
      body,
      path: requestPath(this.#headers),
      proxyMetadata: this.#proxyMetadata,
      receivedAt: this.#receivedAt,
      signal: this.#abort,
    };
    const span = this.#span;
    let decision: RoutingDecision;
    try {
      decision = await (span ? span.orchestrate(() => this.#ctx.director.route(input)) : this.#ctx.director.route(input));
    } finally {
      this.#body?.release();
    }
    if (this.#state === 'done') {
      // The stream ended while we were scheduling: the request will never run.
      void decision.response.abort('stream ended before routing finished');
      return;
    }
    this.#decision = decision;
    this.#state = 'routed';
    this.#write(routedHeadersReply(this.#headers, decision.destination, decision.body.length, span, this.#ctx.tracer));
    const forwarded = decision.body;
    if (forwarded.length <= BODY_BYTE_LIMIT) this.#write(encodeStreamedBodyReply('requestBody', forwarded, true));
    // The headers reply left first, on its own; later messages of this stream wait (the stream is busy).
    else if (!(await writeBodyInPieces(forwarded, (m) => this.#write(m), () => this.#closed || (this.#state as State) === 'done'))) return;
    this.#ctx.logger.debug({ requestId: this.#requestId, destination: decision.destination }, 'EPP sent request body response(s) to proxy');
  }

  // ------------------------------------------------------------------ response path (response-side.ts)

  get #responseStarted(): boolean {
    return this.#response?.started === true;
  }

  /**
   * A response phase starts the response. Without any request phase the stream stays unrouted. While the request
   * headers are still unanswered (request body arriving) no Envoy can send a response phase: it waits for that reply.
   */
  #startResponse(phase: string): ResponseSide {
    if (this.#state === 'request-body') throw protocolError(`${phase} received before the request was answered`);
    if (this.#state === 'idle') this.#state = 'unrouted';
    const response = (this.#response ??= new ResponseSide(this.#ctx.relay, this.#ctx.logger, (m) => this.#write(m)));
    response.open(this.#decision, this.#requestId);
    return response;
  }

  #onResponseHeaders(h: HttpHeaders): void | Promise<void> {
    const response = this.#response;
    if (response?.started) throw protocolError(response.bodySeen ? 'response_headers received after response_body' : 'response_headers received twice');
    return this.#startResponse('response_headers').headers(h, this.#proxyMetadata);
  }

  /** The response side for a body or trailers phase; the first response message without headers starts it. */
  #responseWithoutHeaders(phase: string): ResponseSide {
    const response = this.#response;
    if (response?.started) return response;
    const started = this.#startResponse(phase);
    started.startWithoutHeaders();
    return started;
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

  /** Fires the request's signal (first reason wins); nothing to allocate when no one ever asked for it. */
  #abortWith(reason: string): void {
    if (!this.#abort.aborted) this.#abort.abort(new Error(reason));
  }

  #finishStream(reason: string): void {
    if (this.#state === 'done') return;
    const prev = this.#state;
    const wasActive = this.#active;
    this.#state = 'done';
    this.#idle?.stop();
    this.#body?.clear();
    this.#order.clear();
    this.#response?.discard();
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
    if (decision && !decision.response.completed) decision.response.abort(reason).then(finalize, finalize);
    else finalize();
  }
}

const HALF_CLOSED = 'stream ended before the response completed';

/** The proxy metadata of a message that carries none (most): one shared, frozen empty object. */
const NO_METADATA: Record<string, Record<string, unknown>> = Object.freeze({}) as Record<string, Record<string, unknown>>;
