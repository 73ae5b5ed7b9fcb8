/**
 * Data-source and extractor contracts (epp-spec §5.2).
 *
 * The data layer runs one collector per endpoint. On every refresh tick the collector asks each configured
 * `DataSource` to `poll` that endpoint, then hands the result to the source's `Extractor`s, which write fields
 * into a `MetricsDraft`. If any extractor reports an update, the collector stamps `updateTime` with its clock
 * and swaps a new immutable `Endpoint` snapshot into the store (copy-on-write); otherwise nothing is committed
 * and the endpoint's `updateTime` ages, which is how consumers see it as stale.
 *
 * Sources and extractors are plugins (created by factories from `EndpointPickerConfig.dataLayer.sources`) and
 * are shared by all endpoints, so they must not keep per-request state; per-endpoint state is allowed only if
 * it is released in `endpointRemoved`.
 */
import type { EndpointMetadata, EndpointMetrics } from './datalayer.ts';
import type { Logger, Plugin } from './plugin.ts';

/** Output type tag of sources that yield parsed Prometheus text (`PrometheusFamilies`). */
export const PROMETHEUS_FAMILIES = 'prometheus-families';

/** What the collector passes to each poll. */
export interface PollOptions {
  /**
   * Aborted when the poll exceeds its timeout or the endpoint/collector goes away. A source must stop its I/O
   * promptly and reject once aborted; a result delivered after abort is discarded anyway.
   */
  readonly signal: AbortSignal;
  /** Upper bound for the whole poll in milliseconds (the collector also enforces it via `signal`). */
  readonly timeoutMs: number;
}

/**
 * Fetches raw data about one endpoint (e.g. its `/metrics` page).
 *
 * - `poll` is called once per refresh tick per endpoint (default every 50 ms), never concurrently for the same
 *   endpoint: a tick that finds the previous poll still running is skipped. Calls for different endpoints run
 *   concurrently.
 * - It is async; a rejection (network error, non-200, unparsable body, abort) counts as a failed poll: the
 *   extractors are not called, nothing is committed, and the collector logs only on the transition between
 *   failing and succeeding. A rejection never stops the collector; the next tick polls again.
 * - The resolved value must be treated as immutable by everyone: a source may hand the same object to several
 *   polls (e.g. when the body did not change).
 */
export interface DataSource<TOutput = unknown> extends Plugin {
  /** Tag of the value `poll` resolves with; extractors bound to this source must declare the same `inputType`. */
  readonly outputType: string;
  poll(endpoint: EndpointMetadata, options: PollOptions): Promise<TOutput>;
  /**
   * Called once at startup, before the first poll, with the extractors bound to this source (config order).
   * Lets a source restrict its work to what the extractors read (see `Extractor.inputKeysFor`). Optional.
   */
  bindExtractors?(extractors: readonly Extractor<TOutput>[]): void;
  /** Called once when an endpoint leaves the pool, so a source can drop per-endpoint caches. Optional, sync. */
  endpointRemoved?(endpoint: EndpointMetadata): void;
  /** Called once when the data layer closes: release sockets and timers. Optional. */
  close?(): Promise<void>;
}

/**
 * The mutable working copy an extractor writes into during one collection. It starts as a shallow copy of the
 * endpoint's current metrics. The maps are shared with the previous, published snapshot: an extractor must
 * **replace** a map (assign a new one), never mutate it. `updateTime` is owned by the collector.
 */
export type MetricsDraft = {
  -readonly [K in Exclude<keyof EndpointMetrics, 'updateTime'>]: EndpointMetrics[K];
};

/** Result of one `extract` call. */
export interface ExtractOutcome {
  /** True when at least one field of the draft was written; the collector then commits and stamps `updateTime`. */
  readonly updated: boolean;
  /** Problems found (missing family, unparsable label...). Logged on state transitions only; may be empty. */
  readonly errors: readonly Error[];
}

/**
 * Turns a source's output into endpoint metrics.
 *
 * - `extract` is called once per successful poll of its source, synchronously, in config order, with the same
 *   draft for all extractors of that collection. It must not throw for bad data (report it in `errors`); if it
 *   throws anyway, the collector treats that as an error outcome with `updated: false`.
 * - It must not keep references to `input` or `draft` after returning.
 */
export interface Extractor<TInput = unknown> extends Plugin {
  /** Must equal the bound source's `outputType` (checked at startup). */
  readonly inputType: string;
  /**
   * The input keys this extractor reads for `endpoint` (for Prometheus input: metric family names), or
   * undefined when it may read anything. When every extractor of a source declares keys, the source may skip
   * everything else (metrics-data-source then parses ~5 families instead of a whole page). Pure and cheap;
   * a source may cache the answer per `EndpointMetadata` object (metadata changes swap the object). Optional.
   */
  inputKeysFor?(endpoint: EndpointMetadata): ReadonlySet<string> | undefined;
  extract(input: TInput, draft: MetricsDraft, endpoint: EndpointMetadata): ExtractOutcome;
}

