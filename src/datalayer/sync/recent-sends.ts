/**
 * Touch coalescing's memory for one (plugin, endpoint): when this replica last sent each block hash, so that a
 * hash sent less than `windowMs` ago is not sent again (`SyncSettings.coalesceMs`).
 *
 * Two generations of typed-array tables (util/pair-table.ts), nothing allocated per hash: sends are recorded in
 * the current generation; once it is `windowMs` old it becomes the previous one and the older previous one is
 * cleared for reuse (its capacity kept, so a steady rate of sends never grows or rehashes a table again). Every
 * send within the last window is in one of the two, and each entry carries its send time, so the window is exact.
 * A generation that reaches `maxEntries` rotates early: the window then covers less for the hashes it dropped (they
 * may be re-sent, which only costs bytes: applying a placement twice changes nothing but recency).
 *
 * Why not a `Map<bigint, number>`: every re-sent hash was a delete + set, and V8 rehashes a whole ordered hash
 * table once its deleted slots fill up — a pause of milliseconds at its 65,536-entry cap, on the request path
 * (`enqueuePlacement` runs in preRequest), the pattern that made the prefix index's `Set` LRU stall.
 */
import { PairTable } from '../../util/pair-table.ts';

/** u32 ms offsets from `#base`; rebased (both generations cleared) before they would overflow (≈ 49 days). */
const MAX_OFFSET_MS = 0xfffffff0;

export class RecentSends {
  #cur = new PairTable(1, 256);
  #prev = new PairTable(1, 256);
  #curStart: number;
  #base: number;
  /** When a hash was last offered (for dropping the tables of an endpoint no longer routed to). */
  lastUsedMs: number;

  constructor(
    readonly windowMs: number,
    readonly maxEntries: number,
    now: number,
  ) {
    this.#curStart = now;
    this.#base = now - 1;
    this.lastUsedMs = now;
  }

  /**
   * Forgets every send and starts over at `now`, keeping both tables' capacity: the engine hands the tables of an
   * endpoint gone idle to the next one that needs them instead of growing new ones by doubling.
   */
  reset(now: number): void {
    this.#cur.clear();
    this.#prev.clear();
    this.#curStart = now;
    this.#base = now - 1;
    this.lastUsedMs = now;
  }

  /** Entries held in both generations. */
  get size(): number {
    return this.#cur.size + this.#prev.size;
  }

  /**
   * True when the hash (uint32 halves) was not sent within the window before `now`, and records it as sent now;
   * false (recording nothing) when it was.
   */
  offer(hi: number, lo: number, now: number): boolean {
    this.lastUsedMs = now;
    if (now - this.#curStart >= this.windowMs) this.#rotate(now);
    if (now - this.#base >= MAX_OFFSET_MS) this.#rebase(now);
    const t = now - this.#base; // ≥ 1: a zeroed payload means "never"
    const cur = this.#cur;
    const s = cur.find(hi, lo);
    if (s >= 0) {
      const at = cur.off(s);
      if (t - (cur.data[at] as number) < this.windowMs) return false;
      cur.data[at] = t;
      return true;
    }
    const p = this.#prev.find(hi, lo);
    if (p >= 0 && t - (this.#prev.data[this.#prev.off(p)] as number) < this.windowMs) return false;
    if (cur.size >= this.maxEntries) this.#rotate(now);
    const i = this.#cur.insert(hi, lo);
    this.#cur.data[this.#cur.off(i)] = t;
    return true;
  }

  #rotate(now: number): void {
    const old = this.#prev;
    old.clear();
    if (now - this.#curStart >= 2 * this.windowMs) this.#cur.clear(); // nothing in it is within the window either
    this.#prev = this.#cur;
    this.#cur = old;
    this.#curStart = now;
  }

  #rebase(now: number): void {
    this.#cur.clear();
    this.#prev.clear();
    this.#base = now - 1;
    this.#curStart = now;
  }
}
