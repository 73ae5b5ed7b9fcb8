/**
 * The approximate prefix-cache index: for each endpoint, an LRU set of the prompt-block hashes believed to
 * be in its KV cache, plus a reverse map hash → endpoints for matching. Single-threaded and synchronous.
 *
 * Capacity is per endpoint, in blocks, fixed when the endpoint is first indexed (upstream behaviour). Entries
 * are `bigint` XXH64 values.
 */

interface EndpointEntry {
  readonly capacityBlocks: number;
  /** Insertion-ordered: the first element is the least recently used. */
  readonly hashes: Set<bigint>;
}

export class PrefixIndex {
  readonly #endpoints = new Map<string, EndpointEntry>();
  readonly #holders = new Map<bigint, Set<string>>();
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
      entry = { capacityBlocks: Math.max(1, Math.floor(capacityBlocks)), hashes: new Set() };
      this.#endpoints.set(endpoint, entry);
    }
    const lru = entry.hashes;
    for (let i = hashes.length - 1; i >= 0; i--) {
      const h = hashes[i] as bigint;
      if (lru.delete(h)) {
        lru.add(h);
        continue;
      }
      lru.add(h);
      this.#size++;
      let holders = this.#holders.get(h);
      if (holders === undefined) {
        holders = new Set();
        this.#holders.set(h, holders);
      }
      holders.add(endpoint);
      if (lru.size > entry.capacityBlocks) {
        const oldest = lru.values().next().value as bigint;
        lru.delete(oldest);
        this.#size--;
        this.#dropHolder(oldest, endpoint);
      }
    }
  }

  /**
   * Walks `hashes` in order and, for each block held by at least one endpoint, counts +1 for every endpoint
   * holding it; stops at the first block nobody holds (upstream's longest-prefix walk). An endpoint's count is
   * the number of blocks it holds within that shared prefix.
   */
  match(hashes: readonly bigint[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (let i = 0; i < hashes.length; i++) {
      const holders = this.#holders.get(hashes[i] as bigint);
      if (holders === undefined) break;
      for (const endpoint of holders) counts.set(endpoint, (counts.get(endpoint) ?? 0) + 1);
    }
    return counts;
  }

  /** Forgets an endpoint and all its blocks. */
  removeEndpoint(endpoint: string): void {
    const entry = this.#endpoints.get(endpoint);
    if (entry === undefined) return;
    for (const h of entry.hashes) this.#dropHolder(h, endpoint);
    this.#size -= entry.hashes.size;
    this.#endpoints.delete(endpoint);
  }

  /** Names of the indexed endpoints. */
  endpoints(): IterableIterator<string> {
    return this.#endpoints.keys();
  }

  /** Capacity (blocks) of an indexed endpoint, or undefined. */
  capacityOf(endpoint: string): number | undefined {
    return this.#endpoints.get(endpoint)?.capacityBlocks;
  }

  /** Blocks held by `endpoint` (0 when not indexed). */
  blocksOf(endpoint: string): number {
    return this.#endpoints.get(endpoint)?.hashes.size ?? 0;
  }

  /** Total (endpoint, block) entries: upstream's `prefix_indexer_size`. */
  get size(): number {
    return this.#size;
  }

  #dropHolder(h: bigint, endpoint: string): void {
    const holders = this.#holders.get(h);
    if (holders === undefined) return;
    holders.delete(endpoint);
    if (holders.size === 0) this.#holders.delete(h);
  }
}
