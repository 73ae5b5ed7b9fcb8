/**
 * The request body of one ext_proc stream while it arrives (FULL_DUPLEX_STREAMED: chunk by chunk until
 * end_of_stream). Contract: every chunk is held until `take()`; a body over the per-request limit throws
 * `PayloadTooLarge` (413), one the process-wide body budget cannot hold throws `ResourceExhausted` (429, counted
 * in the budget-rejection metric); either way nothing more is held. `release()` gives the budgeted bytes back
 * (idempotent); the caller releases once routing no longer needs the bytes, and when the stream ends.
 */
import { EppError } from '../../framework/errors.ts';
import type { EppMetrics } from '../../observability/metrics.ts';
import type { BodyBudget, BodyReservation } from '../body-budget.ts';

export class RequestBody {
  readonly #maxBytes: number;
  readonly #budget: BodyBudget | undefined;
  readonly #metrics: EppMetrics;
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #reservation: BodyReservation | undefined;

  constructor(maxBytes: number, budget: BodyBudget | undefined, metrics: EppMetrics) {
    this.#maxBytes = maxBytes;
    this.#budget = budget;
    this.#metrics = metrics;
  }

  /** True while no non-empty chunk is held. */
  get empty(): boolean {
    return this.#parts.length === 0;
  }

  /** Holds one chunk; throws when the body outgrows the limit or the budget. */
  add(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      this.#parts = [];
      throw new EppError('PayloadTooLarge', `request body exceeds ${this.#maxBytes} bytes`);
    }
    const budget = this.#budget;
    if (budget) {
      this.#reservation ??= budget.open();
      if (!this.#reservation.grow(chunk.length)) {
        this.#parts = [];
        this.#metrics.bodyBudgetRejections.inc({ data_plane: 'ext_proc' });
        throw new EppError('ResourceExhausted', 'too many request bytes in flight; retry later');
      }
    }
    this.#parts.push(chunk);
  }

  /** The whole body (no copy when it came in one chunk); the held chunks are let go. */
  take(): Uint8Array {
    const parts = this.#parts;
    this.#parts = [];
    return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, this.#bytes);
  }

  /** Gives the budgeted bytes back. */
  release(): void {
    this.#reservation?.release();
  }

  /** The stream ended: the budget is given back and nothing is held. */
  clear(): void {
    this.#reservation?.release();
    this.#parts = [];
  }
}
