/**
 * `metrics-data-source`: GETs `<scheme>://<metricsHost><path>` and parses the Prometheus text exposition
 * (epp-spec §5.2). See README.md for behaviour and parameters.
 */
import { z } from 'zod';
import {
  PROMETHEUS_FAMILIES,
  type DataSource,
  type Extractor,
  type PollOptions,
  type PrometheusFamilies,
} from '../../../../framework/datasource.ts';
import type { EndpointMetadata } from '../../../../framework/datalayer.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import { ScrapeClient, ScrapeHttpError, type ScrapeConnection } from './http-client.ts';
import { FamilyMemo, parsePrometheusText, parseSelectedFamiliesInBuffer } from './prometheus-text.ts';

export const METRICS_DATA_SOURCE_TYPE = 'metrics-data-source';

export { parsePrometheusText, parseSelectedFamilies, parseSelectedFamiliesInBuffer, PrometheusParseError } from './prometheus-text.ts';

const paramsSchema = z.strictObject({
  scheme: z.enum(['http', 'https']).default('http'),
  path: z.string().startsWith('/', 'must start with "/"').default('/metrics'),
  insecureSkipVerify: z.boolean().default(true),
});

export type MetricsDataSourceParams = z.output<typeof paramsSchema>;

/** Constructor options beyond the plugin parameters (tuning and tests; not settable from the config). */
export interface MetricsDataSourceOptions extends MetricsDataSourceParams {
  /**
   * Parse only the families the bound extractors declare for the endpoint (`inputKeysFor`); everything when
   * an extractor declares nothing. Default true. Off = validate and parse every line (benchmark baseline).
   */
  readonly selectiveParse?: boolean;
  /**
   * Reuse the previous parse for an endpoint when its whole body is byte-identical. Default false: a real
   * model server's page practically never repeats (prometheus_client's process/GC collectors move with every
   * scrape), so this would only add a 28 KB copy per scrape (+0.7 % of a core at 100 endpoints × 50 ms,
   * bench/scrape.bench.ts); the per-family memo already skips the wanted families that did not change.
   */
  readonly skipUnchangedBodies?: boolean;
  /** Bodies larger than this fail the poll (protects memory from a misbehaving server). Default 8 MiB. */
  readonly maxBodyBytes?: number;
}

/** Prometheus' own scrape Accept header, minus protobuf: we only parse text. */
const ACCEPT = 'text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5,*/*;q=0.1';

const ALL = Symbol('all families');

/** Per-endpoint parse state, dropped in `endpointRemoved`. */
interface EndpointState {
  /** Copy of the last parsed body (skip-unchanged; the buffer is reused), its length and parse. */
  body: Buffer | undefined;
  length: number;
  /** The wanted set the body was parsed with (a label change can change it while the body stays the same). */
  wanted: ReadonlySet<string> | undefined;
  families: PrometheusFamilies | undefined;
  /** Per-family memo of the selective parser (see FamilyMemo). */
  readonly memo: FamilyMemo;
}

/** Counters for benchmarks and debugging; monotonically increasing. */
export interface MetricsDataSourceStats {
  polls: number;
  failures: number;
  /** Polls whose body was byte-identical to the previous one and skipped the parse. */
  unchangedBodies: number;
  parses: number;
  /** Selective parses: wanted families reused from the per-endpoint memo (region unchanged) / parsed. */
  familiesReused: number;
  familiesParsed: number;
  /** Total time spent in the parser, in ms (performance.now deltas). */
  parseMs: number;
}

export class MetricsDataSource implements DataSource<PrometheusFamilies> {
  readonly typedName: TypedName;
  readonly outputType = PROMETHEUS_FAMILIES;
  readonly scheme: 'http' | 'https';
  readonly path: string;
  readonly insecureSkipVerify: boolean;
  readonly stats: MetricsDataSourceStats = { polls: 0, failures: 0, unchangedBodies: 0, parses: 0, familiesReused: 0, familiesParsed: 0, parseMs: 0 };
  readonly #client: ScrapeClient;
  readonly #selective: boolean;
  readonly #skipUnchanged: boolean;
  readonly #maxBodyBytes: number;
  readonly #state = new Map<string, EndpointState>();
  #extractors: readonly Extractor<PrometheusFamilies>[] = [];
  /** Keyed by metadata object: a label change (engine type) swaps the object, so the entry cannot go stale. */
  #wantedByEndpoint = new WeakMap<EndpointMetadata, ReadonlySet<string> | typeof ALL>();

