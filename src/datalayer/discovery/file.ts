/**
 * Endpoints-file discovery, for fleets without Kubernetes (VMs, Slurm, Ray): a YAML or JSON file listing the
 * model servers, re-read whenever it changes.
 *
 * ```yaml
 * endpoints:
 *   - address: 10.0.0.12          # IP or host name to route to
 *     port: 8000
 *     metricsPort: 8001           # optional; default: port
 *     metricsPath: /metrics       # optional; default: the data source's `path`
 *     name: node12-gpu0           # optional; default: address:port. Must be unique.
 *     labels:                     # optional; the engine label picks the metric mapping
 *       inference.networking.k8s.io/engine-type: sglang
 * ```
 *
 * Change detection and rejection of bad edits: see `../watched-file.ts`.
 *
 * Invalid content (syntax, schema, duplicate names) or an unreadable file is rejected with one error log per
 * distinct bad content, and the last good pool stays in place. At startup, an invalid file is a startup error.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { joinHostPort, type EndpointMetadata } from '../../framework/datalayer.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { Datastore } from '../datastore.ts';
import { WatchedFile, type ReloadResult } from '../watched-file.ts';

const port = z.number().int().min(1).max(65535);
const entrySchema = z.strictObject({
  address: z.string().min(1).refine((s) => !/\s/.test(s), 'must not contain blanks'),
  port,
  metricsPort: port.optional(),
  metricsPath: z.string().startsWith('/', 'must start with "/"').optional(),
  name: z.string().min(1).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
// `endpoints:` with no entries (YAML null) is an empty pool, like `endpoints: []`.
const fileSchema = z.strictObject({ endpoints: z.array(entrySchema).nullable().transform((e) => e ?? []) });

/** Parses and validates file content. Throws Error with a path-qualified message. */
export function parseEndpointsFile(content: string, namespace: string): EndpointMetadata[] {
  let doc: unknown;
  try {
    doc = parseYaml(content); // YAML 1.2 is a superset of JSON
    // An empty file (or one with only comments) is an empty pool: endpoints may be added later.
    doc ??= { endpoints: [] };
  } catch (err) {
    throw new Error(`not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new Error(issues.join('; '));
  }
  const out: EndpointMetadata[] = [];
  const seen = new Set<string>();
  parsed.data.endpoints.forEach((e, i) => {
    const address = e.address.startsWith('[') && e.address.endsWith(']') ? e.address.slice(1, -1) : e.address;
    const name = e.name ?? joinHostPort(address, e.port);
    if (seen.has(name)) throw new Error(`endpoints.${i}: duplicate endpoint name '${name}'`);
    seen.add(name);
    out.push({
      name,
      namespace,
      podName: e.name ?? address,
      address,
      port: e.port,
      metricsHost: joinHostPort(address, e.metricsPort ?? e.port),
      ...(e.metricsPath !== undefined ? { metricsPath: e.metricsPath } : {}),
      labels: e.labels ?? {},
    });
  });
  return out;
}

export type FileReloadResult = ReloadResult<{ readonly endpoints: number }>;

export interface EndpointsFileOptions {
  readonly path: string;
  readonly namespace: string;
  readonly store: Datastore;
  readonly logger: Logger;
  /** Stat-poll interval for shared file systems; default 2000 ms; 0 disables. */
  readonly statPollIntervalMs?: number;
  /** Coalesces bursts of fs events into one reload; default 100 ms (see WatchedFileOptions.debounceMs). */
  readonly debounceMs?: number;
}

/** Publishes the file's endpoints to the store, at start and on every valid edit. */
export class EndpointsFileDiscovery {
  readonly #file: WatchedFile<EndpointMetadata[], { readonly endpoints: number }>;

  constructor(o: EndpointsFileOptions) {
    this.#file = new WatchedFile({
      path: o.path,
      label: 'endpoints file',
      parse: (content) => parseEndpointsFile(content, o.namespace),
      apply: (endpoints, initial) => {
        o.store.replaceAll(endpoints);
        if (initial) o.store.setPoolKnown(true);
        return { endpoints: endpoints.length };
      },
      fixes: {
        unreadable: 'point --endpoints-file at a readable YAML/JSON file',
        invalid: 'fix the file; see docs/datalayer.md for the format',
      },
      kept: 'the last good pool',
      logger: o.logger,
      ...(o.statPollIntervalMs !== undefined ? { statPollIntervalMs: o.statPollIntervalMs } : {}),
      ...(o.debounceMs !== undefined ? { debounceMs: o.debounceMs } : {}),
    });
  }

  /** Loads the file (a bad file is a startup error), publishes the pool, and starts watching. */
  async start(): Promise<void> {
    await this.#file.start();
  }

  /** Subscribes to reload outcomes (tests, metrics). */
  onReload(listener: (r: FileReloadResult) => void): () => void {
    return this.#file.onReload(listener);
  }

  /** Re-reads the file; the outcome reflects a read that started after this call. */
  reload(): Promise<FileReloadResult> {
    return this.#file.reload();
  }

  close(): void {
    this.#file.close();
  }
}
