/**
 * Request-control hooks: the request path (prepareData → admit → [schedule] → preRequest) and the response
 * path (onResponseHeaders → onResponseChunk* → onResponseComplete). The lifecycle is drawn in
 * docs/lifecycle.md.
 *
 * Common rules for every hook:
 * - A hook returns `void` or a Promise. The runtime awaits only when it gets a thenable back.
 * - Within one extension point, hooks run in config order (the order of `plugins[]`).
 * - Each call receives an AbortSignal that fires when the hook's timeout elapses (or, on the request path,
 *   when the client goes away). A late hook must not commit state after its signal fired. The signal is made
 *   only for a method that declares the parameter (its `length` reaches it, or is 0 as with `(...args)`): leave
 *   it out of the signature when the hook does not use it, and the runtime creates no AbortController for the call
 *   (the position is then `undefined`, visible only through `arguments`).
 * - Request-path hooks may fail the request (a thrown EppError keeps its code; anything else is Internal).
 * - Response-path hooks can never fail the stream: a throw or rejection is logged once per stream and
 *   counted; a hook that outlives its timeout is abandoned and counted.
 */
import type { Endpoint } from './datalayer.ts';
import type { EppError } from './errors.ts';
import type { Plugin } from './plugin.ts';
import type { InferenceRequest, Usage } from './request.ts';
import type { Candidate, SchedulingResult } from './scheduling.ts';

/**
 * Produces per-request data for scheduling, written to `Candidate.attributes` under the keys it declares.
 * Runs after admission, before admitters and scheduling, in an order derived from `produces`/`consumes`
 * (producers before their consumers; deterministic). The whole chain shares one deadline (400 ms upstream);
 * an error or timeout is logged and the request continues with whatever attributes were written.
 */
export interface DataProducer extends Plugin {
  /** Attribute keys this plugin writes. */
  readonly produces: readonly string[];
  /** Attribute keys this plugin reads (drives ordering and auto-creation of default producers). */
  readonly consumes: readonly string[];
  prepareData(request: InferenceRequest, candidates: readonly Candidate[], signal: AbortSignal): void | Promise<void>;
}

/** Any plugin may declare the keys it consumes (scorers and filters do, so their producers are auto-added). */
export interface DataConsumer extends Plugin {
  readonly consumes: readonly string[];
}

/**
 * Admits or denies a request after data preparation, before scheduling. Return a denial reason to refuse
 * (the client gets 500 "request cannot be admitted", as upstream), or undefined to admit.
 */
export interface Admitter extends Plugin {
  admit(request: InferenceRequest, candidates: readonly Candidate[], signal: AbortSignal): string | undefined | Promise<string | undefined>;
}

/**
 * Runs after scheduling, before the routing decision is sent to the proxy. May add request headers
 * (`request.headers`), which are forwarded upstream. Called once per scheduled request.
 */
export interface PreRequestHook extends Plugin {
  preRequest(request: InferenceRequest, result: SchedulingResult, signal: AbortSignal): void | Promise<void>;
}

/** Dynamic metadata for the proxy: namespace → key → JSON value (ext_proc `dynamic_metadata`). */
export type DynamicMetadata = Record<string, Record<string, unknown>>;

/**
 * The response of one request, one object per stream, shared by all its response hooks. Fields are updated
 * by the runtime as the response progresses; hooks read them and may write `headers` (header hooks only) and
 * `dynamicMetadata`.
 */
export interface ResponseInfo {
  readonly request: InferenceRequest;
  /** The endpoint the request was routed to (primary target). */
  readonly targetEndpoint: Endpoint | undefined;
  /** HTTP status from the response headers (0 until they arrive). */
  readonly status: number;
  /** Response headers (lower-case keys). Header hooks may change them: changes reach the client. */
  readonly headers: Record<string, string>;
  /** True when the response is streamed (request `stream: true` or an SSE content type). */
  readonly streaming: boolean;
  /** The latest usage parsed from the response so far (undefined until a chunk carried usage). */
  readonly usage: Usage | undefined;
  /** Proxy filter metadata that arrived with the response headers (e.g. `envoy.lb` served endpoint). */
  readonly proxyMetadata: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /**
   * Out-parameter: entries written here by any response hook are sent to the proxy as dynamic metadata on
   * the final reply of the stream (the last response-body message).
   */
  readonly dynamicMetadata: DynamicMetadata;
}

