/**
 * Reads a gateway request's body before routing. Contract: `readBody` resolves with the whole body (copied once
 * into its final buffer when a Content-Length was declared), or rejects — `PayloadTooLarge` (413) as soon as it
 * exceeds the per-request limit, `BudgetExceeded` (429) when the process-wide body budget cannot hold it,
 * `BodyTimeout` (408) when no data arrives for the idle time — and then buffers nothing more. The caller owns
 * the reservation and releases it.
 */
import type { IncomingMessage } from 'node:http';
import { EppError } from '../../framework/errors.ts';
import type { BodyReservation } from '../body-budget.ts';

/** No request-body data arrived for `ms`. */
export class BodyTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no request body data for ${ms}ms`);
  }
}

/** The process-wide request-body budget cannot hold this body. */
export class BudgetExceeded extends Error {}

/**
 * Reads the whole body; rejects with PayloadTooLarge as soon as it exceeds `limit`, BudgetExceeded when the
 * process-wide body budget cannot hold it (a declared Content-Length is reserved at once), BodyTimeout when no
 * data arrives for `idleMs`. On rejection nothing more is buffered.
 */
export function readBody(req: IncomingMessage, limit: number, reservation: BodyReservation, idleMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    const hasDeclared = req.headers['content-length'] !== undefined && Number.isFinite(declared);
    if (hasDeclared && declared > limit) {
      req.resume();
      return reject(new EppError('PayloadTooLarge', `request body exceeds ${limit} bytes`));
    }
    if (hasDeclared && !reservation.grow(declared)) {
      req.resume();
      return reject(new BudgetExceeded());
    }
    // With a declared length the body is copied once into its final buffer (no concat of the parts at the end).
    const whole = hasDeclared ? Buffer.allocUnsafe(declared) : undefined;
    const parts: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      parts.length = 0;
      req.removeAllListeners('data');
      req.resume();
      reject(err);
    };
    const arm = (): void => {
      if (idleMs <= 0) return;
      clearTimeout(timer);
      timer = setTimeout(() => fail(new BodyTimeout(idleMs)), idleMs);
      timer.unref();
    };
    arm();
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) return fail(new EppError('PayloadTooLarge', `request body exceeds ${limit} bytes`));
      if (size > reservation.held && !reservation.grow(size - reservation.held)) return fail(new BudgetExceeded());
      if (whole !== undefined && size <= whole.length) c.copy(whole, size - c.length);
      else parts.push(c);
      arm();
    });
    req.on('end', () => {
      clearTimeout(timer);
      if (whole !== undefined && parts.length === 0) return resolve(whole.subarray(0, size));
      resolve(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
