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

/**
 * The registry: every error the EPP can return to a client or log as a startup failure, by stable code
 * (`EPP_ERR_<AREA>_<WHAT>`), with its one-line explanation. `docs/errors.md` has exactly one line per code
 * (test/errors-doc.test.ts checks both directions). Codes are never reused for another meaning.
 */
export const ERROR_REGISTRY = Object.freeze({
  EPP_ERR_REQUEST_BAD_REQUEST: 'The request body could not be parsed, or names no model (400, upstream BadRequest).',
  EPP_ERR_REQUEST_UNAUTHORIZED: 'The request lacks valid credentials (401, upstream Unauthorized).',
  EPP_ERR_REQUEST_FORBIDDEN: 'The request is not allowed (403, upstream Forbidden).',
  EPP_ERR_REQUEST_NOT_FOUND: 'The requested model or route is not served (404, upstream NotFound).',
  EPP_ERR_REQUEST_PAYLOAD_TOO_LARGE: 'The request body exceeds --max-request-body-bytes (413).',
  EPP_ERR_REQUEST_RESOURCE_EXHAUSTED: 'The request was shed or could not be placed for lack of capacity (429, upstream ResourceExhausted).',
  EPP_ERR_REQUEST_INTERNAL: 'The EPP failed the request (500, upstream Internal).',
  EPP_ERR_REQUEST_SERVICE_UNAVAILABLE: 'No endpoint can serve the request now (503, upstream ServiceUnavailable).',
  EPP_ERR_REQUEST_MODEL_SERVER_ERROR: 'The model server failed (ext_proc: the stream fails; upstream ModelServerError).',
  EPP_ERR_REQUEST_UNKNOWN: 'An unclassified request failure (ext_proc: the stream fails; upstream Unknown).',
  EPP_ERR_NO_CANDIDATES: 'No endpoint is a candidate for the request: empty pool, or the subset hint matched none (503).',
  EPP_ERR_NO_TARGET: 'Scheduling found no target endpoint for the request (429 "failed to find target endpoint").',
  EPP_ERR_SCHEDULING_PLUGIN_FAILED: 'A filter, scorer, picker or profile handler threw; the request fails naming it (500).',
  EPP_ERR_ADMISSION_DENIED: 'An admit hook denied the request (500 "request cannot be admitted").',
  EPP_ERR_HOOK_FAILED: 'A request-path hook (admit, preRequest) threw or rejected; the request fails naming it (500).',
  EPP_ERR_HOOK_TIMEOUT: 'A request-path hook (admit, preRequest) outlived its timeout and was abandoned (500).',
  EPP_ERR_HOOK_REJECTED: 'A hook threw or rejected with a value that is not an Error; it is wrapped in one.',
  EPP_ERR_CONFIG_INVALID: 'Startup: a flag, the EndpointPickerConfig or a plugin parameter is invalid; the message names the field and the fix (exit 2).',
  EPP_ERR_PORT_IN_USE: 'Startup: a port to listen on is already in use; the message names the flag that moves it (exit 1).',
} as const);

export type EppErrorId = keyof typeof ERROR_REGISTRY;

/** The registry code of an upstream error code (the default when a failure has no finer code). */
export function errorIdForCode(code: EppErrorCode): EppErrorId {
  return `EPP_ERR_REQUEST_${code.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}` as EppErrorId;
}

/** A request-path failure with a client-visible code. */
export class EppError extends Error {
  readonly code: EppErrorCode;
  /** Its registry code (ERROR_REGISTRY, docs/errors.md). */
  readonly id: EppErrorId;
  /**
   * The same error in plain English, for OpenAI-shaped answers (the embedded gateway), when `message` keeps
   * upstream's wording for ext_proc (e.g. "error unmarshaling request bodyMap: ..."). Defaults to `message`.
   */
  readonly plainMessage: string;
  constructor(code: EppErrorCode, message: string, options?: { cause?: unknown; plainMessage?: string; id?: EppErrorId }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'EppError';
    this.code = code;
    this.id = options?.id ?? errorIdForCode(code);
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

/**
 * A configuration or flag error found at startup. The message names the file (when there is one), the
 * field and what is wrong; `fix` says what to do about it.
 */
export class EppConfigError extends Error {
  readonly id: EppErrorId = 'EPP_ERR_CONFIG_INVALID';
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
  (err as Error & { code?: EppErrorId }).code = 'EPP_ERR_HOOK_REJECTED';
  return err;
}
