// Chained block hashes for the prefix cache (sim-spec §3.2): h0 = H(hash seed, model-or-LoRA name, salt),
// h_i = H(h_{i-1}, token ids of block i). Two independent 32-bit murmur3-style lanes are combined into a 53-bit
// unsigned integer, so a hash is an exact JS number (a cheap Map key) and survives JSON in KV events unchanged.
// Collision odds for 10^6 live blocks are about 10^12 / 2^54 ≈ 6e-5 per fleet lifetime, negligible for a simulator.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const TWO_POW_32 = 4294967296;
const HIGH_MASK_21 = 0x1fffff;

function mixWord(h: number, word: number): number {
  let k = Math.imul(word, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finalize(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of a block whose parent hash is `parent` and whose token ids are `tokens[start, end)`. */
export function chainHash(parent: number, tokens: ArrayLike<number>, start: number, end: number): number {
  const parentHigh = Math.floor(parent / TWO_POW_32) >>> 0;
  const parentLow = parent >>> 0;
  let a = mixWord(mixWord(0x9747b28c, parentLow), parentHigh);
  let b = mixWord(mixWord(0x3c6ef372, parentHigh), parentLow);
  for (let i = start; i < end; i++) {
    const word = tokens[i] as number;
    a = mixWord(a, word);
    b = mixWord(b, word ^ 0x5bd1e995);
  }
  const count = end - start + 2;
  return (finalize(b, count) & HIGH_MASK_21) * TWO_POW_32 + finalize(a, count);
}

const encoder = new TextEncoder();

/** Root of a hash chain: distinct for every (seed, model-or-LoRA name, cache salt) triple. */
export function rootHash(hashSeed: string, namespace: string, cacheSalt = ''): number {
  const bytes = encoder.encode(`${hashSeed}\u0000${namespace}\u0000${cacheSalt}`);
  const words = new Uint32Array(Math.ceil(bytes.length / 4));
  for (let i = 0; i < bytes.length; i++) {
    const w = i >> 2;
    words[w] = ((words[w] as number) | ((bytes[i] as number) << ((i & 3) * 8))) >>> 0;
  }
  return chainHash(0, words, 0, words.length);
}

/** Hashes of every full block of `tokens` (a trailing partial block has none). */
export function blockHashes(root: number, tokens: ArrayLike<number>, blockSize: number): number[] {
  const full = Math.floor(tokens.length / blockSize);
  const hashes = new Array<number>(full);
  let parent = root;
  for (let b = 0; b < full; b++) {
    parent = chainHash(parent, tokens, b * blockSize, (b + 1) * blockSize);
    hashes[b] = parent;
  }
  return hashes;
}
