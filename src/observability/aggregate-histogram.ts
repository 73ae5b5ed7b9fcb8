/**
 * A prom-client Histogram for hot paths: an observation only adds to a small per-label-set aggregate (a bucket
 * count, the sum and the count) — no label validation, hashing or object creation per call — and the aggregates
 * are folded into the histogram when it is read (scrape, `get()`). What a scrape shows is exactly what the plain
 * Histogram would show for the same observations: same name, help, buckets, labels, sums and counts
 * (test/observability/aggregate-histogram.test.ts compares the two expositions).
 *
 * Used for the histograms observed per response chunk or per hook call (plugin and response-hook durations,
 * chunk-queue depth). Label values are taken as given (they come from code, not from requests); a value that
 * is not a finite number is refused as prom-client refuses it.
 *
 * Folding writes into prom-client's per-label-set values (`hashMap` entries: `bucketValues`, `sum`, `count`),
 * which prom-client 15 keeps for every Histogram; the exposition test fails if a prom-client upgrade changes that.
 */
import { Histogram, type HistogramConfiguration } from 'prom-client';

/**
 * One label set's pending bucket counts, and its running sum (kept whole, never folded piecewise, so it is the
 * same floating-point sum, added in the same order, as prom-client's).
 */
class Aggregate {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  dirty = false;
  /** False once reset or removed: a child holding it resolves its label set again. */
  live = true;
  constructor(
    readonly labels: Record<string, string | number>,
    buckets: number,
  ) {
    this.counts = new Float64Array(buckets);
  }
}

/** The per-label-set values prom-client keeps for a histogram. */
interface Entry {
  readonly labels: Record<string, string | number>;
  readonly bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

export interface HistogramChild {
  observe(value: number): void;
}

export class AggregateHistogram<T extends string = string> extends Histogram<T> {
  readonly #bounds: readonly number[];
  readonly #names: readonly string[];
  #aggregates = new Map<string, Aggregate>();
  #children = new Map<string, HistogramChild>();

  constructor(config: HistogramConfiguration<T>) {
    // The aggregates are folded in by the metric's collect hook, which prom-client runs on every read.
    let fold = (): void => {};
    const own = config.collect;
    super({
      ...config,
      collect(this: Histogram<T>) {
        fold();
        return own?.call(this);
      },
    });
    fold = () => this.#fold();
    const self = this as unknown as { upperBounds: number[]; labelNames: string[] };
    this.#bounds = self.upperBounds;
    this.#names = self.labelNames ?? [];
    // prom-client installs `observe` as an own property in its constructor: replace it with the aggregating one.
    (this as unknown as { observe: unknown }).observe = (labelsOrValue: Partial<Record<T, string | number>> | number, value?: number): void => {
      if (typeof labelsOrValue === 'number') this.#add(this.#aggregate({}), labelsOrValue);
      else this.#add(this.#aggregate(labelsOrValue as Record<string, string | number>), value as number);
    };
  }

  /** A child for one label set, resolved once: `observe` is a few arithmetic operations. */
  override labels(...args: unknown[]): HistogramChild & { startTimer: Histogram<T>['startTimer'] } {
    const labels = (args.length === 1 && typeof args[0] === 'object' ? args[0] : Object.fromEntries(this.#names.map((n, i) => [n, args[i]]))) as Record<string, string | number>;
    const key = this.#key(labels);
    let child = this.#children.get(key);
    if (child === undefined) {
      // Registered at its first observation, so label sets appear in the order prom-client would list them.
      let agg: Aggregate | undefined;
      const observe = (v: number): void => {
        if (agg === undefined || !agg.live) agg = this.#aggregate(labels);
        this.#add(agg, v);
      };
      const startTimer = () => {
        const t0 = process.hrtime.bigint();
        return (): number => {
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          observe(seconds);
          return seconds;
        };
      };
      child = { observe, startTimer } as HistogramChild;
      this.#children.set(key, child);
    }
    return child as HistogramChild & { startTimer: Histogram<T>['startTimer'] };
  }

  override reset(): void {
    super.reset();
    if (!(#aggregates in this)) return; // prom-client's constructor resets before this class's fields exist
    for (const agg of this.#aggregates.values()) agg.live = false;
    this.#aggregates = new Map();
    this.#children = new Map();
  }

  override remove(...args: unknown[]): void {
    (super.remove as (...a: unknown[]) => void)(...args);
    const labels = (args.length === 1 && typeof args[0] === 'object' ? args[0] : Object.fromEntries(this.#names.map((n, i) => [n, args[i]]))) as Record<string, string | number>;
    const key = this.#key(labels);
    const agg = this.#aggregates.get(key);
    if (agg !== undefined) agg.live = false;
    this.#aggregates.delete(key);
    this.#children.delete(key);
  }

  override zero(labels: Partial<Record<T, string | number>>): void {
    super.zero(labels);
    const agg = this.#aggregates.get(this.#key(labels as Record<string, string | number>));
    if (agg !== undefined) this.#clear(agg);
  }

  #key(labels: Record<string, string | number>): string {
    let key = '';
    for (const n of this.#names) {
      const v = String(labels[n] ?? '');
      key += `${v.length}:${v}`; // length-prefixed: no two label sets share a key
    }
    return key;
  }

  #aggregate(labels: Record<string, string | number>): Aggregate {
    const key = this.#key(labels);
    let agg = this.#aggregates.get(key);
    if (agg === undefined) {
      agg = new Aggregate({ ...labels }, this.#bounds.length);
      this.#aggregates.set(key, agg);
    }
    return agg;
  }

  #add(agg: Aggregate, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${String(value)}`);
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        (agg.counts[i] as number)++;
        break;
      }
    }
    agg.sum += value;
    agg.count++;
    agg.dirty = true;
  }

  #clear(agg: Aggregate): void {
    agg.counts.fill(0);
    agg.sum = 0;
    agg.count = 0;
    agg.dirty = false;
  }

  /** Adds every pending aggregate to prom-client's values (creating a label set's values on first use). */
  #fold(): void {
    const map = (this as unknown as { hashMap: Record<string, Entry> }).hashMap;
    for (const agg of this.#aggregates.values()) {
      if (!agg.dirty) continue;
      const entry = this.#entry(map, agg.labels);
      for (let i = 0; i < this.#bounds.length; i++) {
        const n = agg.counts[i] as number;
        if (n > 0) entry.bucketValues[String(this.#bounds[i])] = (entry.bucketValues[String(this.#bounds[i])] ?? 0) + n;
      }
      entry.sum = agg.sum;
      entry.count = agg.count;
      agg.counts.fill(0);
      agg.dirty = false;
    }
  }

  #entry(map: Record<string, Entry>, labels: Record<string, string | number>): Entry {
    const same = (e: Entry): boolean => this.#names.every((n) => String(e.labels[n]) === String(labels[n]));
    let entry = Object.values(map).find(same);
    if (entry === undefined) {
      super.zero(labels as Partial<Record<T, string | number>>);
      entry = Object.values((this as unknown as { hashMap: Record<string, Entry> }).hashMap).find(same) as Entry;
    }
    return entry;
  }
}
