/**
 * The request path's contracts: what a data plane hands the director (`RequestInput`), what it gets back
 * (`RoutingDecision`), and the participants the director consults on the way (admission and flow control, the
 * admission-phase checks a data plane registers, model rewrites, candidate location, objectives). The director
 * (director.ts) runs them; this file changes only when a contract does.
 */
import type { Endpoint } from '../framework/datalayer.ts';
import type { RandomSource } from '../framework/plugin.ts';
import type { InferenceRequest } from '../framework/request.ts';
import type { RequestAbort } from './request-abort.ts';
import type { DataPlane } from './response-relay.ts';
import type { ResponseStream } from './response-stream.ts';

/** What a data plane hands the director once the whole request body has arrived. */
export interface RequestInput {
  /** Request headers with lower-case keys, including `x-request-id` (see ensureRequestId). */
  readonly headers: Record<string, string>;
  readonly requestId: string;
  readonly body: Uint8Array;
  /** Request path, for API-type detection. */
  readonly path: string;
  /** Proxy filter metadata of the request (ext_proc `metadata_context`), `{}` when none. */
  readonly proxyMetadata: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** When the request headers arrived (ms since epoch). */
  readonly receivedAt: number;
  /**
   * Aborted when the client goes away: an AbortSignal, or a RequestAbort (request-abort.ts) whose signal is
   * created only if the request path reads it (`InferenceRequest.signal`, flow control, a hook scope that must
   * fire). The director never reads it otherwise.
   */
  readonly signal: AbortSignal | RequestAbort;
  /** The data plane the request came through: the admission checks it registered run (absent: none). */
  readonly dataPlane?: DataPlane;
}

/**
 * A check of the admission phase that a data plane registers for its own requests (the embedded gateway's
 * "is this model served"). It runs on every such request whose body names a model, after the model rewrite and
 * before admission and flow control. Synchronous by contract: nothing waits on I/O while a request waits (a
 * check that needs remote data keeps it fresh in the background). Throw an EppError to refuse the request.
 */
export interface AdmissionCheck {
  readonly name: string;
  check(request: InferenceRequest): void;
}

export interface RoutingDecision {
  readonly request: InferenceRequest;
  /** Primary first, then fallbacks. Never empty. */
  readonly targets: readonly Endpoint[];
  /** `host:port` list, comma-separated: the value of `x-gateway-destination-endpoint`. */
  readonly destination: string;
  /**
   * The body to forward: the request's own bytes when the body did not change, else `payload` re-serialised
   * with the target model (see ParsedRequestBody for what counts as a change).
   */
  readonly body: Uint8Array;
  /** The response path of this request. Completion runs exactly once. */
  readonly response: ResponseStream;
}

/**
 * Decides whether a request may proceed (admission & flow control, see runtime/admission.ts). Throws EppError
 * to refuse; may await (flow control queues here).
 */
export interface AdmissionController {
  /** A request that waits (flow control) stops waiting when `request.signal` fires. */
  admit(request: InferenceRequest, proxyMetadata: RequestInput['proxyMetadata']): void | Promise<void>;
  /** After admit resolved: the request was scheduled; `targets[0]` is the primary. At most once. */
  scheduled?(request: InferenceRequest, targets: readonly Endpoint[]): void;
  /**
   * Exactly once for every request whose admit resolved, when it ends: after its completion hooks ran, or at
   * once when the request path failed before scheduling.
   */
  released?(request: InferenceRequest): void;
}

/** InferenceModelRewrite lookup by incoming model name (runtime/rewrites.ts). */
export interface ModelRewriteResolver {
  /** The target model for `model` (weighted pick), or undefined when no rule applies. Records the decision. */
  rewrite(model: string, random: RandomSource): string | undefined;
}

/** Chooses the endpoints a request may be scheduled on (subset hints live here). */
export interface CandidateLocator {
  locate(proxyMetadata: RequestInput['proxyMetadata']): readonly Endpoint[];
}

/** Resolves objective names to priorities. */
export interface ObjectiveResolver {
  /** Priority for the objective name, or undefined when unknown (treated as 0). */
  priority(objectiveName: string): number | undefined;
}