  constructor(name: string, options: MetricsDataSourceOptions) {
    this.typedName = { type: METRICS_DATA_SOURCE_TYPE, name };
    this.scheme = options.scheme;
    this.path = options.path;
    this.insecureSkipVerify = options.insecureSkipVerify;
    this.#selective = options.selectiveParse ?? true;
    this.#skipUnchanged = options.skipUnchangedBodies ?? false;
    this.#maxBodyBytes = options.maxBodyBytes ?? 8 * 1024 * 1024;
    // One client per source instance: choosing https/insecureSkipVerify never touches a process-wide client
    // (upstream mutates the shared transport). Polls for one endpoint never overlap, so each endpoint gets one
    // kept-alive connection (no TCP handshake every 50 ms). See http-client.ts for why not undici/node:http.
    this.#client = new ScrapeClient({
      tls: options.scheme === 'https' ? { rejectUnauthorized: !options.insecureSkipVerify } : undefined,
      maxBodyBytes: this.#maxBodyBytes,
      accept: ACCEPT,
    });
  }

  bindExtractors(extractors: readonly Extractor<PrometheusFamilies>[]): void {
    this.#extractors = extractors;
    this.#wantedByEndpoint = new WeakMap();
  }

  /** The families parsed for `endpoint`, or undefined when the whole page is parsed. */
  wantedFamilies(endpoint: EndpointMetadata): ReadonlySet<string> | undefined {
    if (!this.#selective || this.#extractors.length === 0) return undefined;
    const cached = this.#wantedByEndpoint.get(endpoint);
    if (cached !== undefined) return cached === ALL ? undefined : cached;
    let wanted: Set<string> | typeof ALL = new Set<string>();
    for (const e of this.#extractors) {
      const keys = e.inputKeysFor?.(endpoint);
      if (keys === undefined) {
        wanted = ALL;
        break;
      }
      for (const k of keys) wanted.add(k);
    }
    this.#wantedByEndpoint.set(endpoint, wanted);
    return wanted === ALL ? undefined : wanted;
  }

  async poll(endpoint: EndpointMetadata, options: PollOptions): Promise<PrometheusFamilies> {
    this.stats.polls++;
    const path = endpoint.metricsPath ?? this.path;
    let conn: ScrapeConnection;
    try {
      conn = await this.#client.get(endpoint.name, endpoint.metricsHost, path, options.timeoutMs, options.signal);
    } catch (err) {
      this.stats.failures++;
      throw new Error(`GET ${this.scheme}://${endpoint.metricsHost}${path}: ${describe(err)}`, { cause: err });
    }
    if (conn.status !== 200) {
      this.stats.failures++;
      throw new Error(`GET ${this.scheme}://${endpoint.metricsHost}${path}: HTTP ${conn.status}`);
    }
    // The body is a view into the connection's receive buffer: parse it now, keep no reference to it.
    const { buf, bodyStart, bodyEnd } = conn;
    const wanted = this.wantedFamilies(endpoint);
    let st = this.#state.get(endpoint.name);
    if (st === undefined) {
      st = { body: undefined, length: 0, wanted: undefined, families: undefined, memo: new FamilyMemo() };
      this.#state.set(endpoint.name, st);
    }
    if (
      this.#skipUnchanged &&
      st.families !== undefined &&
      st.wanted === wanted &&
      st.length === bodyEnd - bodyStart &&
      buf.compare(st.body as Buffer, 0, st.length, bodyStart, bodyEnd) === 0
    ) {
      this.stats.unchangedBodies++;
      return st.families;
    }
    const t0 = performance.now();
    let families: PrometheusFamilies;
    const memo = st.memo;
    const h0 = memo.hits;
    const m0 = memo.misses;
    try {
      families =
        wanted === undefined
          ? parsePrometheusText(buf.toString('utf8', bodyStart, bodyEnd))
          : parseSelectedFamiliesInBuffer(buf, bodyStart, bodyEnd, wanted, memo);
    } catch (err) {
      this.stats.failures++;
      st.families = undefined;
      throw new Error(`GET ${this.scheme}://${endpoint.metricsHost}${path}: ${(err as Error).message}`, { cause: err });
    } finally {
      this.stats.parses++;
      this.stats.parseMs += performance.now() - t0;
      this.stats.familiesReused += memo.hits - h0;
      this.stats.familiesParsed += memo.misses - m0;
    }
    if (this.#skipUnchanged) this.#remember(st, buf, bodyStart, bodyEnd, wanted, families);
    return families;
  }

  /** Copies the body into the endpoint's state, reusing its buffer when it is large enough. */
  #remember(st: EndpointState, buf: Buffer, start: number, end: number, wanted: ReadonlySet<string> | undefined, families: PrometheusFamilies): void {
    const n = end - start;
    if (st.body === undefined || st.body.length < n || st.body.length > 4 * n + 65536) st.body = Buffer.allocUnsafe(Math.max(n, 1024));
    buf.copy(st.body, 0, start, end);
    st.length = n;
    st.wanted = wanted;
    st.families = families;
  }

  endpointRemoved(endpoint: EndpointMetadata): void {
    this.#state.delete(endpoint.name);
    this.#client.drop(endpoint.name);
  }

  async close(): Promise<void> {
    this.#state.clear();
    this.#client.close();
  }
}

function describe(err: unknown): string {
  if (err instanceof ScrapeHttpError) {
    if (err.code === 'EABORTED') return 'aborted (poll timeout or shutdown)';
    if (err.code === 'ETIMEDOUT') return `${err.message} (ETIMEDOUT)`;
    return err.message;
  }
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export const metricsDataSourceFactory: PluginFactory = (name: string, parameters: unknown) => {
  const typedName = { type: METRICS_DATA_SOURCE_TYPE, name };
  return new MetricsDataSource(name, parsePluginParameters(typedName, paramsSchema, parameters));
};

/** Defaults for parameters a config leaves unset (the deprecated `--model-server-metrics-*` flags). */
export type MetricsDataSourceDefaults = Partial<MetricsDataSourceParams>;

/**
 * The factory with other defaults for unset parameters. Upstream precedence (epp-spec §4.5): built-in default
 * < deprecated flag < parameter written in the config. Only keys present in `defaults` change anything.
 */
export function metricsDataSourceFactoryWithDefaults(defaults: MetricsDataSourceDefaults): PluginFactory {
  const set = Object.fromEntries(Object.entries(defaults).filter(([, v]) => v !== undefined));
  return (name, parameters, handle) => {
    const explicit = parameters === undefined || parameters === null ? {} : parameters;
    // Non-objects are passed through unchanged so the usual "parameters: expected object" error names them.
    const merged = typeof explicit === 'object' && !Array.isArray(explicit) ? { ...set, ...explicit } : explicit;
    return metricsDataSourceFactory(name, merged, handle);
  };
}
