/**
 * The request the director routes (the `InferenceRequest` every hook and plugin sees), and how the director tells
 * whether a plugin changed its body (then it is re-serialised; otherwise the bytes received are forwarded).
 */
import type { InferenceRequest } from '../framework/request.ts';
import type { SchedulingResult } from '../framework/scheduling.ts';
import type { RequestAbort } from './request-abort.ts';

/**
 * The request every hook and plugin sees. A class, not an object literal: a literal with a getter is created by
 * the runtime in dictionary mode (≈ 0.6 µs, and every later property read on it is a slow lookup, in every plugin);
 * a class instance has fast properties. `signal` is a getter on the prototype, so the request's AbortSignal is
 * created only when read (request-abort.ts), and `aborted` reads the abort without creating it: a spread or
 * `Object.keys` of the request carries neither.
 */
export class RoutedRequest implements InferenceRequest {
  schedulingResult: SchedulingResult | undefined = undefined;
  readonly #abort: RequestAbort;

  constructor(
    readonly requestId: string,
    readonly incomingModel: string,
    readonly targetModel: string,
    readonly body: InferenceRequest['body'],
    readonly headers: Record<string, string>,
    readonly priority: number,
    readonly fairnessId: string,
    readonly objectiveKey: string,
    readonly requestSizeBytes: number,
    readonly receivedAt: number,
    abort: RequestAbort,
  ) {
    this.#abort = abort;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get aborted(): boolean {
    return this.#abort.aborted;
  }
}

/** The top-level fields of a payload right after parsing: keys in order and their values (by identity). */
export interface TopLevelSnapshot {
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
}

export const EMPTY_SNAPSHOT: TopLevelSnapshot = { keys: [], values: [] };

export function topLevelSnapshot(payload: Record<string, unknown>): TopLevelSnapshot {
  const keys = Object.keys(payload);
  const values = new Array<unknown>(keys.length);
  for (let i = 0; i < keys.length; i++) values[i] = payload[keys[i] as string];
  return { keys, values };
}

/**
 * True when the body must be re-serialised: a plugin declared a change (`mutated`), or added, removed or
 * replaced a top-level field since the snapshot. O(top-level fields); nothing below the top level is walked.
 */
export function bodyChanged(body: InferenceRequest['body'], before: TopLevelSnapshot): boolean {
  if (body.mutated === true) return true;
  const keys = Object.keys(body.payload);
  if (keys.length !== before.keys.length) return true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (k !== before.keys[i] || body.payload[k] !== before.values[i]) return true;
  }
  return false;
}
