/**
 * `metrics-data-source`: GETs `<scheme>://<metricsHost><path>` and parses the Prometheus text exposition
 * (epp-spec §5.2). See README.md for behaviour and parameters.
 */
import { Agent, type Dispatcher } from 'undici';
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
import { parsePrometheusText, parseSelectedFamilies } from './prometheus-text.ts';

export const METRICS_DATA_SOURCE_TYPE = 'metrics-data-source';

export { parsePrometheusText, parseSelectedFamilies, PrometheusParseError } from './prometheus-text.ts';

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
  /** Reuse the previous parse for an endpoint when its body is byte-identical. Default true. */
  readonly skipUnchangedBodies?: boolean;
  /** Bodies larger than this fail the poll (protects memory from a misbehaving server). Default 8 MiB. */
  readonly maxBodyBytes?: number;
  /** HTTP dispatcher to use instead of the source's own keep-alive agent (tests). Not closed by `close`. */
  readonly dispatcher?: Dispatcher;
}

/** Prometheus' own scrape Accept header, minus protobuf: we only parse text. */
const REQUEST_HEADERS = { accept: 'text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5,*/*;q=0.1' };

const ALL = Symbol('all families');

interface CachedBody {
  readonly body: Buffer;
  /** The wanted set the body was parsed with (a label change can change it while the body stays the same). */
  readonly wanted: ReadonlySet<string> | undefined;
  readonly families: PrometheusFamilies;
}

/** Counters for benchmarks and debugging; monotonically increasing. */
export interface MetricsDataSourceStats {
  polls: number;
  failures: number;
  /** Polls whose body was byte-identical to the previous one and skipped the parse. */
  unchangedBodies: number;
  parses: number;
  /** Total time spent in the parser, in ms (performance.now deltas). */
  parseMs: number;
}

export class MetricsDataSource implements DataSource<PrometheusFamilies> {
  readonly typedName: TypedName;
  readonly outputType = PROMETHEUS_FAMILIES;
  readonly scheme: 'http' | 'https';
  readonly path: string;
  readonly insecureSkipVerify: boolean;
  readonly stats: MetricsDataSourceStats = { polls: 0, failures: 0, unchangedBodies: 0, parses: 0, parseMs: 0 };
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #selective: boolean;
  readonly #skipUnchanged: boolean;
  readonly #maxBodyBytes: number;
  readonly #cache = new Map<string, CachedBody>();
  #extractors: readonly Extractor<PrometheusFamilies>[] = [];
  /** Keyed by metadata object: a label change (engine type) swaps the object, so the entry cannot go stale. */
  #wantedByEndpoint = new WeakMap<EndpointMetadata, ReadonlySet<string> | typeof ALL>();

  constructor(name: string, options: MetricsDataSourceOptions) {
    this.typedName = { type: METRICS_DATA_SOURCE_TYPE, name };
    this.scheme = options.scheme;
    this.path = options.path;
    this.insecureSkipVerify = options.insecureSkipVerify;
    this.#selective = options.selectiveParse ?? true;
    this.#skipUnchanged = options.skipUnchangedBodies ?? true;
    this.#maxBodyBytes = options.maxBodyBytes ?? 8 * 1024 * 1024;
    this.#ownsDispatcher = options.dispatcher === undefined;
    // One agent per source instance: choosing https/insecureSkipVerify never touches a process-wide client
    // (upstream mutates the shared transport). Polls for one endpoint never overlap, so 2 sockets per origin
    // (upstream's idle-per-host) is plenty; keep-alive avoids a TCP handshake every 50 ms.
    this.#dispatcher =
      options.dispatcher ??
      new Agent({
        connections: 2,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: options.scheme === 'https' ? { rejectUnauthorized: !options.insecureSkipVerify } : {},
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
    const origin = `${this.scheme}://${endpoint.metricsHost}`;
    let body: Buffer;
    try {
      body = await getBody(this.#dispatcher, origin, path, options, this.#maxBodyBytes);
    } catch (err) {
      this.stats.failures++;
      throw new Error(`GET ${origin}${path}: ${describe(err)}`, { cause: err });
    }

    const wanted = this.wantedFamilies(endpoint);
    const cached = this.#cache.get(endpoint.name);
    if (this.#skipUnchanged && cached !== undefined && cached.wanted === wanted && cached.body.equals(body)) {
      this.stats.unchangedBodies++;
      return cached.families;
    }
    const t0 = performance.now();
    let families: PrometheusFamilies;
    try {
      const text = body.toString('utf8');
      families = wanted === undefined ? parsePrometheusText(text) : parseSelectedFamilies(text, wanted);
    } catch (err) {
      this.stats.failures++;
      this.#cache.delete(endpoint.name);
      throw new Error(`GET ${origin}${path}: ${(err as Error).message}`, { cause: err });
    } finally {
      this.stats.parses++;
      this.stats.parseMs += performance.now() - t0;
    }
    if (this.#skipUnchanged) this.#cache.set(endpoint.name, { body, wanted, families });
    return families;
  }

  endpointRemoved(endpoint: EndpointMetadata): void {
    this.#cache.delete(endpoint.name);
  }

  async close(): Promise<void> {
    this.#cache.clear();
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }
}

/**
 * GET with undici's low-level `dispatch` and a handler that just collects the body chunks.
 *
 * Why not `dispatcher.request()`: it wraps every response in a Readable stream and the body is then read
 * through an async iterator. At 2000 scrapes/s (bench/scrape.bench.ts, busy/selective, same session) the
 * process used ~31 % of a core with `request()` and ~27 % with this handler; bare `dispatch` alone is ~14 %.
 */
function getBody(dispatcher: Dispatcher, origin: string, path: string, options: PollOptions, maxBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const { signal } = options;
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let controller: Dispatcher.DispatchController | undefined;
    let status = 0;
    let size = 0;
    const chunks: Buffer[] = [];
    let settled = false;
    const onAbort = (): void => {
      controller?.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      finish(signal.reason);
    };
    const finish = (err: unknown, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(body as Buffer);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(_c, statusCode) {
        status = statusCode;
      },
      onResponseData(c, chunk) {
        if (status !== 200) return; // drained (keeps the connection reusable), then rejected at the end
        size += chunk.length;
        if (size > maxBytes) {
          c.abort(new Error(`body larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        if (status !== 200) finish(new Error(`HTTP ${status}`));
        else finish(undefined, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
      },
      onResponseError(_c, err) {
        finish(err);
      },
    };
    dispatcher.dispatch(
      { origin, path, method: 'GET', headers: REQUEST_HEADERS, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs },
      handler,
    );
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (err.name === 'AbortError' || code === 'UND_ERR_ABORTED') return 'aborted (poll timeout or shutdown)';
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `timed out (${code})`;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export const metricsDataSourceFactory: PluginFactory = (name: string, parameters: unknown) => {
  const typedName = { type: METRICS_DATA_SOURCE_TYPE, name };
  return new MetricsDataSource(name, parsePluginParameters(typedName, paramsSchema, parameters));
};
