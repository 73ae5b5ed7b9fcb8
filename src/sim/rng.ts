// Seedable pseudo-random source. One instance per simulated server (seed + server index), so a fleet run is
// reproducible and servers do not share a stream.

/** Uniform and normal samples from a 32-bit seed. Not cryptographic. */
export interface RandomSource {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal sample (mean 0, std-dev 1). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

/** mulberry32-style generator with a cached Box–Muller pair. */
export class SeededRandom implements RandomSource {
  #state: number;
  #spareNormal: number | null = null;

  constructor(seed: number) {
    this.#state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  normal(): number {
    if (this.#spareNormal !== null) {
      const spare = this.#spareNormal;
      this.#spareNormal = null;
      return spare;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.#spareNormal = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}
