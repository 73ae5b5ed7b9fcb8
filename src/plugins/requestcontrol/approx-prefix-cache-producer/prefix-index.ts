/**
 * The approximate prefix-cache index: for each endpoint, an LRU set of the prompt-block hashes believed to
 * be in its KV cache, plus a reverse map hash → endpoints for matching. Single-threaded and synchronous.
 *
 * Capacity is per endpoint, in blocks, fixed when the endpoint is first indexed (upstream behaviour). Entries
 * are XXH64 values, given and returned as `bigint`.
 *
 * Layout (no JavaScript object per entry, so neither the collector nor a hash-table rehash ever scales with the
 * index): one pool of nodes over typed arrays, a node being one (endpoint, block) entry with its 64-bit hash as
 * two uint32 halves; per endpoint, a `PairTable` hash → node and a doubly linked recency list through the nodes
 * (touching a block relinks it, no table changes); one `PairTable` hash → bitmask of the slots of the endpoints
 * holding it, one bit per endpoint slot in ⌈slots / 32⌉ words next to the key (a match reads one cache line per
 * block, where a chain of holder nodes scattered over the pool cost a cache miss per holder: 1.8× the scoring time
 * at 96 endpoints, `bench:prefix-index`). A `Set<bigint>` LRU (delete + add on every touch) made V8 rehash an endpoint's whole
 * set every few thousand touches — 1–2 ms pauses, at a rate set by how many placements a replica applies.
 *
 * Matching costs O(blocks × holders): a popular prefix can be held by every endpoint of the pool. Endpoints
 * have small integer slots and the walk counts into a reused Int32Array; names are only looked up for the
 * endpoints that matched.
 */
import type { BlockHashHalves } from '../../../framework/replication.ts';
import { PairTable } from '../../../util/pair-table.ts';
import { HI, LO, U64, U64_HALVES } from '../../../util/u64-halves.ts';

interface EndpointEntry {
  readonly slot: number;
  readonly capacityBlocks: number;
  /** hash → node. */
  readonly nodes: PairTable;
  /** Least recently used node (−1 when empty). */
  head: number;
  /** Most recently used node (−1 when empty). */
  tail: number;
}


const INITIAL_NODES = 1024;

/**
 * A walk over one endpoint's recency list that survives changes to the index between its steps
 * (`PrefixIndex.walkHalves`). `node` is the next node to visit (−1: finished); the index moves it on whenever that
 * node is touched, evicted or its endpoint removed, so the walk never follows a node that left the list.
 */
interface Walk {
  readonly slot: number;
  node: number;
  /** Visits left before the walk is cut (bounds a walk over an endpoint that grows faster than it is walked). */
  left: number;
}

export class PrefixIndex {
  readonly #endpoints = new Map<string, EndpointEntry>();
  /** Block hash → bitmask of the slots holding it (word w, bit b = slot 32w + b); widened as slots are added. */
  readonly #holders = new PairTable(1, 1024);
  /** Slot → endpoint name (undefined for a free slot). */
  readonly #names: Array<string | undefined> = [];
  readonly #freeSlots: number[] = [];
  #counts = new Int32Array(64);
  #size = 0;

  // The node pool. A free node is linked through `#next`, from `#free`.
  #slotOf = new Int32Array(INITIAL_NODES);
  #hi = new Uint32Array(INITIAL_NODES);
  #lo = new Uint32Array(INITIAL_NODES);
  /** Recency list of the node's endpoint: toward the least / most recently used. */
  #prev = new Int32Array(INITIAL_NODES);
  #next = new Int32Array(INITIAL_NODES);
  #free = -1;
  #allocated = 0;
  /** Walks under way (`walkHalves`); almost always none or one. */
  readonly #walks: Walk[] = [];
  /** `add`'s scratch: its bigints as halves. */
  #addHi = new Uint32Array(256);
  #addLo = new Uint32Array(256);

