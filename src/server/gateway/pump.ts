/**
 * The gateway's streamed-response loop, event-driven: each upstream chunk is handed to the response path and
 * written to the client from the upstream's own `data` callback — no async iterator or generator between them,
 * no promise per chunk unless a hook returns one, and one idle timer per response that re-arms itself from the
 * last chunk's time (not a timer per chunk).
 *
 * Ordering and backpressure as a `for await` loop would give them: while a chunk's hooks are pending or the
 * client has not absorbed a write, the upstream is paused, so chunks are handled one at a time, in order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface PumpOptions {
  /** The response path of one chunk; a promise holds the next chunk (and the write) until it settles. */
  readonly onChunk: (chunk: Buffer) => void | Promise<void>;
  /** Writes one chunk to the client; false = the client has not absorbed it yet (wait for `drain`). */
  readonly write: (chunk: Buffer) => boolean;
  /** No upstream data for this long ends the response with `onIdle()`'s error; 0 = never. */
  readonly idleMs: number;
  readonly onIdle: () => Error;
}

/**
 * Pumps `up` into `res` until the upstream ends (resolves), fails or goes idle (rejects with the error), or the
 * client goes away (the upstream is destroyed; resolves — the caller sees `res.destroyed`).
 */
export function pump(up: IncomingMessage, res: ServerResponse, o: PumpOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let lastDataAt = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      up.off('data', onData);
      up.off('end', onEnd);
      up.off('error', onError);
      res.off('close', onClientGone);
      res.off('drain', onDrain);
      if (err === undefined) resolve();
      else reject(err);
    };
    const checkIdle = (): void => {
      const left = o.idleMs - (performance.now() - lastDataAt);
      if (left > 0) {
        timer = setTimeout(checkIdle, Math.ceil(left));
        timer.unref();
        return;
      }
      up.destroy(o.onIdle());
    };
    if (o.idleMs > 0) {
      timer = setTimeout(checkIdle, o.idleMs);
      timer.unref();
    }
    // Why the upstream is paused: a hook pending, the client's buffer full (either alone resumes nothing).
    let hookPending = false;
    let drainPending = false;
    const resume = (): void => {
      if (!hookPending && !drainPending && !settled) up.resume();
    };
    const onDrain = (): void => {
      drainPending = false;
      resume();
    };
    const send = (chunk: Buffer): void => {
      if (res.destroyed) return onClientGone();
      if (!o.write(chunk)) {
        drainPending = true;
        up.pause();
        res.once('drain', onDrain);
      }
    };
    const onData = (chunk: Buffer): void => {
      lastDataAt = performance.now();
      let r: void | Promise<void>;
      try {
        r = o.onChunk(chunk);
      } catch (err) {
        up.destroy();
        return finish(err);
      }
      if (r === undefined) return send(chunk);
      hookPending = true;
      up.pause();
      r.then(
        () => {
          hookPending = false;
          if (settled) return;
          send(chunk);
          if (ended) finish();
          else resume();
        },
        (err: unknown) => {
          up.destroy();
          finish(err);
        },
      );
    };
    // The upstream may end while the last chunk's hooks are pending: finish once that chunk is written.
    let ended = false;
    const onEnd = (): void => {
      ended = true;
      if (!hookPending) finish();
    };
    const onError = (err: Error): void => finish(err);
    const onClientGone = (): void => {
      up.destroy();
      finish();
    };
    up.on('data', onData);
    up.on('end', onEnd);
    up.on('error', onError);
    res.on('close', onClientGone);
  });
}
