/**
 * The approximate prefix-cache index: for each endpoint, an LRU set of the prompt-block hashes believed to
 * be in its KV cache, plus a reverse map hash → endpoints for matching. Single-threaded and synchronous.
 *
 * Capacity is per endpoint, in blocks, fixed when the endpoint is first indexed (upstream behaviour). Entries
 * are `bigint` XXH64 values.
 *
 * Matching costs O(blocks × holders): a popular prefix can be held by every endpoint of the pool. Endpoints
 * therefore get small integer slots, holder lists are arrays of slots, and the walk counts into a reused
 * Int32Array; names are only looked up for the endpoints that matched.
 */

interface EndpointEntry {
  readonly slot: number;
  readonly capacityBlocks: number;
  /** Insertion-ordered: the first element is the least recently used. */
  readonly hashes: Set<bigint>;
}

export class PrefixIndex {
  readonly #endpoints = new Map<string, EndpointEntry>();
  /** Block hash → slots of the endpoints holding it (no duplicates, any order). */
  readonly #holders = new Map<bigint, number[]>();
  /** Slot → endpoint name (undefined for a free slot). */
  readonly #names: Array<string | undefined> = [];
  readonly #freeSlots: number[] = [];
  #counts = new Int32Array(64);
  #size = 0;

  /**
   * Records that `endpoint` now caches every block of `hashes` (a prompt's blocks, first block first).
   * Blocks are touched last-to-first, so the prompt's first block ends up most recently used: under
   * pressure an endpoint loses the tail of a prompt before its head, as vLLM's block pool does, and the
   * shared head (which every prefix match must pass through) survives longest.
   */
  add(endpoint: string, capacityBlocks: number, hashes: readonly bigint[]): void {
    let entry = this.#endpoints.get(endpoint);
    if (entry === undefined) {
      const slot = this.#freeSlots.pop() ?? this.#names.length;
      this.#names[slot] = endpoint;
      entry = { slot, capacityBlocks: Math.max(1, Math.floor(capacityBlocks)), hashes: new Set() };
      this.#endpoints.set(endpoint, entry);
    }
    const lru = entry.hashes;
    const slot = entry.slot;
    for (let i = hashes.length - 1; i >= 0; i--) {
      const h = hashes[i] as bigint;
      if (lru.delete(h)) {
        lru.add(h);
        continue;
      }
      lru.add(h);
      this.#size++;
      const holders = this.#holders.get(h);
      if (holders === undefined) this.#holders.set(h, [slot]);
      else holders.push(slot);
      if (lru.size > entry.capacityBlocks) {
        const oldest = lru.values().next().value as bigint;
        lru.delete(oldest);
        this.#size--;
        this.#dropHolder(oldest, slot);
      }
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
    for (let i = 0; i < hashes.length; i++) {
      const holders = this.#holders.get(hashes[i] as bigint);
      if (holders === undefined) break;
      for (let j = 0; j < holders.length; j++) {
        const slot = holders[j] as number;
        const before = counts[slot] as number;
        counts[slot] = before + 1;
        if (before === 0) touched.push(slot);
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
    for (const h of entry.hashes) this.#dropHolder(h, entry.slot);
    this.#size -= entry.hashes.size;
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
    return entry === undefined ? [] : [...entry.hashes];
  }

  /** Blocks held by `endpoint` (0 when not indexed). */
  blocksOf(endpoint: string): number {
    return this.#endpoints.get(endpoint)?.hashes.size ?? 0;
  }

  /** Total (endpoint, block) entries: upstream's `prefix_indexer_size`. */
  get size(): number {
    return this.#size;
  }

  #dropHolder(h: bigint, slot: number): void {
    const holders = this.#holders.get(h);
    if (holders === undefined) return;
    const i = holders.indexOf(slot);
    if (i < 0) return;
    if (holders.length === 1) {
      this.#holders.delete(h);
      return;
    }
    holders[i] = holders[holders.length - 1] as number;
    holders.pop();
  }
}