/** One response body chunk as a chunk hook sees it. A fresh object per chunk (chunk hooks may run late). */
export interface ResponseChunk {
  /** 0-based position of this chunk in the response. Gaps mean chunks were skipped by the overflow policy. */
  readonly index: number;
  readonly data: Uint8Array;
  /** True for the first chunk of the response. */
  readonly startOfStream: boolean;
  /** True for the final chunk (its hooks run after every earlier chunk's hooks, before completion). */
  readonly endOfStream: boolean;
  /** Usage parsed up to and including this chunk. */
  readonly usage: Usage | undefined;
  /** When the chunk arrived (ms since epoch), whenever its hook runs. Use it for latency measurements. */
  readonly receivedAt: number;
}

/** How a scheduled request ended. Delivered to `onResponseComplete` exactly once. */
export type Outcome =
  /** The response completed (status < 400 or any status when the upstream answered in full). */
  | { readonly kind: 'success'; readonly usage: Usage | undefined }
  /** The model server answered with an error status (>= 400). */
  | { readonly kind: 'upstream-error'; readonly status: number }
  /** The request ended early: client cancel, stream error, or shutdown. */
  | { readonly kind: 'aborted'; readonly reason: string }
  /** The EPP failed the request after scheduling it. */
  | { readonly kind: 'internal-error'; readonly error: EppError | Error };

/**
 * Runs when the response headers arrive, before the reply to the proxy; awaited (with its timeout), in config
 * order. May change `response.headers`.
 */
export interface ResponseHeadersHook extends Plugin {
  onResponseHeaders(response: ResponseInfo, signal: AbortSignal): void | Promise<void>;
}

/**
 * Runs once per response body chunk, in chunk order. Intermediate chunks' hooks run off the critical path:
 * the chunk is forwarded without waiting for them. The final chunk's hooks run after every earlier chunk's,
 * and before the final reply, so metadata they write is delivered.
 */
export interface ResponseChunkHook extends Plugin {
  onResponseChunk(response: ResponseInfo, chunk: ResponseChunk, signal: AbortSignal): void | Promise<void>;
}

/**
 * Runs exactly once per scheduled request, whatever happened (success, upstream error, abort, internal
 * error), after every chunk hook of the request. Gets a fresh, un-aborted signal so cleanup can do its work.
 * On success the final reply waits for it, so metadata written here is delivered; on abort nothing is sent.
 */
export interface ResponseCompleteHook extends Plugin {
  onResponseComplete(response: ResponseInfo, outcome: Outcome, signal: AbortSignal): void | Promise<void>;
}

export function isDataProducer(p: Plugin): p is DataProducer {
  return typeof (p as Partial<DataProducer>).prepareData === 'function';
}
export function isAdmitter(p: Plugin): p is Admitter {
  return typeof (p as Partial<Admitter>).admit === 'function';
}
export function isPreRequestHook(p: Plugin): p is PreRequestHook {
  return typeof (p as Partial<PreRequestHook>).preRequest === 'function';
}
export function isResponseHeadersHook(p: Plugin): p is ResponseHeadersHook {
  return typeof (p as Partial<ResponseHeadersHook>).onResponseHeaders === 'function';
}
export function isResponseChunkHook(p: Plugin): p is ResponseChunkHook {
  return typeof (p as Partial<ResponseChunkHook>).onResponseChunk === 'function';
}
export function isResponseCompleteHook(p: Plugin): p is ResponseCompleteHook {
  return typeof (p as Partial<ResponseCompleteHook>).onResponseComplete === 'function';
}
export function consumedKeys(p: Plugin): readonly string[] {
  const c = (p as Partial<DataConsumer>).consumes;
  return Array.isArray(c) ? c : [];
}
