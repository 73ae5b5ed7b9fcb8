/**
 * An open-addressing hash table over typed arrays, keyed by 64-bit values split into (hi, lo) uint32 halves, with
 * a fixed number of uint32 payload words per slot. Linear probing and backward-shift deletion: no tombstones, so
 * deleting never makes a later insert pay for a rehash, and the table only resizes when its size crosses a
 * power of two (grow at half full, shrink at an eighth). Nothing is allocated per entry: a table of a million
 * keys is a few typed arrays the garbage collector never has to trace.
 *
 * Resizing is incremental (as Redis rehashes its dicts): the new array is allocated at once, but the old one's
 * entries move over a bounded number of slots per `insert`/`removeAt` (`MIGRATE_SLOTS`), and a lookup that finds
 * its key still in the old array moves that entry first. So no call ever rehashes a whole table: at 250k entries a
 * one-call resize held the event loop for 10–25 ms. While entries move, both arrays are live (as they were for
 * the length of the one-call resize) and a miss probes both; the old array is released once its last entry has
 * moved (a table that only takes lookups after a resize starts keeps it until then).
 *
 * Slot numbers always index `data` (the new array while entries move): `find` and `insert` return them, `off`,
 * `hiAt`, `loAt` and `removeAt` take them. A slot stays valid until the next `insert` or `removeAt` (either may move
 * entries or start a resize); a `find` never moves an entry already in `data`, so slots from earlier finds stay
 * valid across finds.
 *
 * Keys are expected to be outputs of a finalised 64-bit hash (the low bits pick the home slot).
 */
/** Slot states in `data[slot * stride]` (for hot loops that inline `find` over `raw()`). */
export const EMPTY = 0;
export const FULL = 1;
/** A slot of the old array whose entry has moved to `data` (old arrays only: they take no inserts, so it never fills). */
const MOVED = 2;

/**
 * Old-array slots scanned per `insert` or `removeAt` while a resize is under way. Enough to finish before the new
 * array could need a resize of its own: after a grow from C to 2C slots (at C/2 entries) the next grow is C/2
 * inserts away and C old slots must be scanned (≥ 2 per call); after a shrink from C to C/2 slots (below C/8
 * entries) the next shrink is C/16 removals away (≥ 16 per call). 32 leaves a 2× margin and moves at most 32
 * entries per call: 0.8 µs at the median while moving, tens of µs at worst when they land on pages of the fresh
 * array not yet touched (at 64, 1.2 µs; the indexes call it 1–2 times per block they add, so a peer's placement of
 * 128 blocks pays ≈ 0.2 ms while a resize is under way). Should a resize still be under way when the next is
 * due, it finishes first.
 */
export const MIGRATE_SLOTS = 32;

/**
 * Open-addressing table keyed by (hi, lo) uint32 pairs with `width` uint32 payload words per slot. One interleaved
 * array — `[state, hi, lo, payload…]` per slot — so a probe touches one cache line, not four arrays.
 * Payload of slot s: `data[off(s) + k]`, k < width.
 */
export class PairTable {
  width: number;
  #stride: number;
  #cap: number;
  #mask: number;
  /** Entries in both arrays. */
  #size = 0;
  data: Uint32Array;
  /** While a resize is under way: the array being emptied into `data` (same stride), else undefined. */
  #old: Uint32Array | undefined = undefined;
  #oldMask = 0;
  /** Next old slot to move; entries of the old array not yet moved. */
  #cursor = 0;
  #oldLive = 0;

