/**
 * Coalesces the gateway's streamed writes per event-loop turn: the first write to a response in a turn corks
 * its socket, and every corked socket is uncorked once, after the turn's I/O callbacks (setImmediate). Chunks
 * that reach one response in the same turn leave in one `writev`, and the writes of all streams served in a turn
 * go out back to back at its end — the client process is woken once for the batch instead of once per chunk.
 * A lone chunk waits only for the rest of its own turn (nothing else is queued), so its latency does not grow.
 */
import type { ServerResponse } from 'node:http';

/** What the coalescer needs of a response (a ServerResponse). */
export type CorkableResponse = Pick<ServerResponse, 'cork' | 'uncork' | 'write' | 'writableCorked' | 'destroyed'>;

export class WriteCoalescer {
  #corked: CorkableResponse[] = [];
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    const corked = this.#corked;
    this.#corked = [];
    for (const res of corked) if (!res.destroyed) res.uncork();
  };

  /** Writes `chunk` to `res` within this turn's batch; returns `res.write`'s backpressure answer. */
  write(res: CorkableResponse, chunk: Uint8Array | string): boolean {
    if (!res.writableCorked) {
      res.cork();
      this.#corked.push(res);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    }
    return res.write(chunk);
  }
}
