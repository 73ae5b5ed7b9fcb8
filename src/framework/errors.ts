/**
 * Error vocabulary.
 *
 * `EppError` carries one of the upstream EPP's error codes; the data planes map it to a client-visible
 * status (ext_proc ImmediateResponse, or the HTTP status of the embedded gateway) with the body
 * `inference error: <Code> - <message>`. Codes without an HTTP mapping fail the ext_proc stream instead
 * (upstream behaviour, epp-spec §1.10).
 */

/** Upstream error codes (`pkg/common/error/error.go`). */
export type EppErrorCode =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'ResourceExhausted'
  | 'Internal'
  | 'ServiceUnavailable'
  | 'ModelServerError'
  | 'Unknown'
  /** Ours: the request body exceeded the configured limit. */
  | 'PayloadTooLarge';

const HTTP_STATUS: Partial<Record<EppErrorCode, number>> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  PayloadTooLarge: 413,
  ResourceExhausted: 429,
  Internal: 500,
  ServiceUnavailable: 503,
};

/** A request-path failure with a client-visible code. */
export class EppError extends Error {
  readonly code: EppErrorCode;
  /**
   * The same error in plain English, for OpenAI-shaped answers (the embedded gateway), when `message` keeps
   * upstream's wording for ext_proc (e.g. "error unmarshaling request bodyMap: ..."). Defaults to `message`.
   */
  readonly plainMessage: string;
  constructor(code: EppErrorCode, message: string, options?: { cause?: unknown; plainMessage?: string }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'EppError';
    this.code = code;
    this.plainMessage = options?.plainMessage ?? message;
  }

  /** HTTP status for this code, or undefined when the code has no client mapping (stream is failed instead). */
  get httpStatus(): number | undefined {
    return HTTP_STATUS[this.code];
  }

  /** The body text upstream sends: `inference error: <Code> - <message>`. */
  get clientMessage(): string {
    return `inference error: ${this.code} - ${this.message}`;
  }
}

/** HTTP status for an upstream error code (undefined when unmapped). */
export function httpStatusForCode(code: EppErrorCode): number | undefined {
  return HTTP_STATUS[code];
}

/**
 * A configuration or flag error found at startup. The message names the file (when there is one), the
 * field and what is wrong; `fix` says what to do about it.
 */
export class EppConfigError extends Error {
  readonly fix: string;
  constructor(message: string, fix: string) {
    super(`${message}${fix ? ` (fix: ${fix})` : ''}`);
    this.name = 'EppConfigError';
    this.fix = fix;
  }
}

/** Normalises anything thrown or rejected into an Error (a hook may reject with undefined or a string). */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  const err = new Error(`hook rejected with a non-Error value: ${String(value)}`);
  (err as Error & { code?: string }).code = 'EPP_ERR_HOOK_REJECTED';
  return err;
}
