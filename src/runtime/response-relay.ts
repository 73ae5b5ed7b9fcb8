/**
 * The response relay: the response and error policy both data planes share, declared once. The ext_proc stream
 * and the embedded gateway only translate their protocol to and from it (Envoy messages, Node HTTP).
 *
 * Contract of `ResponseRelay` (one per response; `decision` undefined = an ext_proc stream that was never routed,
 * whose response passes through with no hooks, no completion and no rewrite):
 * - **Streamed or buffered** is decided once, in `start`: streamed when the request asked for a stream
 *   (`"stream": true`) or the response is SSE (`content-type: text/event-stream`); when the proxy skipped the
 *   response headers, only the request's flag counts (as upstream). Never changes afterwards.
 * - **Streamed**: every chunk is answered as it comes — `chunk(data)` runs the response path (it returns a
 *   promise only when the reply must wait: overflow `block`, `inline` mode), `end(data)` is the final chunk and
 *   settles after every hook and the completion hooks ran; the bytes to send are `restore(data)`.
 * - **Buffered**: `hold(data)` keeps the body until its end, up to `maxBufferedResponseBytes`; the chunk that
 *   exceeds the cap gets back the bytes held so far (send them first), and from then on `passingThrough` is true:
 *   the rest of the body goes out as it comes and hooks see only the end (`finish()`; usage unknown). Counted once
 *   per response in `epp_response_buffer_overflows_total{data_plane}`. At the end, `takeHeld()` is the whole
 *   body: `end(whole)` runs the hooks on it, `restore(whole)` is what to send.
 * - **Model restore** (`restore`): when the request went upstream under another model name, the client's name is
 *   put back (runtime/model-rewrite.ts; per chunk when streamed, once when buffered). `rewritesBody` says whether
 *   the bytes sent may differ from upstream's (a relayed Content-Length would then be wrong).
 * - **Ending**: `finish()` ends a response without more body (trailers, end of a pass-through);
 *   `abort(reason)` when the client, the proxy or the upstream went away (completion: aborted);
 *   `upstreamFailed(message)` when the model server failed before the response began (completion: internal-error;
 *   not an EPP request error, so not counted as one). Each is a no-op without a decision; completion still runs
 *   exactly once (runtime/response-stream.ts).
 *
 * Contract of `RelayPolicy.failed` (the error policy, for failures of the EPP itself — request path, protocol
 * limits — not the model server's): the failure becomes an `EppError` (`toEppError`: an EppError stays as it is,
 * anything else is `Internal` with its message and the original as `cause`), is counted exactly once in
 * `inference_objective_request_error_total{model_name, target_model_name, error_code}` — the request's model labels
 * once it was routed, empty before — is logged (error for a 5xx, except a throwing scheduling plugin, which the
 * director logs once per plugin; info otherwise), is answered through the adapter's `answer` callback, and only
 * then fails the request's response stream (completion: internal-error), so the answer leaves before the
 * completion hooks run.
 */
import { EppError, toError, type EppErrorId } from '../framework/errors.ts';
import type { Logger } from '../framework/plugin.ts';
import type { InferenceRequest } from '../framework/request.ts';
import type { EppMetrics } from '../observability/metrics.ts';
import { rewriteModelInResponse } from './model-rewrite.ts';
import type { ResponseStream } from './response-stream.ts';
import { PluginFailure } from './scheduler.ts';

/** The data plane a relay serves, as the `data_plane` metric label. */
export type DataPlane = 'ext_proc' | 'gateway';

/** What the relay needs of a routing decision (runtime/director.ts `RoutingDecision`). */
export interface RelayedRequest {
  readonly request: InferenceRequest;
  readonly response: ResponseStream;
}

export interface RelayPolicyOptions {
  readonly dataPlane: DataPlane;
  readonly metrics: EppMetrics;
  readonly logger: Logger;
  /** Buffered (non-streamed) responses are held for the hooks up to this many bytes; beyond, they pass through. */
  readonly maxBufferedResponseBytes?: number;
}

/**
 * A failure as an EppError: an EppError is returned as it is; anything else becomes `Internal` with its message
 * (prefixed by `context` when given, e.g. "pre-request plugin 'x' failed") and the original as `cause`.
 */
export function toEppError(err: unknown, context?: string, id?: EppErrorId): EppError {
  if (err instanceof EppError) return err;
  const message = toError(err).message;
  return new EppError('Internal', context === undefined ? message : `${context}: ${message}`, { cause: err, ...(id !== undefined ? { id } : {}) });
}

/** Streamed or buffered (see the contract above). `contentType` undefined: the proxy sent no response headers. */
export function isStreamedResponse(request: InferenceRequest | undefined, contentType: string | undefined): boolean {
  return (request?.body.stream ?? false) || (contentType !== undefined && contentType.includes('text/event-stream'));
}

/** One per data plane: its error policy, and the factory of its per-response relays. */
export class RelayPolicy {
  readonly #o: RelayPolicyOptions;
  readonly #cap: number;

  constructor(options: RelayPolicyOptions) {
    this.#o = options;
    this.#cap = options.maxBufferedResponseBytes ?? Number.POSITIVE_INFINITY;
  }