// --- Prometheus text exposition, as produced by `metrics-data-source` -------------------------------------

/** Family type from the `# TYPE` line (`untyped` when there is none). OpenMetrics `unknown` maps to `untyped`. */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped' | 'info' | 'stateset' | 'gaugehistogram';

/** One sample line. */
export interface PrometheusSample {
  /** Sample name as written (for a histogram: `<family>_bucket`, `<family>_sum`, `<family>_count`). */
  readonly name: string;
  /** Label pairs in line order. Empty object when the sample has no labels. */
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  /** Sample timestamp in ms since the epoch, or undefined when the line has none. */
  readonly timestampMs: number | undefined;
}

/** A metric family: the samples grouped under one `# TYPE`/`# HELP` name, in exposition order. */
export interface PrometheusFamily {
  readonly name: string;
  readonly type: MetricType;
  /** `# HELP` text ('' when absent or when the parser was asked to skip it). */
  readonly help: string;
  readonly samples: readonly PrometheusSample[];
}

/** Parsed exposition keyed by family name. */
export type PrometheusFamilies = ReadonlyMap<string, PrometheusFamily>;

/** Type guard: the plugin implements `DataSource`. */
export function isDataSource(plugin: Plugin): plugin is DataSource {
  const p = plugin as Partial<DataSource>;
  return typeof p.poll === 'function' && typeof p.outputType === 'string';
}

/** Type guard: the plugin implements `Extractor`. */
export function isExtractor(plugin: Plugin): plugin is Extractor {
  const p = plugin as Partial<Extractor>;
  return typeof p.extract === 'function' && typeof p.inputType === 'string';
}

// --- Notification sources (epp-spec §5.2): pushed events instead of polls ---------------------------------

/** Output type tag of `endpoint-notification-source`: endpoint membership events (`EndpointEvent`). */
export const ENDPOINT_EVENTS = 'endpoint-events';
/** Output type tag of `k8s-notification-source`: Kubernetes object events (`KubernetesObjectEvent`). */
export const KUBERNETES_OBJECT_EVENTS = 'k8s-object-events';

/** An endpoint joined the pool, changed (labels, address, metrics host) or left it. */
export interface EndpointEvent {
  readonly type: 'added' | 'updated' | 'deleted';
  readonly endpoint: EndpointMetadata;
}

/** An object of a watched kind was added, updated or deleted (`object` as the API server sent it). */
export interface KubernetesObjectEvent {
  readonly type: 'added' | 'updated' | 'deleted';
  /** `group/version/kind` (`v1/Pod` style for the core group). */
  readonly gvk: string;
  readonly object: Readonly<Record<string, unknown>>;
}

/** What the data layer gives a notification source when it starts it. */
export interface NotificationContext {
  /** Hands one event to every extractor bound to the source, in config order (synchronously). */
  deliver(event: unknown): void;
  /** Endpoint membership changes of the pool. Returns the unsubscribe function. */
  onEndpointsChanged(listener: (events: readonly EndpointEvent[]) => void): () => void;
  /** The current pool. */
  endpoints(): readonly EndpointMetadata[];
  /** Set when endpoints are discovered from Kubernetes: where and how to watch more objects. */
  readonly kubernetes?: { readonly kubeconfig?: string; readonly namespace: string };
  readonly logger: Logger;
}

/**
 * A data source that is not polled: it pushes events to its extractors. Listed in `dataLayer.sources` like any
 * source; the data layer starts it once (after discovery started) and stops it on close.
 */
export interface NotificationSource extends Plugin {
  readonly outputType: string;
  /** Sources with the same key are a startup error (e.g. one `k8s-notification-source` per kind). Optional. */
  readonly uniqueKey?: string;
  /** Starts delivering events through `context.deliver`; returns the function that stops it. May throw EppConfigError. */
  start(context: NotificationContext): () => void;
}

/** An extractor of a notification source: receives each event, synchronously; must not throw (errors are logged). */
export interface NotificationExtractor<TEvent = unknown> extends Plugin {
  readonly inputType: string;
  notify(event: TEvent): void;
}

export function isNotificationSource(plugin: Plugin): plugin is NotificationSource {
  const p = plugin as Partial<NotificationSource>;
  return typeof p.start === 'function' && typeof p.outputType === 'string' && typeof (p as Partial<DataSource>).poll !== 'function';
}

export function isNotificationExtractor(plugin: Plugin): plugin is NotificationExtractor {
  const p = plugin as Partial<NotificationExtractor>;
  return typeof p.notify === 'function' && typeof p.inputType === 'string';
}
