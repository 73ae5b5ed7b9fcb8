/**
 * The dual-key KV block index (llm-d's design, our data layout).
 *
 * - Request keys (ours, `RequestKeyer`) → per-tier endpoint bitmasks, in one open-addressing hash table over
 *   typed arrays: key halves `hi`/`lo`, then `T × W` uint32 mask words per slot (T = tiers + 1 speculative
 *   tier, W = ⌈endpoint slots / 32⌉). Linear probing, backward-shift deletion, no tombstones.
 * - Per endpoint: engine key (the engine's opaque hash) → {request key, refcount per tier}, another typed-array
 *   table. Refcounts model vLLM's legal duplicate stores (one hash stored twice, removed once → still cached).
 *   When two engine keys of one endpoint map to the same request key (an alias: engine hashes cover something
 *   our keys do not), an alias count keeps the endpoint's bit until the last of them goes.
 *
 * Matching walks the request's keys in order and ANDs the masks with the still-active candidates, stopping when
 * none is left: the longest consecutive prefix per endpoint, weighted per block by its best tier.
 *
 * Why one file: both tables (`PairTable`, src/util/pair-table.ts) are updated together (refcounts, aliases); split,
 * the invariants between them would span files.
 */
import { EMPTY, PairTable } from '../../../util/pair-table.ts';

/** Blocks probed ahead of the walk in `match`. */
const MATCH_CHUNK = 32;

/**
 * Engine-key slots of cleared endpoints whose request-key bits are taken off per call of `clear`, `store`,
 * `storeCopy`, `remove` or `drainClears` (≈ 0.25 µs per held block: ≈ 0.5 ms per call at most). A cleared
 * endpoint is invisible at once; this only bounds how long its leftover bits hold memory.
 */
export const CLEAR_SLOTS_PER_CALL = 2048;

/**
 * Slots a clear may leave retired (waiting for live speculations to expire) before the next such clear sweeps its
 * slot free at once instead: an engine clearing its cache again and again while requests are routed to it would
 * otherwise retire a slot per clear, and every 32 slots widen every request key by a word per tier.
 */
const MAX_RETIRED_SLOTS = 32;
/** Speculation handles: slot + generation × SLOT_SPAN (a sweep bumps the generation, voiding older handles). */
const SLOT_SPAN = 1 << 16;

/** A cleared endpoint whose stored bits `drainClears` is taking off, and the next engine-key slot to visit. */
interface ClearDrain {
  readonly entries: EndpointEntries;
  cursor: number;
}

/** Per-endpoint state: engine key table (payload: rk hi, rk lo, refcount per tier) and alias counts. */
class EndpointEntries {
  readonly slot: number;
  readonly eng: PairTable;
  /** `${rkHi}:${rkLo}:${tier}` → extra engine keys mapping to the same request key (rare). */
  readonly aliases = new Map<string, number>();
  /** Engine keys with a copy on each tier (`stats().byTier` sums them over the endpoints). */
  readonly byTier: number[];

  constructor(slot: number, tiers: number) {
    this.slot = slot;
    this.eng = new PairTable(2 + tiers, 64);
    this.byTier = new Array<number>(tiers).fill(0);
  }
}

export interface MatchResult {
  /** Consecutive prefix blocks held, per candidate position (0 when none). */
  readonly blocks: Float64Array;
  /** The same, weighted per block by the best tier holding it. */
  readonly weighted: Float64Array;
}

export interface IndexStats {
  readonly requestKeys: number;
  /** (endpoint, engine key) entries, i.e. cached block replicas. */
  readonly replicas: number;
  /** Replicas per tier. */
  readonly byTier: readonly number[];
  /** Bytes held by the index's typed arrays. */
  readonly bytes: number;
}