  /**
   * Records that `endpoint` now caches every block of `hashes` (a prompt's blocks, first block first).
   * Blocks are touched last-to-first, so the prompt's first block ends up most recently used: under
   * pressure an endpoint loses the tail of a prompt before its head, as vLLM's block pool does, and the
   * shared head (which every prefix match must pass through) survives longest. Keeps nothing of `hashes`.
   */
  add(endpoint: string, capacityBlocks: number, hashes: readonly bigint[]): void {
    const n = hashes.length;
    if (this.#addHi.length < n) {
      this.#addHi = new Uint32Array(Math.max(n, this.#addHi.length * 2));
      this.#addLo = new Uint32Array(this.#addHi.length);
    }
    for (let i = 0; i < n; i++) {
      U64[0] = hashes[i] as bigint;
      this.#addHi[i] = U64_HALVES[HI] as number;
      this.#addLo[i] = U64_HALVES[LO] as number;
    }
    this.addHalves(endpoint, capacityBlocks, this.#addHi, this.#addLo, n);
  }

  /** `add` for hashes given as uint32 halves (block i = hi[i] · 2^32 + lo[i], i < n). Keeps nothing of the arrays. */
  addHalves(endpoint: string, capacityBlocks: number, hashHi: Uint32Array, hashLo: Uint32Array, n: number): void {
    let entry = this.#endpoints.get(endpoint);
    if (entry === undefined) {
      const slot = this.#freeSlots.pop() ?? this.#names.length;
      this.#names[slot] = endpoint;
      entry = { slot, capacityBlocks: Math.max(1, Math.floor(capacityBlocks)), nodes: new PairTable(1, 64), head: -1, tail: -1 };
      this.#endpoints.set(endpoint, entry);
      const words = this.#holders.width;
      if (slot >= words * 32) this.#holders.widen(words * 2, (o, oo, nd, no) => nd.set(o.subarray(oo, oo + words), no));
    }
    const table = entry.nodes;
    for (let i = n - 1; i >= 0; i--) {
      const hi = hashHi[i] as number;
      const lo = hashLo[i] as number;
      const found = table.find(hi, lo);
      if (found >= 0) {
        this.#touch(entry, table.data[table.off(found)] as number);
        continue;
      }
      const node = this.#alloc();
      this.#slotOf[node] = entry.slot;
      this.#hi[node] = hi;
      this.#lo[node] = lo;
      const at = table.insert(hi, lo); // may grow the table: read `data` after
      table.data[table.off(at)] = node;
      this.#append(entry, node);
      const h = this.#holders.insert(hi, lo); // may grow the table: read `data` after
      const word = this.#holders.off(h) + (entry.slot >>> 5);
      this.#holders.data[word] = ((this.#holders.data[word] as number) | (1 << (entry.slot & 31))) >>> 0;
      this.#size++;
      if (table.size > entry.capacityBlocks) this.#evict(entry, entry.head);
    }
  }

  /**
   * Walks `hashes` in order and, for each block held by at least one endpoint, counts +1 for every endpoint
   * holding it; stops at the first block nobody holds (upstream's longest-prefix walk). An endpoint's count is
   * the number of blocks it holds within that shared prefix.
   */
  match(hashes: readonly bigint[]): Map<string, number> {
    if (this.#counts.length < this.#names.length) this.#counts = new Int32Array(this.#names.length * 2);
    const counts = this.#counts;
    const touched: number[] = [];
    const holders = this.#holders;
    const words = holders.width;
    const data = holders.data; // nothing inserts or removes during the walk
    for (let i = 0; i < hashes.length; i++) {
      U64[0] = hashes[i] as bigint;
      const s = holders.find(U64_HALVES[HI] as number, U64_HALVES[LO] as number);
      if (s < 0) break;
      const off = holders.off(s);
      for (let w = 0; w < words; w++) {
        let bits = data[off + w] as number;
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits);
          const slot = (w << 5) | b;
          const before = counts[slot] as number;
          counts[slot] = before + 1;
          if (before === 0) touched.push(slot);
          bits = (bits ^ (1 << b)) >>> 0;
        }
      }
    }
    const result = new Map<string, number>();
    for (const slot of touched) {
      result.set(this.#names[slot] as string, counts[slot] as number);
      counts[slot] = 0;
    }
    return result;
  }

  /** Forgets an endpoint and all its blocks. */
  removeEndpoint(endpoint: string): void {
    const entry = this.#endpoints.get(endpoint);
    if (entry === undefined) return;
    for (const w of this.#walks) if (w.slot === entry.slot) w.node = -1;
    for (let node = entry.head; node >= 0; ) {
      const next = this.#next[node] as number;
      this.#unhold(node);
      this.#release(node);
      node = next;
    }
    this.#size -= entry.nodes.size;
    this.#endpoints.delete(endpoint);
    this.#names[entry.slot] = undefined;
    this.#freeSlots.push(entry.slot);
  }

  /** Names of the indexed endpoints. */
  endpoints(): IterableIterator<string> {
    return this.#endpoints.keys();
  }

  /** Capacity (blocks) of an indexed endpoint, or undefined. */
  capacityOf(endpoint: string): number | undefined {
    return this.#endpoints.get(endpoint)?.capacityBlocks;
  }

  /** The blocks held by `endpoint`, least recently used first (empty when not indexed). */
  hashesOf(endpoint: string): bigint[] {
    const entry = this.#endpoints.get(endpoint);
    const out: bigint[] = [];
    if (entry === undefined) return out;
    for (let node = entry.head; node >= 0; node = this.#next[node] as number) {
      U64_HALVES[HI] = this.#hi[node] as number;
      U64_HALVES[LO] = this.#lo[node] as number;
      out.push(U64[0] as bigint);
    }
    return out;
  }

  /**
   * `endpoint`'s blocks, least recently used first, `maxBlocks` per call of the returned generator's `next`, for
   * a caller that yields to the event loop between steps (a snapshot of an endpoint of 31,250 blocks walked in one
   * go is ≈ 0.4–1.6 ms of pointer chasing on a busy 2-core VM). The index may change between steps; the walk
   * stays on the list: a node that is touched, evicted or removed while it is the next to visit is stepped over
   * first. What a finished walk returned, read keeping each block's last occurrence, lists every block the
   * endpoint holds when the walk finishes, in its recency order at that moment (a block touched after the walk
   * passed it moves to the tail and is visited again there; blocks evicted meanwhile may appear, which an
   * importer's own capacity handles). A walk that would visit more than twice the endpoint's capacity (the
   * endpoint churning faster than it is walked) stops there. Close the generator (`return()`, or leave a
   * `for…of`) to end a walk early. With `into` (arrays of at least `maxBlocks`), every step is written into those
   * arrays, each step overwriting the last: nothing is allocated per step.
   */
  *walkHalves(endpoint: string, maxBlocks: number, into?: { readonly hi: Uint32Array; readonly lo: Uint32Array }): Generator<BlockHashHalves, void, undefined> {
    if (into !== undefined && (into.hi.length < maxBlocks || into.lo.length < maxBlocks)) throw new RangeError(`walkHalves: arrays of ${Math.min(into.hi.length, into.lo.length)} for steps of ${maxBlocks} blocks`);
    const entry = this.#endpoints.get(endpoint);
    if (entry === undefined || maxBlocks < 1) return;
    const walk: Walk = { slot: entry.slot, node: entry.head, left: 2 * entry.capacityBlocks };
    this.#walks.push(walk);
    try {
      while (walk.node >= 0 && walk.left > 0) {
        const k = Math.min(maxBlocks, walk.left, entry.nodes.size);
        const hi = into?.hi ?? new Uint32Array(k);
        const lo = into?.lo ?? new Uint32Array(k);
        let n = 0;
        let node = walk.node;
        for (; node >= 0 && n < k; node = this.#next[node] as number, n++) {
          hi[n] = this.#hi[node] as number;
          lo[n] = this.#lo[node] as number;
        }
        walk.node = node;
        walk.left -= n;
        yield { n, hi, lo };
      }
    } finally {
      this.#walks.splice(this.#walks.indexOf(walk), 1);
    }
  }

  /** Moves every walk whose next node is `node` past it (before `node` is relinked or released). */
  #stepWalksPast(node: number): void {
    for (const w of this.#walks) if (w.node === node) w.node = this.#next[node] as number;
  }

  /** Blocks held by `endpoint` (0 when not indexed). */
  blocksOf(endpoint: string): number {
    return this.#endpoints.get(endpoint)?.nodes.size ?? 0;
  }

  /** Total (endpoint, block) entries: upstream's `prefix_indexer_size`. */
  get size(): number {
    return this.#size;
  }

  /** Makes `node` its endpoint's most recently used. */
  #touch(entry: EndpointEntry, node: number): void {
    if (entry.tail === node) return;
    if (this.#walks.length > 0) this.#stepWalksPast(node);
    const prev = this.#prev[node] as number;
    const next = this.#next[node] as number; // ≥ 0: node is not the tail
    if (prev >= 0) this.#next[prev] = next;
    else entry.head = next;
    this.#prev[next] = prev;
    this.#append(entry, node);
  }

  #append(entry: EndpointEntry, node: number): void {
    this.#prev[node] = entry.tail;
    this.#next[node] = -1;
    if (entry.tail >= 0) this.#next[entry.tail] = node;
    else entry.head = node;
    entry.tail = node;
  }

  #evict(entry: EndpointEntry, node: number): void {
    if (this.#walks.length > 0) this.#stepWalksPast(node);
    const prev = this.#prev[node] as number;
    const next = this.#next[node] as number;
    if (prev >= 0) this.#next[prev] = next;
    else entry.head = next;
    if (next >= 0) this.#prev[next] = prev;
    else entry.tail = prev;
    entry.nodes.removeAt(entry.nodes.find(this.#hi[node] as number, this.#lo[node] as number));
    this.#unhold(node);
    this.#release(node);
    this.#size--;
  }

  /** Clears `node`'s endpoint from its hash's holders (dropping the hash when it was the last holder). */
  #unhold(node: number): void {
    const t = this.#holders;
    const s = t.find(this.#hi[node] as number, this.#lo[node] as number);
    const slot = this.#slotOf[node] as number;
    const off = t.off(s);
    t.data[off + (slot >>> 5)] = ((t.data[off + (slot >>> 5)] as number) & ~(1 << (slot & 31))) >>> 0;
    for (let w = 0; w < t.width; w++) if (t.data[off + w] !== 0) return;
    t.removeAt(s);
  }

  #alloc(): number {
    if (this.#free < 0) this.#grow();
    const node = this.#free;
    this.#free = this.#next[node] as number;
    return node;
  }

  #release(node: number): void {
    this.#next[node] = this.#free;
    this.#free = node;
  }

  /** Doubles the node pool (only while the index grows to a new high; a full index reuses freed nodes). */
  #grow(): void {
    const n = this.#allocated === 0 ? this.#slotOf.length : this.#slotOf.length * 2;
    if (this.#allocated > 0) {
      const widen = <T extends Int32Array | Uint32Array>(a: T, make: (n: number) => T): T => {
        const b = make(n);
        b.set(a);
        return b;
      };
      this.#slotOf = widen(this.#slotOf, (k) => new Int32Array(k));
      this.#hi = widen(this.#hi, (k) => new Uint32Array(k));
      this.#lo = widen(this.#lo, (k) => new Uint32Array(k));
      this.#prev = widen(this.#prev, (k) => new Int32Array(k));
      this.#next = widen(this.#next, (k) => new Int32Array(k));
    }
    for (let i = n - 1; i >= this.#allocated; i--) this.#release(i);
    this.#allocated = n;
  }
}