  constructor(width: number, initialCapacity = 16) {
    this.width = width;
    this.#stride = 3 + width;
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.#cap = cap;
    this.#mask = cap - 1;
    this.data = new Uint32Array(cap * this.#stride);
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held by the table (both arrays while a resize is under way). */
  get bytes(): number {
    return this.data.byteLength + (this.#old?.byteLength ?? 0);
  }

  /** Slots of `data`. */
  get capacity(): number {
    return this.#cap;
  }

  /** True while a resize is moving entries (then `raw()` is undefined). */
  get resizing(): boolean {
    return this.#old !== undefined;
  }

  /** Offset of slot s's payload in `data`. */
  off(slot: number): number {
    return slot * this.#stride + 3;
  }

  /** Keys are outputs of a finalised 64-bit hash, so their low bits are already uniform: no re-mixing needed. */
  static #home(_hi: number, lo: number, mask: number): number {
    return lo & mask;
  }

  /** Slot of (hi, lo) in `data` when present there, else ~(the empty slot where it would go). */
  #probe(hi: number, lo: number): number {
    const mask = this.#mask;
    const a = this.data;
    const st = this.#stride;
    let i = PairTable.#home(hi, lo, mask);
    for (;;) {
      const b = i * st;
      if (a[b] === EMPTY) return ~i;
      if (a[b + 2] === lo && a[b + 1] === hi) return i;
      i = (i + 1) & mask;
    }
  }

  /** Slot of (hi, lo) in the old array (not yet moved), or −1. */
  #probeOld(old: Uint32Array, hi: number, lo: number): number {
    const mask = this.#oldMask;
    const st = this.#stride;
    let i = PairTable.#home(hi, lo, mask);
    for (;;) {
      const b = i * st;
      const state = old[b];
      if (state === EMPTY) return -1;
      if (state === FULL && old[b + 2] === lo && old[b + 1] === hi) return i;
      i = (i + 1) & mask;
    }
  }

  /** Moves old slot j's entry into `data` at `at` (the empty slot its key probes to), marking j moved. */
  #moveOld(old: Uint32Array, j: number, at: number): void {
    const st = this.#stride;
    const a = this.data;
    const from = j * st;
    const to = at * st;
    for (let k = 0; k < st; k++) a[to + k] = old[from + k] as number; // no subarray view: nothing allocated per move
    old[from] = MOVED;
    if (--this.#oldLive === 0) this.#dropOld();
  }