export class KvBlockIndex {
  /** Tier names (lower case), e.g. ["gpu", "cpu"]; the speculative tier comes after them. */
  readonly tiers: readonly string[];
  readonly tierWeights: Float64Array;
  readonly #T: number;
  #W = 1;
  readonly #rk: PairTable;
  readonly #endpoints = new Map<string, EndpointEntries>();
  /**
   * Slot → its endpoint's entries; undefined = free; null = retired: its endpoint was cleared while speculations
   * still held bits on it, so it is not reused until `removeSpeculative` has taken the last of them off.
   */
  readonly #slots: (EndpointEntries | null | undefined)[] = [];
  /** Live speculations per slot (`addSpeculative` − `removeSpeculative`). */
  readonly #speculations: number[] = [];
  /** Cleared endpoints whose stored bits are still being taken off (oldest first). */
  readonly #draining: ClearDrain[] = [];
  /** Per slot, bumped when a sweep frees it with speculations still live (their handles then do nothing). */
  readonly #generation: number[] = [];
  readonly #clearSlotsPerCall: number;
  #activeScratch = new Uint32Array(1);
  readonly #baseScratch = new Int32Array(MATCH_CHUNK);
  /**
   * Upper bound of speculative bits set (added − removed; clears may remove more): when 0, matching skips the
   * speculative tier. Never under-counts, so a set bit is never ignored.
   */
  #speculativeBits = 0;

  /** `clearSlotsPerCall`: see `CLEAR_SLOTS_PER_CALL` (tests lower it to interleave drains with everything else). */
  constructor(tiers: readonly { name: string; weight: number }[], clearSlotsPerCall = CLEAR_SLOTS_PER_CALL) {
    this.#clearSlotsPerCall = clearSlotsPerCall;
    this.tiers = tiers.map((t) => t.name.toLowerCase());
    this.tierWeights = Float64Array.from(tiers.map((t) => t.weight));
    this.#T = tiers.length + 1;
    this.#rk = new PairTable(this.#T * this.#W, 1024);
  }

  get speculativeTier(): number {
    return this.#T - 1;
  }

  /** Tier index of an event's `medium` (null = first tier, i.e. GPU); −1 when unknown. */
  tierOf(medium: string | null): number {
    return medium === null ? 0 : this.tiers.indexOf(medium.toLowerCase());
  }

  /** Endpoint slot (bit position), allocated on first use. */
  slotOf(endpoint: string): number {
    return this.#entries(endpoint).slot;
  }

  hasEndpoint(endpoint: string): boolean {
    return this.#endpoints.has(endpoint);
  }

