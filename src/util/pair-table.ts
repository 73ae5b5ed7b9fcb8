/**
 * An open-addressing hash table over typed arrays, keyed by 64-bit values split into (hi, lo) uint32 halves, with
 * a fixed number of uint32 payload words per slot. Linear probing and backward-shift deletion: no tombstones, so
 * deleting never makes a later insert pay for a rehash, and the table only resizes when its size crosses a
 * power of two (grow at half full, shrink at an eighth). Nothing is allocated per entry: a table of a million
 * keys is a few typed arrays the garbage collector never has to trace.
 *
 * Keys are expected to be outputs of a finalised 64-bit hash (the low bits pick the home slot).
 */
/** Slot states in `data[slot * stride]` (for hot loops that inline `find` over `raw()`). */
export const EMPTY = 0;
export const FULL = 1;

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
  #size = 0;
  data: Uint32Array;

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

  /** Bytes held by the table. */
  get bytes(): number {
    return this.data.byteLength;
  }

  /** Offset of slot s's payload in `data`. */
  off(slot: number): number {
    return slot * this.#stride + 3;
  }

  /** Keys are outputs of a finalised 64-bit hash, so their low bits are already uniform: no re-mixing needed. */
  static #home(_hi: number, lo: number, mask: number): number {
    return lo & mask;
  }

  /** Slot of (hi, lo) when present, else ~(the empty slot where it would go). */
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

  /** Slot of (hi, lo), or −1. */
  find(hi: number, lo: number): number {
    const i = this.#probe(hi, lo);
    return i >= 0 ? i : -1;
  }

  /** Slot of (hi, lo), inserted with zeroed payload when absent. May grow (slots move): re-find after. */
  insert(hi: number, lo: number): number {
    if ((this.#size + 1) * 2 > this.#cap) this.#resize(this.#cap * 2, this.width);
    const i = this.#probe(hi, lo);
    if (i >= 0) return i;
    const b = ~i * this.#stride;
    const a = this.data;
    a[b] = FULL;
    a[b + 1] = hi;
    a[b + 2] = lo;
    a.fill(0, b + 3, b + this.#stride);
    this.#size++;
    return ~i;
  }

  /** Removes every entry, keeping the capacity (a table refilled to the same size does not grow again). */
  clear(): void {
    this.data.fill(0);
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
    if (this.#cap > 64 && this.#size * 8 < this.#cap) this.#resize(this.#cap / 2, this.width);
  }

  /** The raw array, for a hot loop that inlines `find` (read only; invalid after any insert or remove). */
  raw(): { a: Uint32Array; stride: number; mask: number } {
    return { a: this.data, stride: this.#stride, mask: this.#mask };
  }

  hiAt(slot: number): number {
    return this.data[slot * this.#stride + 1] as number;
  }

  loAt(slot: number): number {
    return this.data[slot * this.#stride + 2] as number;
  }

  /** Calls fn(slot) for every entry (do not insert or remove meanwhile). */
  forEach(fn: (slot: number) => void): void {
    const a = this.data;
    const st = this.#stride;
    for (let i = 0; i < this.#cap; i++) if (a[i * st] === FULL) fn(i);
  }

  /** Re-lays the payload to `newWidth` words per slot; `copy` moves one slot's payload (offsets into old/new data). */
  widen(newWidth: number, copy: (oldData: Uint32Array, oldOff: number, newData: Uint32Array, newOff: number) => void): void {
    this.#resize(this.#cap, newWidth, copy);
  }

  #resize(newCap: number, newWidth: number, copy?: (o: Uint32Array, oo: number, n: Uint32Array, no: number) => void): void {
    const old = this.data;
    const oldStride = this.#stride;
    const oldCap = this.#cap;
    const oldWidth = this.width;
    this.#cap = newCap;
    this.#mask = newCap - 1;
    this.width = newWidth;
    this.#stride = 3 + newWidth;
    this.data = new Uint32Array(newCap * this.#stride);
    this.#size = 0;
    for (let i = 0; i < oldCap; i++) {
      const b = i * oldStride;
      if (old[b] !== FULL) continue;
      const s = this.insert(old[b + 1] as number, old[b + 2] as number);
      if (copy !== undefined) copy(old, b + 3, this.data, this.off(s));
      else this.data.set(old.subarray(b + 3, b + 3 + Math.min(oldWidth, newWidth)), this.off(s));
    }
  }
}
