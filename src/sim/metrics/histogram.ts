// Fixed-bucket histogram with Prometheus rendering. Upper bounds are inclusive (`le`), as in Prometheus.

import { formatValue } from './prom-text.ts';

export class Histogram {
  readonly bounds: readonly number[];
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;
  /** Pre-rendered `le="…"` label fragments, one per bound plus +Inf. */
  readonly #leLabels: readonly string[];

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if ((bounds[i] as number) <= (bounds[i - 1] as number)) throw new RangeError('histogram bounds must increase');
    }
    this.bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
    this.#leLabels = [...bounds.map((b) => `le="${formatValue(b)}"`), 'le="+Inf"'];
  }

  get count(): number {
    return this.#count;
  }

  get sum(): number {
    return this.#sum;
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let lo = 0;
    let hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (value <= (bounds[mid] as number)) hi = mid;
      else lo = mid + 1;
    }
    this.#counts[lo] = (this.#counts[lo] as number) + 1;
    this.#sum += value;
    this.#count++;
  }

  /** Cumulative count of observations ≤ `bounds[i]` (i = bounds.length means +Inf). */
  cumulative(i: number): number {
    let total = 0;
    for (let j = 0; j <= i; j++) total += this.#counts[j] as number;
    return total;
  }

  /**
   * Appends the `_bucket`, `_sum` and `_count` samples of this histogram. `labels` is the rendered label list
   * without braces (may be empty).
   */
  render(name: string, labels: string): string {
    const sep = labels === '' ? '' : `${labels},`;
    let out = '';
    let cumulative = 0;
    for (let i = 0; i < this.#leLabels.length; i++) {
      cumulative += this.#counts[i] as number;
      out += `${name}_bucket{${sep}${this.#leLabels[i] as string}} ${cumulative}\n`;
    }
    const braces = labels === '' ? '' : `{${labels}}`;
    out += `${name}_sum${braces} ${formatValue(this.#sum)}\n${name}_count${braces} ${this.#count}\n`;
    return out;
  }
}

/** vLLM's `build_1_2_5_buckets`: 1, 2, 5, 10, 20, 50, … up to and including `max`. */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let exponent = 1; ; exponent *= 10) {
    for (const mantissa of [1, 2, 5]) {
      const value = mantissa * exponent;
      if (value > max) return out;
      out.push(value);
    }
  }
}