  #entries(endpoint: string): EndpointEntries {
    let e = this.#endpoints.get(endpoint);
    if (e !== undefined) return e;
    let slot = this.#slots.indexOf(undefined);
    if (slot < 0) slot = this.#slots.length;
    if (slot >= this.#W * 32) this.#widen(Math.ceil((slot + 1) / 32));
    e = new EndpointEntries(slot, this.#T - 1);
    this.#slots[slot] = e;
    this.#endpoints.set(endpoint, e);
    return e;
  }

  #widen(W: number): void {
    const T = this.#T;
    const oldW = this.#W;
    this.#rk.widen(T * W, (o, oo, n, no) => {
      for (let t = 0; t < T; t++) for (let w = 0; w < oldW; w++) n[no + t * W + w] = o[oo + t * oldW + w] as number;
    });
    this.#W = W;
  }

  #setBit(rkHi: number, rkLo: number, tier: number, slot: number): void {
    const s = this.#rk.insert(rkHi, rkLo);
    const W = this.#W;
    const i = this.#rk.off(s) + tier * W + (slot >>> 5);
    this.#rk.data[i] = ((this.#rk.data[i] as number) | (1 << (slot & 31))) >>> 0;
  }

  #hasBit(rkHi: number, rkLo: number, tier: number, slot: number): boolean {
    const s = this.#rk.find(rkHi, rkLo);
    if (s < 0) return false;
    const W = this.#W;
    return (((this.#rk.data[this.#rk.off(s) + tier * W + (slot >>> 5)] as number) >>> (slot & 31)) & 1) === 1;
  }

  #clearBit(rkHi: number, rkLo: number, tier: number, slot: number): void {
    const s = this.#rk.find(rkHi, rkLo);
    if (s < 0) return;
    const W = this.#W;
    const base = this.#rk.off(s);
    const data = this.#rk.data;
    const i = base + tier * W + (slot >>> 5);
    const word = ((data[i] as number) & ~(1 << (slot & 31))) >>> 0;
    data[i] = word;
    if (word !== 0) return; // another endpoint's bit in the same word: the entry stays
    for (let k = base; k < base + this.#T * W; k++) if (data[k] !== 0) return;
    this.#rk.removeAt(s);
  }

  /** Engine key lookup: the request key (hi, lo) it maps to on this endpoint, or undefined. */
  requestKeyOf(endpoint: string, engHi: number, engLo: number): [number, number] | undefined {
    const e = this.#endpoints.get(endpoint);
    if (e === undefined) return undefined;
    const s = e.eng.find(engHi, engLo);
    if (s < 0) return undefined;
    const o = e.eng.off(s);
    return [e.eng.data[o] as number, e.eng.data[o + 1] as number];
  }

  /**
   * Records one stored copy of engine key → request key on `tier`. Returns 'new', 'dup' (refcount +1) or
   * 'conflict' (the engine key is already mapped to a different request key: refcount +1, old mapping kept).
   */
  store(endpoint: string, engHi: number, engLo: number, rkHi: number, rkLo: number, tier: number): 'new' | 'dup' | 'conflict' {
    if (this.#draining.length > 0) this.drainClears();
    const e = this.#entries(endpoint);
    let s = e.eng.find(engHi, engLo);
    let result: 'new' | 'dup' | 'conflict' = 'dup';
    if (s < 0) {
      s = e.eng.insert(engHi, engLo);
      const o = e.eng.off(s);
      e.eng.data[o] = rkHi;
      e.eng.data[o + 1] = rkLo;
      result = 'new';
    }
    const o = e.eng.off(s);
    const eh = e.eng.data[o] as number;
    const el = e.eng.data[o + 1] as number;
    if (result === 'dup' && (eh !== rkHi || el !== rkLo)) result = 'conflict';
    const refIdx = o + 2 + tier;
    const ref = e.eng.data[refIdx] as number;
    e.eng.data[refIdx] = ref + 1;
    if (ref === 0) {
      e.byTier[tier] = (e.byTier[tier] as number) + 1;
      if (this.#hasBit(eh, el, tier, e.slot)) {
        const k = `${eh}:${el}:${tier}`;
        e.aliases.set(k, (e.aliases.get(k) ?? 0) + 1);
      } else {
        this.#setBit(eh, el, tier, e.slot);
      }
    }
    return result;
  }

  /** Tier copy of an existing engine key (e.g. GPU → CPU offload, no tokens). False when the key is unknown. */
  storeCopy(endpoint: string, engHi: number, engLo: number, tier: number): boolean {
    const rk = this.requestKeyOf(endpoint, engHi, engLo);
    if (rk === undefined) return false;
    this.store(endpoint, engHi, engLo, rk[0], rk[1], tier);
    return true;
  }

  /** Removes one copy on `tier`. Returns false when the engine key (or that tier) is unknown. */
  remove(endpoint: string, engHi: number, engLo: number, tier: number): boolean {
    if (this.#draining.length > 0) this.drainClears();
    const e = this.#endpoints.get(endpoint);
    if (e === undefined) return false;
    const s = e.eng.find(engHi, engLo);
    if (s < 0) return false;
    const o = e.eng.off(s);
    const refIdx = o + 2 + tier;
    const ref = e.eng.data[refIdx] as number;
    if (ref === 0) return false;
    e.eng.data[refIdx] = ref - 1;
    if (ref > 1) return true;
    e.byTier[tier] = (e.byTier[tier] as number) - 1;
    const rkHi = e.eng.data[o] as number;
    const rkLo = e.eng.data[o + 1] as number;
    const k = `${rkHi}:${rkLo}:${tier}`;
    const alias = e.aliases.size === 0 ? undefined : e.aliases.get(k);
    if (alias !== undefined) {
      if (alias <= 1) e.aliases.delete(k);
      else e.aliases.set(k, alias - 1);
    } else {
      this.#clearBit(rkHi, rkLo, tier, e.slot);
    }
    let any = false;
    for (let t = 0; t < this.#T - 1; t++) if (e.eng.data[o + 2 + t] !== 0) any = true;
    if (!any) e.eng.removeAt(s);
    return true;
  }

  /**
   * Drops everything known about `endpoint` (AllBlocksCleared, restart, desync), speculative bits included. At once
   * it is matched no more: its slot is retired (no endpoint maps to it; the name gets a fresh slot when it stores
   * again) and its replicas leave the stats. Its stored bits are then taken off the request-key table a bounded
   * number of its blocks per call (`CLEAR_SLOTS_PER_CALL`), and its speculations' bits by their expiry
   * (`removeSpeculative`, by slot); the slot is reused once both are done. One call per clear costs ≈ 0.25 µs per
   * block otherwise: ≈ 7 ms for an endpoint of 30k blocks (and, before session 11, a sweep of the whole table).
   */
  clear(endpoint: string): void {
    const e = this.#endpoints.get(endpoint);
    if (e === undefined) return;
    this.#endpoints.delete(endpoint);
    this.#slots[e.slot] = null;
    if ((this.#speculations[e.slot] ?? 0) > 0 && this.#slots.filter((x) => x === null).length > MAX_RETIRED_SLOTS) {
      this.#sweepSlot(e.slot);
      return;
    }
    this.#draining.push({ entries: e, cursor: 0 });
    this.drainClears();
  }

  /** Frees a retired slot once nothing holds it any more: no live speculation, no stored bits left to drain. */
  #releaseIfIdle(slot: number): void {
    if (this.#slots[slot] !== null || (this.#speculations[slot] ?? 0) > 0) return;
    if (this.#draining.some((d) => d.entries.slot === slot)) return;
    this.#slots[slot] = undefined;
  }

  /**
   * Takes every bit of `slot` off the whole request-key table in this call and frees the slot, voiding its live
   * speculations' handles (the bound on retired slots; O(table)).
   */
  #sweepSlot(slot: number): void {
    const W = this.#W;
    const T = this.#T;
    const word = slot >>> 5;
    const bit = 1 << (slot & 31);
    const dead: [number, number][] = [];
    const rk = this.#rk;
    rk.forEach((s) => {
      const data = rk.data;
      const o = rk.off(s);
      let any = false;
      for (let t = 0; t < T; t++) data[o + t * W + word] = ((data[o + t * W + word] as number) & ~bit) >>> 0;
      for (let k = o; k < o + T * W; k++) if (data[k] !== 0) any = true;
      if (!any) dead.push([rk.hiAt(s), rk.loAt(s)]);
    });
    for (const [h, l] of dead) {
      const s = rk.find(h, l);
      if (s >= 0) rk.removeAt(s);
    }
    this.#speculations[slot] = 0;
    this.#generation[slot] = (this.#generation[slot] ?? 0) + 1;
    this.#slots[slot] = undefined;
  }

  /**
   * Takes cleared endpoints' stored bits off the request-key table, at most `CLEAR_SLOTS_PER_CALL` of their
   * engine-key slots. Called by every mutation and by the producer's 1 s timer; a no-op when nothing is pending.
   */
  drainClears(): void {
    let budget = this.#clearSlotsPerCall;
    const T = this.#T;
    while (budget > 0 && this.#draining.length > 0) {
      const d = this.#draining[0] as ClearDrain;
      const { eng, slot } = d.entries; // nothing inserts into or removes from a cleared endpoint's table
      const end = Math.min(eng.capacity, d.cursor + budget);
      eng.forEach(
        (s) => {
          const o = eng.off(s);
          for (let t = 0; t < T - 1; t++) if (eng.data[o + 2 + t] !== 0) this.#clearBit(eng.data[o] as number, eng.data[o + 1] as number, t, slot);
        },
        d.cursor,
        end,
      );
      budget -= end - d.cursor;
      d.cursor = end;
      if (end < eng.capacity) break;
      this.#draining.shift();
      this.#releaseIfIdle(slot);
    }
  }

  /**
   * Sets the speculative bit of `endpoint` on keys[0, n) and returns the handle `removeSpeculative` takes: the slot
   * and its generation (the endpoint may have been cleared, and its name given a new slot, before the speculation
   * expires; a sweep of the slot meanwhile voids the handle).
   */
  addSpeculative(endpoint: string, hi: ArrayLike<number>, lo: ArrayLike<number>, n: number): number {
    const slot = this.#entries(endpoint).slot;
    const t = this.#T - 1;
    for (let i = 0; i < n; i++) this.#setBit(hi[i] as number, lo[i] as number, t, slot);
    this.#speculativeBits += n;
    this.#speculations[slot] = (this.#speculations[slot] ?? 0) + 1;
    return slot + (this.#generation[slot] ?? 0) * SLOT_SPAN;
  }

  /**
   * Clears the speculative bits that `addSpeculative` set on keys[0, n), by the handle it returned: the
   * speculation's expiry. Nothing when a sweep has freed the slot since (the bits went with it).
   */
  removeSpeculative(handle: number, hi: ArrayLike<number>, lo: ArrayLike<number>, n: number): void {
    const slot = handle % SLOT_SPAN;
    if ((this.#generation[slot] ?? 0) !== (handle - slot) / SLOT_SPAN) return;
    const live = this.#speculations[slot] ?? 0;
    if (live === 0) return;
    const t = this.#T - 1;
    for (let i = 0; i < n; i++) this.#clearBit(hi[i] as number, lo[i] as number, t, slot);
    this.#speculativeBits = Math.max(0, this.#speculativeBits - n);
    this.#speculations[slot] = live - 1;
    this.#releaseIfIdle(slot);
  }

  /**
   * Longest consecutive prefix of keys[0, n) held by each candidate (by endpoint slot; −1 = never indexed).
   * `speculative` adds the speculative tier (weight 1). Allocation: the two result arrays and the scratch mask.
   */
  match(hi: ArrayLike<number>, lo: ArrayLike<number>, n: number, slots: ArrayLike<number>, speculative = true): MatchResult {
    const m = slots.length;
    const blocks = new Float64Array(m);
    const weighted = new Float64Array(m);
    const W = this.#W;
    const T = this.#T;
    if (this.#activeScratch.length < W) this.#activeScratch = new Uint32Array(W);
    const active = this.#activeScratch;
    active.fill(0, 0, W);
    let anyActive = false;
    for (let c = 0; c < m; c++) {
      const s = slots[c] as number;
      if (s < 0) continue;
      active[s >>> 5] = ((active[s >>> 5] as number) | (1 << (s & 31))) >>> 0;
      anyActive = true;
    }
    // Per-slot counters of blocks held only on a lower tier (weight < 1).
    const maxSlot = W * 32;
    const lowTierWeight = new Float64Array(maxSlot);
    const endAt = new Int32Array(maxSlot).fill(-1);
    const data = this.#rk.data;
    const tiers = T - 1;
    const specOn = speculative && this.#speculativeBits > 0 ? 1 : 0;
    const w0 = this.tierWeights[0] as number;
    const rk = this.#rk;
    // The inlined probe below is rk.find's; while rk resizes (raw() undefined) some keys are only in its old array,
    // so find() itself runs (it moves what it finds into `data`, leaving earlier slots and `bases` valid).
    const raw = rk.raw();
    const tab = raw?.a;
    const stride = raw?.stride ?? 0;
    const mask = raw?.mask ?? 0;
    const bases = this.#baseScratch;
    let i = 0;
    while (i < n && anyActive) {
      // Probe a chunk of blocks first, then walk it: the probes of a chunk are independent, so their cache misses
      // overlap (one probe per block inside the walk left each miss waiting on the previous block's work).
      const chunk = i;
      const lim = Math.min(n, i + MATCH_CHUNK);
      for (let j = i; j < lim; j++) {
        const h = hi[j] as number;
        const l = lo[j] as number;
        let base = -1;
        if (tab === undefined) {
          const found = rk.find(h, l);
          if (found >= 0) base = rk.off(found);
        } else {
          let s = l & mask; // = PairTable's home slot
          for (;;) {
            const b = s * stride;
            if (tab[b] === EMPTY) break;
            if (tab[b + 2] === l && tab[b + 1] === h) {
              base = b + 3;
              break;
            }
            s = (s + 1) & mask;
          }
        }
        bases[j - chunk] = base;
      }
      for (; i < lim; i++) {
        const base = bases[i - chunk] as number;
        if (base < 0) {
          // No endpoint holds block i: every candidate still active ends here.
          for (let w = 0; w < W; w++) {
            let dropped = active[w] as number;
            while (dropped !== 0) {
              const b = 31 - Math.clz32(dropped);
              endAt[w * 32 + b] = i;
              dropped = (dropped & ~(1 << b)) >>> 0;
            }
            active[w] = 0;
          }
          anyActive = false;
          break;
        }
        let any = false;
        for (let w = 0; w < W; w++) {
          const a = active[w] as number;
          if (a === 0) continue;
          let top = data[base + w] as number; // tier 0 (GPU), and the speculative tier (weight 1 too)
          if (specOn === 1) top |= data[base + tiers * W + w] as number;
          if (((top & a) >>> 0) === a) {
            // Every active candidate holds block i on a weight-1 tier: nothing ends, nothing to weigh.
            any = true;
            continue;
          }
          let held = top;
          if (tiers === 2) held |= data[base + W + w] as number;
          else for (let t = 1; t < tiers; t++) held |= data[base + t * W + w] as number;
          held &= a;
          let dropped = (a & ~held) >>> 0;
          while (dropped !== 0) {
            const b = 31 - Math.clz32(dropped);
            endAt[w * 32 + b] = i;
            dropped = (dropped & ~(1 << b)) >>> 0;
          }
          let low = (held & ~top) >>> 0;
          while (low !== 0) {
            const b = 31 - Math.clz32(low);
            let best = 0;
            for (let t = 1; t < tiers; t++) {
              if ((((data[base + t * W + w] as number) >>> b) & 1) === 1) best = Math.max(best, this.tierWeights[t] as number);
            }
            lowTierWeight[w * 32 + b] = (lowTierWeight[w * 32 + b] as number) + (w0 - best);
            low = (low & ~(1 << b)) >>> 0;
          }
          active[w] = held >>> 0;
          if (held !== 0) any = true;
        }
        anyActive = any;
        if (!any) break;
      }
    }
    for (let c = 0; c < m; c++) {
      const s = slots[c] as number;
      if (s < 0) continue;
      const end = endAt[s] as number;
      const len = end < 0 ? i : end;
      blocks[c] = len;
      weighted[c] = len * w0 - (lowTierWeight[s] as number);
    }
    return { blocks, weighted };
  }

  /** Request keys (as "hi:lo" strings) held by `endpoint` on a non-speculative tier — for tests and dumps. */
  keysOf(endpoint: string): Set<string> {
    const out = new Set<string>();
    const e = this.#endpoints.get(endpoint);
    if (e === undefined) return out;
    e.eng.forEach((s) => out.add(`${e.eng.data[e.eng.off(s)]}:${e.eng.data[e.eng.off(s) + 1]}`));
    return out;
  }

  /** Engine key → summed refcount over tiers, for `endpoint` (tests, drift dumps). */
  engineRefs(endpoint: string): Map<string, number> {
    const out = new Map<string, number>();
    const e = this.#endpoints.get(endpoint);
    if (e === undefined) return out;
    e.eng.forEach((s) => {
      let ref = 0;
      for (let t = 0; t < this.#T - 1; t++) ref += e.eng.data[e.eng.off(s) + 2 + t] as number;
      const key = (BigInt(e.eng.hiAt(s)) << 32n) | BigInt(e.eng.loAt(s));
      out.set(key.toString(), ref);
    });
    return out;
  }

  /** Replicas (engine entries with a non-zero refcount on some tier) of one endpoint. */
  replicasOf(endpoint: string): number {
    return this.#endpoints.get(endpoint)?.eng.size ?? 0;
  }

  endpoints(): IterableIterator<string> {
    return this.#endpoints.keys();
  }

  stats(): IndexStats {
    let bytes = this.#rk.bytes;
    let replicas = 0;
    const byTier = new Array<number>(this.#T - 1).fill(0);
    for (const e of this.#endpoints.values()) {
      bytes += e.eng.bytes;
      replicas += e.eng.size;
      e.byTier.forEach((n, t) => (byTier[t] = (byTier[t] as number) + n));
    }
    return { requestKeys: this.#rk.size, replicas, byTier, bytes };
  }
}
