// Errors a simulated server returns, in OpenAI's shape (sim-spec §1.8).

export class SimError extends Error {
  readonly status: number;
  readonly param: string | null;
  /** Overrides the status-derived `type` (e.g. vLLM's "Bad Request" for validation failures). */
  readonly type: string | null;

  constructor(status: number, message: string, param: string | null = null, type: string | null = null) {
    super(message);
    this.name = 'SimError';
    this.status = status;
    this.param = param;
    this.type = type;
  }
}

/** The llm-d sim's `ErrorCodeToType`. */
export function errorTypeForStatus(status: number): string {
  if (status === 400) return 'BadRequestError';
  if (status === 401) return 'AuthenticationError';
  if (status === 403) return 'PermissionDeniedError';
  if (status === 404) return 'NotFoundError';
  if (status === 422) return 'UnprocessableEntityError';
  if (status === 429) return 'RateLimitError';
  if (status >= 500) return 'InternalServerError';
  return 'APIConnectionError';
}

/** `{"error":{"message","type","param","code"}}` as a JSON string. */
export function errorBody(error: SimError): string {
  return JSON.stringify({
    error: { message: error.message, type: error.type ?? errorTypeForStatus(error.status), param: error.param, code: error.status },
  });
}