  /** The relay of one response; `decision` undefined for a response that was never routed. */
  open(decision: RelayedRequest | undefined): ResponseRelay {
    return new ResponseRelay(this.#o, this.#cap, decision);
  }

  /** The error policy (see the contract above). Returns the EppError that was answered. */
  failed(err: unknown, requestId: string, decision: RelayedRequest | undefined, answer: (error: EppError) => void): EppError {
    const o = this.#o;
    const error = toEppError(err);
    const labels = decision?.response.modelLabels;
    o.metrics.requestErrorTotal.inc({ model_name: labels?.model_name ?? '', target_model_name: labels?.target_model_name ?? '', error_code: error.code });
    const status = error.httpStatus ?? 500;
    // A throwing scheduling plugin is logged once per plugin by the director, not once per request here.
    if (status >= 500 && !(error.cause instanceof PluginFailure)) o.logger.error({ requestId, err: error }, 'request failed');
    else o.logger.info({ requestId, status, reason: error.message }, 'request rejected');
    answer(error);
    void decision?.response.fail(error);
    return error;
  }
}

const EMPTY = new Uint8Array(0);

/** The relay of one response (contract at the top of this file). */
export class ResponseRelay {
  readonly #o: RelayPolicyOptions;
  readonly #cap: number;
  readonly #request: InferenceRequest | undefined;
  readonly #stream: ResponseStream | undefined;
  #streaming = false;
  #held: Uint8Array[] | null = null;
  #heldBytes = 0;
  #passingThrough = false;

  constructor(o: RelayPolicyOptions, cap: number, decision: RelayedRequest | undefined) {
    this.#o = o;
    this.#cap = cap;
    this.#request = decision?.request;
    this.#stream = decision?.response;
  }

  /** True for a streamed response (decided by `start`). */
  get streaming(): boolean {
    return this.#streaming;
  }

  /** A buffered response outgrew the cap: the rest of its body passes through. */
  get passingThrough(): boolean {
    return this.#passingThrough;
  }

  /** The bytes sent may differ from upstream's (the client's model name is restored). */
  get rewritesBody(): boolean {
    const r = this.#request;
    return r !== undefined && r.incomingModel !== r.targetModel;
  }

  /**
   * The response begins: decides streamed or buffered and runs the header hooks (await the result, if any, before
   * answering the headers). `headers` undefined: the proxy skipped the response headers (no header hooks).
   */
  start(status: number, headers: Record<string, string> | undefined, proxyMetadata?: Record<string, Record<string, unknown>>): void | Promise<void> {
    const streaming = (this.#streaming = isStreamedResponse(this.#request, headers === undefined ? undefined : (headers['content-type'] ?? '')));
    if (!streaming) this.#held = [];
    const stream = this.#stream;
    if (stream === undefined) return;
    if (headers === undefined) return stream.headersSkipped(streaming);
    return stream.onHeaders(status, headers, streaming, proxyMetadata);
  }

  /** An intermediate streamed chunk: its hooks (a promise only when the reply must wait). Send `restore(data)`. */
  chunk(data: Uint8Array): void | Promise<void> {
    return this.#stream?.onChunk(data, false);
  }

  /**
   * The final chunk (streamed: the last piece, may be empty; buffered: the whole body): settles once every hook
   * and the completion hooks ran. Undefined without a decision, or when the response already ended (aborted).
   */
  end(data: Uint8Array = EMPTY): void | Promise<void> {
    return this.#stream?.onChunk(data, true);
  }

  /** The response ended without more body. Undefined without a decision. */
  finish(): Promise<void> | undefined {
    return this.#stream?.finish();
  }

  /** The bytes to send for `data`: the client's model name restored when the request was rewritten. */
  restore(data: Uint8Array): Uint8Array {
    return this.#request === undefined ? data : rewriteModelInResponse(data, this.#request);
  }

  /**
   * Holds a piece of a buffered body. Undefined while it fits; when it exceeds the cap, the bytes held before it
   * (possibly empty): send them, then this piece and the rest of the body pass through.
   */
  hold(data: Uint8Array): Uint8Array | undefined {
    if (data.length === 0) return undefined;
    this.#heldBytes += data.length;
    const held = (this.#held ??= []);
    if (this.#heldBytes <= this.#cap) {
      held.push(data);
      return undefined;
    }
    this.#passingThrough = true;
    this.#o.metrics.responseBufferOverflows.inc({ data_plane: this.#o.dataPlane });
    this.#o.logger.debug({ requestId: this.#request?.requestId, limit: this.#cap }, 'response larger than the buffer cap; passing it through');
    this.#held = null;
    return concat(held, this.#heldBytes - data.length);
  }

  /** The whole held body, released. */
  takeHeld(): Uint8Array {
    const held = this.#held ?? [];
    this.#held = null;
    return concat(held, this.#heldBytes);
  }

  /** Releases what is held (the stream ended). */
  discard(): void {
    this.#held = null;
  }

  /** The client, the proxy or the upstream went away. Idempotent; undefined without a decision. */
  abort(reason: string): Promise<void> | undefined {
    return this.#stream?.abort(reason);
  }

  /** The model server failed before the response began (not counted as an EPP request error). */
  upstreamFailed(message: string): void {
    void this.#stream?.fail(new EppError('Internal', message));
  }
}

function concat(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  if (parts.length === 0) return EMPTY;
  return Buffer.concat(parts, bytes);
}
