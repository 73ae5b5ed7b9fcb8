// KV-cache events (sim-spec §3.3), vLLM's event schema with JSON-friendly field names. Events are collected only
// while someone listens, and delivered in one batch per engine step.

export interface BlockStoredEvent {
  readonly type: 'BlockStored';
  /** 53-bit block hashes, parent-to-child order. */
  readonly block_hashes: readonly number[];
  /** Hash of the block before the first stored one; null when the first stored block starts the sequence. */
  readonly parent_block_hash: number | null;
  /** Token ids of all stored blocks, concatenated. */
  readonly token_ids: readonly number[];
  readonly block_size: number;
  readonly lora_name: string | null;
  readonly medium: 'GPU';
  /** Per block, as vLLM: the LoRA name (every block) and the cache salt (block 0); null when a block has none. */
  readonly extra_keys: readonly (readonly string[] | null)[];
}

export interface BlockRemovedEvent {
  readonly type: 'BlockRemoved';
  readonly block_hashes: readonly number[];
  readonly medium: 'GPU';
}

export interface AllBlocksClearedEvent {
  readonly type: 'AllBlocksCleared';
}

export type KvEvent = BlockStoredEvent | BlockRemovedEvent | AllBlocksClearedEvent;

export interface KvEventBatch {
  /** Per-server sequence number, starting at 0, +1 per batch. */
  readonly seq: number;
  /** Unix time of the batch in seconds. */
  readonly ts: number;
  readonly events: readonly KvEvent[];
  readonly data_parallel_rank: number;
}

export type KvEventListener = (batch: KvEventBatch) => void;

/** Per-server KV event emitter. Listeners are called synchronously at `flush`, in subscription order. */
export class KvEventHub {
  readonly #listeners = new Set<KvEventListener>();
  #pending: KvEvent[] = [];
  #seq = 0;

  /** Seq of the last batch delivered (−1 before the first). */
  get lastSeq(): number {
    return this.#seq - 1;
  }

  /** Engine restart: drops queued events; the next batch is seq 0 again. */
  reset(): void {
    this.#pending = [];
    this.#seq = 0;
  }

  /** True while at least one listener is subscribed; producers skip building events otherwise. */
  get active(): boolean {
    return this.#listeners.size > 0;
  }

  /** Adds a listener; returns its unsubscribe function. */
  subscribe(listener: KvEventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Queues an event for the next batch (dropped when nobody listens). */
  push(event: KvEvent): void {
    if (this.#listeners.size > 0) this.#pending.push(event);
  }

  /** Delivers queued events as one batch; no-op when none is queued. A throwing listener is unsubscribed. */
  flush(unixMs: number): void {
    if (this.#pending.length === 0) return;
    const batch: KvEventBatch = { seq: this.#seq++, ts: unixMs / 1000, events: this.#pending, data_parallel_rank: 0 };
    this.#pending = [];
    for (const listener of this.#listeners) {
      try {
        listener(batch);
      } catch {
        this.#listeners.delete(listener);
      }
    }
  }
}
