// Fixed pool of KV blocks with automatic prefix caching, after vLLM's design
// (https://docs.vllm.ai/en/latest/design/prefix_caching/):
//  * a block is pinned while `ref > 0`; a block with `ref == 0` sits in the free queue, oldest use at the head;
//  * a full block may carry a hash; hashed idle blocks are still prefix-cache hits until they are evicted;
//  * allocation pops from the head of the free queue (never-used blocks are there first), dropping the popped
//    block's hash: that is the LRU eviction of idle cached blocks. Pinned blocks are never evicted.
// The free queue is an intrusive doubly-linked list over typed arrays, so every operation is O(1) per block.

const NONE = -1;

/** What `/kv_state` reports of a cached block besides its hash. */
export interface CachedBlockMeta {
  readonly parent: number | null;
  readonly tokenIds: readonly number[];
  readonly loraName: string | null;
  readonly extraKeys: readonly string[] | null;
}

export class BlockPool {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly #ref: Int32Array;
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  readonly #hash: Float64Array;
  readonly #byHash = new Map<number, number>();
  /** What a cached block holds (for `/kv_state`), by block id; set by `cacheBlock` when given. */
  readonly #meta: (CachedBlockMeta | undefined)[] = [];
  #head = NONE;
  #tail = NONE;
  #numFree = 0;
  /** Called with the hash of every cached block that is evicted. */
  onEvict: ((hash: number) => void) | null = null;

  constructor(numBlocks: number, blockSize: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new RangeError(`numBlocks must be ≥ 1, got ${numBlocks}`);
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.#ref = new Int32Array(numBlocks);
    this.#prev = new Int32Array(numBlocks);
    this.#next = new Int32Array(numBlocks);
    this.#hash = new Float64Array(numBlocks).fill(NONE);
    for (let id = 0; id < numBlocks; id++) this.#append(id);
  }

  /** Blocks with `ref == 0` (idle cached ones included). */
  get numFreeBlocks(): number {
    return this.#numFree;
  }

  /** Fraction of blocks pinned by requests, 0..1 (`vllm:kv_cache_usage_perc`). */
  get usage(): number {
    return (this.numBlocks - this.#numFree) / this.numBlocks;
  }

  /** Number of blocks that currently hold a hash (pinned or idle). */
  get numCachedBlocks(): number {
    return this.#byHash.size;
  }

  isCached(hash: number): boolean {
    return this.#byHash.has(hash);
  }

  refCount(blockId: number): number {
    return this.#ref[blockId] ?? 0;
  }

  /** Length of the longest run of `hashes[0..]` present in the cache, at most `maxBlocks`. */
  lookup(hashes: readonly number[], maxBlocks: number): number {
    const limit = Math.min(maxBlocks, hashes.length);
    let n = 0;
    while (n < limit && this.#byHash.has(hashes[n] as number)) n++;
    return n;
  }

  /** How many of the first `count` blocks of a lookup hit are idle (they leave the free queue when acquired). */
  idleHits(hashes: readonly number[], count: number): number {
    let idle = 0;
    for (let i = 0; i < count; i++) {
      const id = this.#byHash.get(hashes[i] as number);
      if (id !== undefined && this.#ref[id] === 0) idle++;
    }
    return idle;
  }

  /** Pins the first `count` hit blocks (which `lookup` reported present) and appends their ids to `out`. */
  acquireHits(hashes: readonly number[], count: number, out: number[]): void {
    for (let i = 0; i < count; i++) {
      const id = this.#byHash.get(hashes[i] as number);
      if (id === undefined) throw new Error(`acquireHits: block ${i} is not cached`);
      if (this.#ref[id] === 0) this.#unlink(id);
      this.#ref[id] = (this.#ref[id] as number) + 1;
      out.push(id);
    }
  }

  /**
   * Takes `n` blocks from the head of the free queue, evicting their hashes, and appends their ids to `out`.
   * All or nothing: returns false and changes nothing when fewer than `n` blocks are free.
   */
  allocate(n: number, out: number[]): boolean {
    if (n > this.#numFree) return false;
    for (let i = 0; i < n; i++) {
      const id = this.#head;
      this.#unlink(id);
      const hash = this.#hash[id] as number;
      if (hash !== NONE) {
        this.#hash[id] = NONE;
        this.#meta[id] = undefined;
        this.#byHash.delete(hash);
        this.onEvict?.(hash);
      }
      this.#ref[id] = 1;
      out.push(id);
    }
    return true;
  }

  /**
   * Gives a pinned full block its hash so later requests can hit it. Returns false (and leaves the block
   * unhashed) when the block already has a hash or another block holds the same hash — as in vLLM, the first
   * copy stays the cached one.
   */
  cacheBlock(blockId: number, hash: number, meta?: CachedBlockMeta): boolean {
    if (this.#hash[blockId] !== NONE || this.#byHash.has(hash)) return false;
    this.#hash[blockId] = hash;
    this.#byHash.set(hash, blockId);
    this.#meta[blockId] = meta;
    return true;
  }

  /** Every cached block: hash, pinned or not, and its metadata when known. */
  *cachedBlocks(): IterableIterator<{ hash: number; pinned: boolean; meta: CachedBlockMeta | undefined }> {
    for (const [hash, id] of this.#byHash) yield { hash, pinned: (this.#ref[id] as number) > 0, meta: this.#meta[id] };
  }

  /** Drops every block's hash, pinned ones too (engine restart at quiescence). */
  clearAll(): void {
    for (const id of this.#byHash.values()) {
      this.#hash[id] = NONE;
      this.#meta[id] = undefined;
    }
    this.#byHash.clear();
  }

  /**
   * Unpins a request's blocks. Blocks reaching `ref == 0` join the tail of the free queue in reverse order, so a
   * request's last blocks are evicted before its first (more widely shared) ones.
   */
  release(blockIds: readonly number[]): void {
    for (let i = blockIds.length - 1; i >= 0; i--) {
      const id = blockIds[i] as number;
      const ref = (this.#ref[id] as number) - 1;
      if (ref < 0) throw new Error(`release: block ${id} is not pinned`);
      this.#ref[id] = ref;
      if (ref === 0) this.#append(id);
    }
  }

  /** Drops every idle block's hash (sleep / cache reset). Pinned blocks keep theirs. Returns the dropped hashes. */
  clearIdle(): number[] {
    const dropped: number[] = [];
    for (let id = this.#head; id !== NONE; id = this.#next[id] as number) {
      const hash = this.#hash[id] as number;
      if (hash === NONE) continue;
      this.#hash[id] = NONE;
      this.#meta[id] = undefined;
      this.#byHash.delete(hash);
      dropped.push(hash);
    }
    return dropped;
  }

  #append(id: number): void {
    this.#prev[id] = this.#tail;
    this.#next[id] = NONE;
    if (this.#tail === NONE) this.#head = id;
    else this.#next[this.#tail] = id;
    this.#tail = id;
    this.#numFree++;
  }

  #unlink(id: number): void {
    const prev = this.#prev[id] as number;
    const next = this.#next[id] as number;
    if (prev === NONE) this.#head = next;
    else this.#next[prev] = next;
    if (next === NONE) this.#tail = prev;
    else this.#prev[next] = prev;
    this.#numFree--;
  }
}
