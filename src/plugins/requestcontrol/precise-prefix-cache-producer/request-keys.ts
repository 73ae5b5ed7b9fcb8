/**
 * Request keys: our own 64-bit chain hash over token-id blocks, so engine hashes (random per engine process)
 * are never compared with anything (llm-d's "dual keys"). A key is kept as two uint32 halves (`hi`, `lo`) in
 * typed arrays: no BigInt or object per block on the scoring path.
 *
 *   root  = H(seed ‖ 0 ‖ loraName)                       (per model namespace: LoRA name or "")
 *   key_i = H(key_{i−1}, tokens[iB, (i+1)B), extra_i)    extra_i: the block's extra keys, canonicalised
 *
 * H is a four-lane 32-bit multiply–xorshift hash (two words per step) with a murmur3-style finaliser and
 * cross-mixing of the lanes.
 * It is not cryptographic: a client who crafts colliding token blocks only earns itself false cache hits.
 */

const encoder = new TextEncoder();

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/**
 * Mixes `words[start, end)` into parent (hi, lo); writes the result to out[0], out[1] (a Uint32Array, or an Int32Array
 * holding the same bits). Values stay int32 throughout: an unsigned value above 2^31 is a heap-allocated number
 * wherever it crosses a call that is not inlined, 16 B per block, which for a 240k-token prompt was 240 KB and
 * ≈ 200 µs per request whenever V8 did not inline this function into the key loop.
 */
function mixBlock(
  parentHi: number, parentLo: number, words: ArrayLike<number>, start: number, end: number, out: Uint32Array | Int32Array,
): void {
  // Four independent lanes, two words per step: even words into (a, c), odd words into (b, d). Every step is a
  // bijection of its lane for a fixed word, so blocks that differ in one word always differ here. The xor-shift in
  // the a and b lanes carries high bits down (multiplication only carries them up; without it, flipping bit 31 of
  // any even word gave one same key); the finaliser below spreads every bit. One two-lane chain with the same
  // work per word took ≈ 1.5× as long for a 240k-token prompt (its multiplies wait on each other).
  let a = parentHi ^ 0x9e3779b9;
  let b = parentHi ^ 0x7f4a7c15;
  let c = parentLo ^ 0x85ebca6b;
  let d = parentLo ^ 0x165667b1;
  let i = start;
  for (; i + 1 < end; i += 2) {
    const t = words[i] as number;
    const u = words[i + 1] as number;
    a = Math.imul(a ^ t, 0x01000193);
    a ^= a >>> 15;
    c = Math.imul(c + t, 0x5bd1e995);
    b = Math.imul(b ^ u, 0x01000193);
    b ^= b >>> 15;
    d = Math.imul(d + u, 0x5bd1e995);
  }
  if (i < end) {
    const t = words[i] as number;
    a = Math.imul(a ^ t, 0x01000193);
    a ^= a >>> 15;
    c = Math.imul(c + t, 0x5bd1e995);
  }
  a ^= rotl(b, 13);
  c ^= rotl(d, 17);
  a ^= Math.imul(end - start, 0x27d4eb2f);
  a ^= c;
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b);
  a = Math.imul(a ^ (a >>> 13), 0xc2b2ae35);
  a ^= a >>> 16;
  c ^= a;
  c = Math.imul(c ^ (c >>> 16), 0x7feb352d);
  c = Math.imul(c ^ (c >>> 15), 0x846ca68b);
  c ^= c >>> 16;
  out[0] = a; // stored mod 2^32: the same bits as a >>> 0, without making an unsigned value
  out[1] = c;
}

function stringWords(s: string): Uint32Array {
  const bytes = encoder.encode(s);
  const words = new Uint32Array(Math.ceil(bytes.length / 4) + 1);
  for (let i = 0; i < bytes.length; i++) words[i >> 2] = ((words[i >> 2] as number) | ((bytes[i] as number) << ((i & 3) * 8))) >>> 0;
  words[words.length - 1] = bytes.length;
  return words;
}