  #dropOld(): void {
    this.#old = undefined;
    this.#cursor = 0;
    this.#oldLive = 0;
  }

  /** Moves up to `slots` old slots' entries into `data`, in slot order. */
  #migrate(slots: number): void {
    const old = this.#old;
    if (old === undefined) return;
    const st = this.#stride;
    const end = Math.min(this.#cursor + slots, this.#oldMask + 1);
    for (let j = this.#cursor; j < end; j++) {
      const b = j * st;
      if (old[b] !== FULL) continue;
      this.#moveOld(old, j, ~this.#probe(old[b + 1] as number, old[b + 2] as number)); // never in `data` yet
      if (this.#old === undefined) return;
    }
    this.#cursor = end;
    if (end > this.#oldMask) this.#dropOld();
  }

  /**
   * Slot of (hi, lo) in `data`, else ~(the empty slot of `data` where it would go). A key still in the old array of
   * a resize is moved into that empty slot first (other slots stay put).
   */
  #locate(hi: number, lo: number): number {
    const i = this.#probe(hi, lo);
    const old = this.#old;
    if (i >= 0 || old === undefined) return i;
    const j = this.#probeOld(old, hi, lo);
    if (j < 0) return i;
    this.#moveOld(old, j, ~i);
    return ~i;
  }

  /** Slot of (hi, lo), or −1. A key still in the old array of a resize is moved first (other slots stay put). */
  find(hi: number, lo: number): number {
    const i = this.#locate(hi, lo);
    return i >= 0 ? i : -1;
  }

  /** Slot of (hi, lo), inserted with zeroed payload when absent. May move slots: re-find after. */
  insert(hi: number, lo: number): number {
    if ((this.#size + 1) * 2 > this.#cap) this.#resize(this.#cap * 2);
    else if (this.#old !== undefined) this.#migrate(MIGRATE_SLOTS);
    const i = this.#locate(hi, lo);
    if (i >= 0) return i;
    const at = ~i;
    const b = at * this.#stride;
    const a = this.data;
    a[b] = FULL;
    a[b + 1] = hi;
    a[b + 2] = lo;
    a.fill(0, b + 3, b + this.#stride);
    this.#size++;
    return at;
  }

  /** Removes every entry, keeping the capacity (a table refilled to the same size does not grow again). */
  clear(): void {
    this.data.fill(0);
    this.#dropOld();
    this.#size = 0;
  }

  /** Removes the entry at `slot` (backward-shift deletion keeps probe chains intact). */
  removeAt(slot: number): void {
    const mask = this.#mask;
    const st = this.#stride;
    const a = this.data;
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      if (a[j * st] === EMPTY) break;
      const home = PairTable.#home(a[j * st + 1] as number, a[j * st + 2] as number, mask);
      // Move j into the hole if its home is not cyclically in (hole, j].
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (inRange) continue;
      a.copyWithin(hole * st, j * st, (j + 1) * st);
      hole = j;
    }
    a[hole * st] = EMPTY;
    this.#size--;
    if (this.#cap > 64 && this.#size * 8 < this.#cap) this.#resize(this.#cap / 2);
    else if (this.#old !== undefined) this.#migrate(MIGRATE_SLOTS);
  }

  /**
   * The raw array, for a hot loop that inlines `find` (read only; invalid after any insert or remove), or undefined
   * while a resize is under way (some keys are then only in the old array: use `find`).
   */
  raw(): { a: Uint32Array; stride: number; mask: number } | undefined {
    return this.#old === undefined ? { a: this.data, stride: this.#stride, mask: this.#mask } : undefined;
  }

  hiAt(slot: number): number {
    return this.data[slot * this.#stride + 1] as number;
  }

  loAt(slot: number): number {
    return this.data[slot * this.#stride + 2] as number;
  }

  /** Finishes a resize under way in this call. */
  finishResize(): void {
    this.#migrate(Infinity);
  }

  /**
   * Calls fn(slot) for every entry in slots [from, to) of `data` — all of them by default; a walk over `capacity`
   * in steps covers every entry if nothing is inserted or removed meanwhile. Finishes a resize under way first.
   */
  forEach(fn: (slot: number) => void, from = 0, to = this.#cap): void {
    this.finishResize();
    const a = this.data;
    const st = this.#stride;
    const end = Math.min(to, this.#cap);
    for (let i = from; i < end; i++) if (a[i * st] === FULL) fn(i);
  }

  /**
   * Re-lays the payload to `newWidth` words per slot; `copy` moves one slot's payload (offsets into old/new data).
   * In one call (rare: a table widens once per doubling of the endpoints it tracks).
   */
  widen(newWidth: number, copy: (oldData: Uint32Array, oldOff: number, newData: Uint32Array, newOff: number) => void): void {
    this.finishResize();
    const old = this.data;
    const oldStride = this.#stride;
    this.width = newWidth;
    this.#stride = 3 + newWidth;
    this.data = new Uint32Array(this.#cap * this.#stride);
    for (let i = 0; i <= this.#mask; i++) {
      const b = i * oldStride;
      if (old[b] !== FULL) continue;
      const s = ~this.#probe(old[b + 1] as number, old[b + 2] as number);
      const nb = s * this.#stride;
      this.data[nb] = FULL;
      this.data[nb + 1] = old[b + 1] as number;
      this.data[nb + 2] = old[b + 2] as number;
      copy(old, b + 3, this.data, nb + 3);
    }
  }

  /** Starts moving every entry into a new array of `newCap` slots (finishing a resize still under way first). */
  #resize(newCap: number): void {
    this.finishResize();
    const live = this.#size;
    this.#old = this.data;
    this.#oldMask = this.#mask;
    this.#cursor = 0;
    this.#oldLive = live;
    this.#cap = newCap;
    this.#mask = newCap - 1;
    this.data = new Uint32Array(newCap * this.#stride);
    if (live === 0) this.#dropOld();
  }
}
