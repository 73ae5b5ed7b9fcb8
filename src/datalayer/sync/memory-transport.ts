/**
 * An in-process `SyncTransport` for unit tests and models: a `MemoryBus` plays the server (one stream, one
 * snapshot, one lease, time-based retention) and each replica talks to it through its own `MemoryLink`, whose
 * faults are injectable: lag, loss, reordering (random extra lag) and outage (`error`: calls reject at once,
 * like a refused connection; `hang`: calls never settle, like a blackholed one). Time is the injected clock
 * and timers, so tests run on a virtual clock with no sleeps.
 */
import type { Clock, RandomSource } from '../../framework/plugin.ts';
import type { Timers } from '../../util/timers.ts';
import { compareIds, idTimeMs } from './codec.ts';
import type { Snapshot, StreamEntry, SyncTransport } from './transport.ts';

export interface MemoryBusOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** Entries older than this are trimmed at each append (Redis: XADD MINID ~). Default 30 s. */
  readonly retentionMs?: number;
}

interface Waiter {
  readonly afterId: string;
  readonly count: number;
  readonly resolve: (entries: StreamEntry[]) => void;
  timer: unknown;
}

export class MemoryBus {
  readonly #o: MemoryBusOptions;
  #entries: StreamEntry[] = [];
  #lastMs = 0;
  #lastSeq = 0;
  #snapshot: Snapshot | undefined;
  #trimmedThrough: string | undefined;
  #lease: { holder: string; until: number } | undefined;
  readonly #waiters = new Set<Waiter>();
  /** Appended bytes (all links), for cost figures. */
  bytesAppended = 0;

  constructor(o: MemoryBusOptions) {
    this.#o = o;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** Forgets everything, as a Redis restarted without persistence (ids keep growing with time). */
  restartEmpty(): void {
    this.#entries = [];
    this.#trimmedThrough = undefined;
    this.#snapshot = undefined;
    this.#lease = undefined;
  }

  /** Drops every entry up to and including `id` (a trim past a slow reader). */
  trimThrough(id: string): void {
    const kept = this.#entries.filter((e) => compareIds(e.id, id) > 0);
    const removed = this.#entries[this.#entries.length - kept.length - 1];
    if (removed !== undefined) this.#trimmedThrough = removed.id;
    this.#entries = kept;
  }

  append(payload: Uint8Array): string {
    const now = Math.floor(this.#o.clock.now());
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#lastSeq = 0;
    } else this.#lastSeq++;
    const id = `${this.#lastMs}-${this.#lastSeq}`;
    this.#entries.push({ id, payload });
    this.bytesAppended += payload.length;
    const minMs = now - (this.#o.retentionMs ?? 30_000);
    let drop = 0;
    while (drop < this.#entries.length && idTimeMs((this.#entries[drop] as StreamEntry).id) < minMs) drop++;
    if (drop > 0) this.#trimmedThrough = (this.#entries.splice(0, drop).pop() as StreamEntry).id;
    for (const w of [...this.#waiters]) {
      const got = this.#after(w.afterId, w.count);
      if (got.length > 0) {
        this.#waiters.delete(w);
        this.#o.timers.clearTimeout(w.timer);
        w.resolve(got);
      }
    }
    return id;
  }

  read(afterId: string, count: number, blockMs: number): Promise<StreamEntry[]> {
    const got = this.#after(afterId, count);
    if (got.length > 0 || blockMs <= 0) return Promise.resolve(got);
    return new Promise((resolve) => {
      const w: Waiter = { afterId, count, resolve, timer: undefined };
      w.timer = this.#o.timers.setTimeout(() => {
        this.#waiters.delete(w);
        resolve([]);
      }, blockMs);
      this.#waiters.add(w);
    });
  }

  trimmedThrough(): string | undefined {
    return this.#trimmedThrough;
  }

  /** Keeps a copy (transport.ts: the fields are lent for the call, as Redis copies them into its commands). */
  putSnapshot(s: Snapshot): void {
    this.#snapshot = { meta: s.meta, fields: new Map([...s.fields].map(([k, v]) => [k, v.slice()])) };
  }

  getSnapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  tryLease(holder: string, ttlMs: number): boolean {
    const now = this.#o.clock.now();
    if (this.#lease === undefined || this.#lease.holder === holder || this.#lease.until <= now) {
      this.#lease = { holder, until: now + ttlMs };
      return true;
    }
    return false;
  }

  #after(afterId: string, count: number): StreamEntry[] {
    // Binary search for the first entry after afterId.
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareIds((this.#entries[mid] as StreamEntry).id, afterId) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return this.#entries.slice(lo, lo + count);
  }
}

export interface LinkFaults {
  /** Delay between `append` and the entry landing in the stream. */
  lagMs: number;
  /** Up to this much extra random lag per append: batches may land out of send order. */
  reorderMs: number;
  /** Probability that an appended batch is lost (the call still succeeds). */
  lossRate: number;
  /** `error`: every call rejects; `hang`: every call never settles; `none`: healthy. */
  outage: 'none' | 'error' | 'hang';
}

export class MemoryLink implements SyncTransport {
  readonly description = 'memory';
  readonly faults: LinkFaults = { lagMs: 0, reorderMs: 0, lossRate: 0, outage: 'none' };
  readonly #bus: MemoryBus;
  readonly #timers: Timers;
  readonly #random: RandomSource;
  resets = 0;

  constructor(bus: MemoryBus, timers: Timers, random: RandomSource, faults: Partial<LinkFaults> = {}) {
    this.#bus = bus;
    this.#timers = timers;
    this.#random = random;
    Object.assign(this.faults, faults);
  }

  #fault<T>(): Promise<T> | undefined {
    if (this.faults.outage === 'error') return Promise.reject(new Error('memory transport: link down'));
    if (this.faults.outage === 'hang') return new Promise<T>(() => {});
    return undefined;
  }

  append(payload: Uint8Array): Promise<string> {
    const f = this.#fault<string>();
    if (f) return f;
    const lost = this.faults.lossRate > 0 && this.#random.next() < this.faults.lossRate;
    const delay = this.faults.lagMs + (this.faults.reorderMs > 0 ? this.#random.next() * this.faults.reorderMs : 0);
    if (delay <= 0) return Promise.resolve(lost ? '0-0' : this.#bus.append(payload));
    return new Promise((resolve) => {
      this.#timers.setTimeout(() => resolve(lost ? '0-0' : this.#bus.append(payload)), delay);
    });
  }

  read(afterId: string, count: number, blockMs: number): Promise<StreamEntry[]> {
    return this.#fault<StreamEntry[]>() ?? this.#bus.read(afterId, count, blockMs);
  }

  trimmedThrough(): Promise<string | undefined> {
    return this.#fault<string | undefined>() ?? Promise.resolve(this.#bus.trimmedThrough());
  }

  putSnapshot(snapshot: Snapshot): Promise<void> {
    const f = this.#fault<void>();
    if (f) return f;
    this.#bus.putSnapshot(snapshot);
    return Promise.resolve();
  }

  getSnapshot(): Promise<Snapshot | undefined> {
    return this.#fault<Snapshot | undefined>() ?? Promise.resolve(this.#bus.getSnapshot());
  }

  tryLease(holder: string, ttlMs: number): Promise<boolean> {
    return this.#fault<boolean>() ?? Promise.resolve(this.#bus.tryLease(holder, ttlMs));
  }

  resetReader(): void {
    this.resets++;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
