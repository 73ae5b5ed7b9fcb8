/**
 * Seedable pseudo-random source for scheduling (tie-breaks, sampling, exploration).
 *
 * xoshiro128** 1.1 (Blackman & Vigna): 128 bits of state, period 2^128 − 1, all arithmetic in 32-bit
 * integers, so it is exact and fast in JavaScript (no BigInt). The state is filled from a 32-bit seed with
 * SplitMix32, as the authors recommend, which also guarantees a non-zero state. Not cryptographic.
 *
 * `next()` returns 32 bits of randomness scaled to [0, 1): enough resolution for tie-breaks among any
 * realistic number of endpoints (bias of `floor(next() × n)` is below n / 2^32).
 */
import { randomInt as cryptoRandomInt } from 'node:crypto';
import type { RandomSource } from '../framework/plugin.ts';

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Xoshiro128StarStar implements RandomSource {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /**
   * @param seed a 32-bit seed (other numbers are truncated to their low 32 bits), expanded with SplitMix32;
   *   or the four state words directly (not all zero), as in the reference test vectors.
   */
  constructor(seed: number | readonly [number, number, number, number]) {
    if (typeof seed === 'number') {
      let x = seed >>> 0;
      const words: number[] = [];
      for (let i = 0; i < 4; i++) {
        // SplitMix32 (the 32-bit variant of SplitMix64, constants from MurmurHash3's finaliser).
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
        words.push((z ^ (z >>> 16)) >>> 0);
      }
      [this.#s0, this.#s1, this.#s2, this.#s3] = words as [number, number, number, number];
    } else {
      [this.#s0, this.#s1, this.#s2, this.#s3] = seed.map((w) => w >>> 0) as [number, number, number, number];
    }
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) {
      throw new RangeError('xoshiro128** state must not be all zero');
    }
  }

  /** The next 32-bit output, as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }
}

/** A random source seeded from `seed`, or from the OS entropy pool when no seed is given (production). */
export function createRandomSource(seed?: number): Xoshiro128StarStar {
  return new Xoshiro128StarStar(seed ?? cryptoRandomInt(0, 2 ** 32));
}

/** A uniform integer in [0, n) drawn from `random` (n ≥ 1). */
export function randomIndex(random: RandomSource, n: number): number {
  const i = Math.floor(random.next() * n);
  // Guards a RandomSource that (incorrectly) returns 1.0.
  return i < n ? i : n - 1;
}

/** Fisher–Yates shuffle of `items` in place, driven by `random`. Every permutation is equally likely. */
export function shuffleInPlace<T>(random: RandomSource, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomIndex(random, i + 1);
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/**
 * `k` distinct indices drawn uniformly from [0, n), in random order (a partial Fisher–Yates shuffle: O(n)
 * memory, O(k) draws). Equivalent to shuffling [0, n) and taking the first `min(k, n)` entries.
 */
export function sampleIndices(random: RandomSource, n: number, k: number): number[] {
  const count = Math.min(k, n);
  if (count === 1) return [randomIndex(random, n)];
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + randomIndex(random, n - i);
    const tmp = pool[i] as number;
    pool[i] = pool[j] as number;
    pool[j] = tmp;
  }
  pool.length = count;
  return pool;
}
