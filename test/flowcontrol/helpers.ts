/** Manual time for flow-control tests: a clock and timers that only move when the test says so. */
import type { Clock } from '../../src/framework/plugin.ts';
import type { Timers } from '../../src/util/timers.ts';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class ManualTime implements Clock, Timers {
  #now: number;
  #seq = 0;
  readonly #pending = new Map<number, Pending>();
  constructor(start = 1_000_000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#seq++;
    this.#pending.set(id, { at: this.#now + Math.max(0, ms), seq: id, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }
  /** Timers currently armed (a controller blocked on saturation must arm none but its TTL timer). */
  get armed(): number {
    return this.#pending.size;
  }
  /** Moves time forward by `ms`, firing due timers in order (timers armed meanwhile fire too if due). */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      let next: [number, Pending] | undefined;
      for (const e of this.#pending) if (e[1].at <= until && (next === undefined || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq))) next = e;
      if (next === undefined) break;
      this.#pending.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = until;
  }
}

/** Lets promise continuations run (settled enqueue promises) without waiting for any timer. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
