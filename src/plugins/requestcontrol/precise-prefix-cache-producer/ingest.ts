/**
 * Applies decoded KV events of one endpoint to the index (design §5.5): BlockStored resolves its parent's
 * request key through the endpoint's engine-key map and chains our keys over `token_ids`; BlockRemoved
 * decrements refcounts; AllBlocksCleared drops the endpoint. Nothing here throws on bad data: it is counted.
 */
import type { KvBlockIndex } from './kv-block-index.ts';
import type { BlockStored, Hash64, KvEvent } from './kv-events.ts';
import { extraWords, type RequestKeyer } from './request-keys.ts';

/** Spec kinds of hybrid models whose blocks are prefix-indexable (others are skipped). */
const INDEXABLE_SPEC_KINDS = new Set(['full_attention', 'mla_attention', 'sink_full']);

export interface IngestCounters {
  blocksStored: number;
  blocksRemoved: number;
  clears: number;
  /** BlockStored whose parent engine key is unknown (lost history): skipped. */
  orphanStores: number;
  /** BlockRemoved of an engine key (or tier) we do not hold. */
  unknownRemoves: number;
  /** An engine key stored again with different tokens. */
  keyConflicts: number;
  /** Events for a medium not in `tierWeights`, or a spec kind that is not full attention: skipped. */
  skipped: number;
  /** BlockStored with a block size other than the configured one. */
  blockSizeMismatches: number;
}

export function newIngestCounters(): IngestCounters {
  return { blocksStored: 0, blocksRemoved: 0, clears: 0, orphanStores: 0, unknownRemoves: 0, keyConflicts: 0, skipped: 0, blockSizeMismatches: 0 };
}

const LOW = 0xffffffffn;
const hashHi = (h: Hash64): number => Number(h >> 32n);
const hashLo = (h: Hash64): number => Number(h & LOW);

export class KvEventApplier {
  readonly #index: KvBlockIndex;
  readonly #keyer: RequestKeyer;
  readonly counters: IngestCounters;
  /** LoRA adapter names seen in events: requests for these models use the adapter's key namespace. */
  readonly loraNames = new Set<string>();
  /** Block size of the last mismatching event (0 = none yet). */
  lastMismatchBlockSize = 0;
  readonly #tmp = new Uint32Array(2);

  constructor(index: KvBlockIndex, keyer: RequestKeyer, counters: IngestCounters = newIngestCounters()) {
    this.#index = index;
    this.#keyer = keyer;
    this.counters = counters;
  }

  /** Applies one endpoint's events in order. Returns false if a block-size mismatch was seen. */
  apply(endpoint: string, events: readonly KvEvent[]): boolean {
    let ok = true;
    for (const ev of events) {
      switch (ev.type) {
        case 'BlockStored':
          if (!this.#stored(endpoint, ev)) ok = false;
          break;
        case 'BlockRemoved': {
          const tier = this.#index.tierOf(ev.medium);
          if (tier < 0) {
            this.counters.skipped++;
            break;
          }
          for (const h of ev.blockHashes) {
            if (this.#index.remove(endpoint, hashHi(h), hashLo(h), tier)) this.counters.blocksRemoved++;
            else this.counters.unknownRemoves++;
          }
          break;
        }
        case 'AllBlocksCleared':
          this.counters.clears++;
          this.#index.clear(endpoint);
          break;
      }
    }
    return ok;
  }

  #stored(endpoint: string, ev: BlockStored): boolean {
    if (ev.specKind !== null && !INDEXABLE_SPEC_KINDS.has(ev.specKind)) {
      this.counters.skipped++;
      return true;
    }
    const tier = this.#index.tierOf(ev.medium);
    if (tier < 0) {
      this.counters.skipped++;
      return true;
    }
    if (ev.tokenIds.length === 0) {
      // A copy of blocks we already know to another tier (offloading): no tokens, resolve by engine key.
      for (const h of ev.blockHashes) {
        if (this.#index.storeCopy(endpoint, hashHi(h), hashLo(h), tier)) this.counters.blocksStored++;
        else this.counters.orphanStores++;
      }
      return true;
    }
    const B = this.#keyer.blockSize;
    if (ev.blockSize !== B || ev.tokenIds.length !== ev.blockHashes.length * B) {
      this.counters.blockSizeMismatches++;
      this.lastMismatchBlockSize = ev.blockSize;
      return false;
    }
    const lora = ev.loraName;
    if (lora !== null && lora !== '' && this.loraNames.size < 10_000) this.loraNames.add(lora);
    let ph: number;
    let pl: number;
    if (ev.parent === null) {
      const r = this.#keyer.root(lora ?? '');
      ph = r[0] as number;
      pl = r[1] as number;
    } else {
      const rk = this.#index.requestKeyOf(endpoint, hashHi(ev.parent), hashLo(ev.parent));
      if (rk === undefined) {
        this.counters.orphanStores += ev.blockHashes.length;
        return true;
      }
      [ph, pl] = rk;
    }
    const t = this.#tmp;
    for (let i = 0; i < ev.blockHashes.length; i++) {
      this.#keyer.next(ph, pl, ev.tokenIds, i * B, extraWords(stripLora(ev.extraKeys?.[i], lora)), t);
      ph = t[0] as number;
      pl = t[1] as number;
      const h = ev.blockHashes[i] as Hash64;
      const r = this.#index.store(endpoint, hashHi(h), hashLo(h), ph, pl, tier);
      if (r === 'conflict') this.counters.keyConflicts++;
      this.counters.blocksStored++;
    }
    return true;
  }
}

/**
 * vLLM puts the LoRA name in every block's extra keys; our keys carry it in the chain's root already, so it is
 * dropped here and the request side only adds what it can know (the cache salt, block 0).
 */
export function stripLora(extra: readonly unknown[] | null | undefined, lora: string | null): readonly unknown[] | null {
  if (extra === null || extra === undefined) return null;
  const out = lora === null ? extra : extra.filter((x) => x !== lora);
  return out.length === 0 ? null : out;
}
