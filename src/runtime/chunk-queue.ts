/**
 * The FIFO of one response stream's intermediate chunks awaiting their hooks (response-stream.ts guarantee 2):
 * chunks run through `run` one at a time, in arrival order, starting on a later turn of the event loop
 * (`setImmediate`, not a microtask) so the data plane writes a chunk's reply before any of its hooks runs. The
 * bound and the overflow policy are the stream's; this file only queues, pumps and wakes waiters.
 */
import type { ResponseChunk } from '../framework/requestcontrol.ts';

export class ChunkQueue {
  readonly #run: (chunk: ResponseChunk) => void | Promise<void>;
  // Allocated on first use.
  #queue: ResponseChunk[] | null = null;
  #head = 0;
  #pumping = false;
  #waiters: Array<() => void> | null = null;

  constructor(run: (chunk: ResponseChunk) => void | Promise<void>) {
    this.#run = run;
  }

  /** Chunks waiting for their hooks. */
  get pending(): number {
    return this.#queue === null ? 0 : this.#queue.length - this.#head;
  }

  /** Appends a chunk; the pump starts on a later turn if it is idle. */
  push(chunk: ResponseChunk): void {
    (this.#queue ??= []).push(chunk);
    this.#startPump();
  }

  /** Appends a chunk beyond the bound (overflow `block`): settles once fewer than `limit` chunks wait. */
  pushAndWait(chunk: ResponseChunk, limit: number): Promise<void> {
    (this.#queue ??= []).push(chunk);
    this.#startPump();
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.pending < limit) resolve();
        else (this.#waiters ??= []).push(check);
      };
      check();
    });
  }

  /** Undefined when nothing is pending; else a promise settling when the FIFO is empty and the pump idle. */
  whenDrained(): Promise<void> | undefined {
    if (!this.#pumping && this.pending === 0) return undefined;
    this.#startPump();
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (!this.#pumping && this.pending === 0) resolve();
        else (this.#waiters ??= []).push(check);
      };
      check();
    });
  }

  /** Releases the queue (the stream completed: nothing is pending any more). */
  clear(): void {
    this.#queue = null;
  }

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    setImmediate(this.#pump);
  }

  readonly #pump = (): void => {
    void this.#drainLoop();
  };

  async #drainLoop(): Promise<void> {
    const queue = this.#queue;
    while (queue !== null && this.#head < queue.length) {
      const chunk = queue[this.#head] as ResponseChunk;
      this.#head++;
      const r = this.#run(chunk);
      if (r) await r;
      if (this.#waiters !== null) this.#notify();
    }
    if (queue !== null) {
      queue.length = 0;
      this.#head = 0;
    }
    this.#pumping = false;
    this.#notify();
  }

  #notify(): void {
    const waiters = this.#waiters;
    if (waiters === null) return;
    this.#waiters = null;
    for (const w of waiters) w();
  }
}