/** Canonical words of one block's extra keys (null/empty → none). Strings, numbers and nested lists only. */
export function extraWords(extra: readonly unknown[] | null | undefined): Uint32Array | undefined {
  if (extra === null || extra === undefined || extra.length === 0) return undefined;
  return stringWords(JSON.stringify(extra, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

export class RequestKeyer {
  readonly blockSize: number;
  readonly #seed: Uint32Array;
  readonly #roots = new Map<string, Uint32Array>();
  /** Scratch (hi, lo) as int32: read back as small integers, never as heap numbers (see mixBlock). */
  readonly #tmp = new Int32Array(2);
  /** Scratch output, grown on demand and reused across calls (hashing is synchronous). */
  #hi = new Uint32Array(1024);
  #lo = new Uint32Array(1024);

  constructor(blockSize: number, hashSeed = '') {
    this.blockSize = blockSize;
    const out = new Uint32Array(2);
    const w = stringWords(hashSeed);
    mixBlock(0x243f6a88, 0x85a308d3, w, 0, w.length, out);
    this.#seed = out;
  }

  /** Root (hi, lo) of the chain for a model namespace (LoRA name, or "" for the base model). */
  root(namespace: string): Uint32Array {
    let r = this.#roots.get(namespace);
    if (r === undefined) {
      r = new Uint32Array(2);
      const w = stringWords(namespace);
      mixBlock(this.#seed[0] as number, this.#seed[1] as number, w, 0, w.length, r);
      if (this.#roots.size < 4096) this.#roots.set(namespace, r);
    }
    return r;
  }

  /** Key of one block after `parent` (hi, lo). */
  next(parentHi: number, parentLo: number, tokens: ArrayLike<number>, start: number, extra: Uint32Array | undefined, out: Uint32Array | Int32Array): void {
    mixBlock(parentHi, parentLo, tokens, start, start + this.blockSize, out);
    if (extra !== undefined) mixBlock(out[0] as number, out[1] as number, extra, 0, extra.length, out);
  }

  /**
   * Keys of every full block of `tokens` (the trailing partial block has none). `extraFor(i)` gives block i's extra
   * key words, if any. Written into `out` when given (its arrays must hold ⌊tokens / blockSize⌋ keys), else into
   * reusable scratch arrays valid until the next call.
   */
  keys(
    namespace: string, tokens: ArrayLike<number>, extraFor?: (block: number) => Uint32Array | undefined, out?: KeyArrays,
  ): { hi: Uint32Array; lo: Uint32Array; n: number } {
    const B = this.blockSize;
    const n = Math.floor(tokens.length / B);
    if (out !== undefined && out.hi.length < n) throw new RangeError(`key arrays hold ${out.hi.length} keys, ${n} needed`);
    if (out === undefined && this.#hi.length < n) {
      this.#hi = new Uint32Array(n);
      this.#lo = new Uint32Array(n);
    }
    const hi = out?.hi ?? this.#hi;
    const lo = out?.lo ?? this.#lo;
    const r = this.root(namespace);
    let ph = r[0] as number;
    let pl = r[1] as number;
    const t = this.#tmp;
    for (let b = 0; b < n; b++) {
      this.next(ph, pl, tokens, b * B, extraFor?.(b), t);
      ph = t[0] as number;
      pl = t[1] as number;
      hi[b] = ph;
      lo[b] = pl;
    }
    return { hi, lo, n };
  }
}

/** A request's key arrays (`hi[i]`, `lo[i]` = block i's key; the arrays may be longer than the request). */
export interface KeyArrays {
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
}

/**
 * Free key arrays for requests whose keys outlive `prepareData` (speculative entries, until they expire): taking a
 * free pair instead of allocating two fresh arrays per request (60 KB each for a 240k-token prompt) saves the
 * allocation, its page faults and the copy. At most `maxFree` pairs are kept; when full, the smallest goes.
 */
export class KeyArrayPool {
  readonly #free: KeyArrays[] = [];
  readonly #maxFree: number;
  /** Pairs allocated (not reused), for tests and the benchmark. */
  allocated = 0;

  constructor(maxFree = 16) {
    this.#maxFree = maxFree;
  }

  get free(): number {
    return this.#free.length;
  }

  /** A pair holding at least `n` keys: the smallest free one that fits, else a new one. The caller owns it. */
  take(n: number): KeyArrays {
    const f = this.#free;
    let best = -1;
    for (let i = 0; i < f.length; i++) {
      const len = (f[i] as KeyArrays).hi.length;
      if (len >= n && (best < 0 || len < (f[best] as KeyArrays).hi.length)) best = i;
    }
    if (best >= 0) {
      const k = f[best] as KeyArrays;
      f[best] = f[f.length - 1] as KeyArrays;
      f.pop();
      return k;
    }
    this.allocated++;
    const cap = Math.max(n, 256);
    return { hi: new Uint32Array(cap), lo: new Uint32Array(cap) };
  }

  /** Gives a pair back; the caller must not touch it afterwards. */
  give(k: KeyArrays): void {
    const f = this.#free;
    if (f.length < this.#maxFree) {
      f.push(k);
      return;
    }
    let small = 0;
    for (let i = 1; i < f.length; i++) if ((f[i] as KeyArrays).hi.length < (f[small] as KeyArrays).hi.length) small = i;
    if ((f[small] as KeyArrays).hi.length < k.hi.length) f[small] = k;
  }
}
