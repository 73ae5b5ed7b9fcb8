/**
 * Strict arrival order for the messages of one ext_proc stream. Contract: `handle` is called for one message at
 * a time; when it returns a promise, later messages wait in a small list until it settles (no promise and no
 * list growth when every step is synchronous). A throw or rejection goes to `fail` once and drops what waited;
 * once `done()` is true nothing more is handled.
 */
import { isThenable } from '../../util/deferred.ts';

export class MessageOrder<M> {
  readonly #handle: (msg: M) => void | Promise<void>;
  readonly #fail: (err: unknown) => void;
  readonly #done: () => boolean;
  #busy = false;
  #pending: M[] = [];

  constructor(handle: (msg: M) => void | Promise<void>, fail: (err: unknown) => void, done: () => boolean) {
    this.#handle = handle;
    this.#fail = fail;
    this.#done = done;
  }

  /** A message arrived: handled now, or after the step in progress. */
  receive(msg: M): void {
    if (this.#busy) {
      this.#pending.push(msg);
      return;
    }
    this.#run(msg);
  }

  /** Drops every message still waiting (the stream ended). */
  clear(): void {
    this.#pending.length = 0;
  }

  #run(first: M): void {
    let msg: M | undefined = first;
    while (msg !== undefined) {
      let r: void | Promise<void>;
      try {
        r = this.#handle(msg);
      } catch (err) {
        this.#fail(err);
        return;
      }
      if (isThenable(r)) {
        this.#busy = true;
        r.then(
          () => {
            this.#busy = false;
            const next = this.#pending.shift();
            if (next !== undefined && !this.#done()) this.#run(next);
          },
          (err: unknown) => {
            this.#busy = false;
            this.#pending.length = 0;
            this.#fail(err);
          },
        );
        return;
      }
      // Nearly always nothing waits: no shift, no done() call.
      if (this.#pending.length === 0 || this.#done()) return;
      msg = this.#pending.shift();
    }
  }
}
