/**
 * The shape every metric declaration shares, and the one function that registers a table of them. A metrics
 * module declares its metrics as data (name, help, labels, buckets) and gets back typed prom-client objects,
 * in declaration order (the order `/metrics` lists them).
 */
import { Counter, Gauge, type Histogram, type Registry } from 'prom-client';
import { AggregateHistogram } from './aggregate-histogram.ts';

export interface MetricDeclaration {
  readonly kind: 'counter' | 'gauge' | 'histogram';
  readonly name: string;
  readonly help: string;
  readonly labels?: readonly string[];
  /** Histograms only. */
  readonly buckets?: readonly number[];
}

export type MetricTable = Readonly<Record<string, MetricDeclaration>>;

type LabelsOf<D> = D extends { readonly labels: readonly (infer L extends string)[] } ? L : string;

/** The prom-client object a declaration becomes, with its label names as the type parameter. */
export type MetricOf<D> = D extends { readonly kind: 'counter' }
  ? Counter<LabelsOf<D>>
  : D extends { readonly kind: 'gauge' }
    ? Gauge<LabelsOf<D>>
    : Histogram<LabelsOf<D>>;

export type RegisteredMetrics<T extends MetricTable> = { readonly [K in keyof T]: MetricOf<T[K]> };

/** A gauge's scrape-time callback (prom-client calls it with the gauge as `this`). */
export type GaugeCollect = (this: Gauge) => void;

/** Exponential buckets: `count` values starting at `start`, each `factor` times the previous. */
export function exponential(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0, v = start; i < count; i++, v *= factor) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Registers every metric of `table` on `registry`, in table order; `collect` adds scrape-time callbacks to gauges. */
export function registerMetrics<T extends MetricTable>(registry: Registry, table: T, collect: Partial<Record<keyof T, GaugeCollect>> = {}): RegisteredMetrics<T> {
  const out: Record<string, unknown> = {};
  const registers = [registry];
  for (const [key, d] of Object.entries(table)) {
    const config = {
      name: d.name,
      help: d.help,
      ...(d.labels !== undefined ? { labelNames: d.labels } : {}),
      registers,
    };
    if (d.kind === 'counter') out[key] = new Counter(config);
    // Histograms aggregate observations in place and fold them in at scrape (aggregate-histogram.ts): the same
    // exposition, without label hashing on the per-request and per-chunk paths that observe them.
    else if (d.kind === 'histogram') out[key] = new AggregateHistogram({ ...config, ...(d.buckets !== undefined ? { buckets: [...d.buckets] } : {}) });
    else {
      const fn = collect[key as keyof T];
      out[key] = new Gauge({ ...config, ...(fn !== undefined ? { collect: fn } : {}) });
    }
  }
  return out as RegisteredMetrics<T>;
}
