/**
 * The response side of one ext_proc stream: translates Envoy's response phases to the response relay
 * (runtime/response-relay.ts) and the relay's results back into ext_proc replies.
 *
 *   response_headers   → header hooks (awaited) → response-headers reply (echoed headers, system-owned ones left out)
 *   response_body*     → streamed: each chunk answered at once (its hooks run later, in order);
 *                        buffered: answered once at end of stream, or passed through once it outgrew the cap.
 *                        The final reply waits for every hook and carries the hooks' dynamic metadata.
 *   response_trailers  → finishes the response, then an empty trailers reply
 *
 * Contract: the stream checks whether a response phase may start the response (`started`, epp-spec §1.2) and
 * calls `open` for each phase that does; this side owns the relay and the response's progress (headers seen,
 * body seen, finished). Without a routing decision there are no hooks and no metadata: the body is answered as
 * it comes. Nothing is sent after the final body reply except the trailers reply. Replies go through `write`,
 * which drops them once the stream is done.
 */
import type { JsonObject } from '@bufbuild/protobuf';
import type { Logger } from '../../framework/plugin.ts';
import type { HttpBody, HttpHeaders } from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import type { RoutingDecision } from '../../runtime/request-path.ts';
import { isSystemOwnedHeader } from '../../runtime/headers.ts';
import type { RelayPolicy, ResponseRelay } from '../../runtime/response-relay.ts';
import { encodeStreamedBodyReply, type Reply } from './codec.ts';
import { BODY_BYTE_LIMIT, bodyResponses, readHeaders, responseHeadersResponse, responseTrailersResponse, setHeader } from './messages.ts';

export class ResponseSide {
  readonly #policy: RelayPolicy;
  readonly #logger: Logger;
  readonly #write: (msg: Reply) => void;
  #relay: ResponseRelay | undefined;
  #decision: RoutingDecision | undefined;
  #requestId = '';
  #headersSeen = false;
  #bodySeen = false;
  #finished = false;

  constructor(policy: RelayPolicy, logger: Logger, write: (msg: Reply) => void) {
    this.#policy = policy;
    this.#logger = logger;
    this.#write = write;
  }

  /** True once response headers or a response body arrived. */
  get started(): boolean {
    return this.#headersSeen || this.#bodySeen;
  }

  get bodySeen(): boolean {
    return this.#bodySeen;
  }

  /** A response phase starts the response: a relay for `decision` (undefined: the request was never routed). */
  open(decision: RoutingDecision | undefined, requestId: string): void {
    this.#decision = decision;
    this.#requestId = requestId;
    this.#relay = this.#policy.open(decision);
  }

  /** The response starts without response headers (Envoy skipped them): no header reply, no header hooks. */
  startWithoutHeaders(): void {
    (this.#relay as ResponseRelay).start(200, undefined);
  }

  headers(h: HttpHeaders, proxyMetadata: Record<string, Record<string, unknown>>): void | Promise<void> {
    const relay = this.#relay as ResponseRelay;
    this.#headersSeen = true;
    const headers = readHeaders(h);
    const statusText = headers[':status'] ?? headers.status ?? '200';
    const status = Number.parseInt(statusText, 10) || 200;
    const reply = (): void => {
      const set = [setHeader('x-went-into-resp-headers', 'true')];
      for (const [k, v] of Object.entries(headers)) if (!isSystemOwnedHeader(k)) set.push(setHeader(k, v));
      this.#write(responseHeadersResponse(set));
    };
    const r = relay.start(status, headers, proxyMetadata);
    if (r === undefined) return reply();
    return r.then(reply);
  }

  body(b: HttpBody): void | Promise<void> {
    this.#bodySeen = true;
    if (this.#finished) return; // nothing after the final chunk
    const relay = this.#relay as ResponseRelay;
    if (relay.passingThrough) return this.#passThroughBody(b);
    if (!relay.streaming) {
      const held = relay.hold(b.body);
      if (held !== undefined) {
        // Outgrew the buffer cap: what was held goes out now, and the rest of the body passes through unbuffered.
        if (held.length > 0) this.#sendBody(held, false);
        return this.#passThroughBody(b);
      }
      if (!b.endOfStream) return;
      return this.#finishBuffered(true);
    }
    const data = relay.restore(b.body);
    if (!b.endOfStream) {
      const r = relay.chunk(b.body);
      if (r === undefined) {
        this.#sendBody(data, false);
        return;
      }
      return r.then(() => {
        this.#sendBody(data, false);
      });
    }
    this.#finished = true;
    if (!this.#decision) {
      this.#sendBody(data, true);
      return;
    }
    return relay.end(b.body)?.then(() => {
      this.#sendBody(data, true, this.#metadata());
      this.#logger.debug({ requestId: this.#requestId }, 'EPP sent response body back to proxy');
    });
  }

  trailers(): void | Promise<void> {
    const trailers = (): void => this.#write(responseTrailersResponse());
    if (this.#finished) return trailers();
    const relay = this.#relay as ResponseRelay;
    if (!this.#bodySeen) {
      // Trailers without any body: there is no body to answer; a routed request completes here.
      this.#finished = true;
      relay.discard();
      const done = relay.finish();
      return done === undefined ? trailers() : done.then(trailers);
    }
    if (!relay.streaming) {
      // gRPC-style end: the buffered body goes out without end_of_stream, then the trailers reply.
      const r = this.#finishBuffered(false);
      return r === undefined ? trailers() : r.then(trailers);
    }
    this.#finished = true;
    const done = relay.finish();
    if (done === undefined) return trailers();
    return done.then(() => {
      const md = this.#metadata();
      if (md) this.#sendBody(new Uint8Array(0), false, md);
      trailers();
    });
  }

  /** The stream ended: whatever the relay still holds is let go. */
  discard(): void {
    this.#relay?.discard();
  }

  #passThroughBody(b: HttpBody): void | Promise<void> {
    if (!b.endOfStream) {
      this.#sendBody(b.body, false);
      return;
    }
    this.#finished = true;
    const send = (): void => {
      this.#sendBody(b.body, true, this.#metadata());
    };
    const done = this.#relay?.finish();
    return done === undefined ? send() : done.then(send);
  }

  /** End of a buffered response: hooks and completion first, then the whole body with the metadata. */
  #finishBuffered(endOfStream: boolean): Promise<void> | void {
    this.#finished = true;
    const relay = this.#relay as ResponseRelay;
    const whole = relay.takeHeld();
    if (!this.#decision) {
      this.#sendBody(whole, endOfStream);
      return;
    }
    const out = relay.restore(whole);
    const r = relay.end(whole);
    const send = (): void => {
      this.#sendBody(out, endOfStream, this.#metadata());
    };
    return r === undefined ? send() : r.then(send);
  }

  /** One body reply (nearly always: a chunk fits one message and carries no metadata), else its pieces. */
  #sendBody(data: Uint8Array, endOfStream: boolean, metadata?: JsonObject): void {
    if (metadata === undefined && data.length <= BODY_BYTE_LIMIT) this.#write(encodeStreamedBodyReply('responseBody', data, endOfStream));
    else for (const m of bodyResponses('responseBody', data, endOfStream, metadata)) this.#write(m);
  }

  #metadata(): JsonObject | undefined {
    const md = this.#decision?.response.info.dynamicMetadata;
    if (!md) return undefined;
    for (const _ in md) return md as JsonObject;
    return undefined;
  }
}
