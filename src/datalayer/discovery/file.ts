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
 * Change detection: `fs.watch` on the directory (catches editors that write a temp file and rename it, and
 * Kubernetes ConfigMap volumes that swap a `..data` symlink) plus a 2 s stat poll, because inotify does not
 * see writes made on another host of a shared file system (NFS/Lustre on Slurm clusters). Both only schedule a
 * reload; a reload whose bytes equal the last applied or last rejected content does nothing.
 *
 * Invalid content (syntax, schema, duplicate names) or an unreadable file is rejected with one error log per
 * distinct bad content, and the last good pool stays in place. At startup, an invalid file is a startup error.
 */
import { readFile } from 'node:fs/promises';
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { joinHostPort, type EndpointMetadata } from '../../framework/datalayer.ts';
import { EppConfigError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { Datastore } from '../datastore.ts';

const port = z.number().int().min(1).max(65535);
const entrySchema = z.strictObject({
  address: z.string().min(1).refine((s) => !/\s/.test(s), 'must not contain blanks'),
  port,
  metricsPort: port.optional(),
  metricsPath: z.string().startsWith('/', 'must start with "/"').optional(),
  name: z.string().min(1).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
const fileSchema = z.strictObject({ endpoints: z.array(entrySchema) });

export type EndpointsFile = z.infer<typeof fileSchema>;

/** Parses and validates file content. Throws Error with a path-qualified message. */
export function parseEndpointsFile(content: string, namespace: string): EndpointMetadata[] {
  let doc: unknown;
  try {
    doc = parseYaml(content); // YAML 1.2 is a superset of JSON
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

export type FileReloadResult =
  | { readonly outcome: 'applied'; readonly endpoints: number }
  | { readonly outcome: 'unchanged' }
  | { readonly outcome: 'rejected'; readonly error: string };

export interface EndpointsFileOptions {
  readonly path: string;
  readonly namespace: string;
  readonly store: Datastore;
  readonly logger: Logger;
  /** Stat-poll interval for shared file systems; default 2000 ms; 0 disables. */
  readonly statPollIntervalMs?: number;
  /**
   * Delay that coalesces bursts of fs events into one reload; default 100 ms. An in-place write (truncate,
   * then write) can still be read half-done; that read is rejected and logged, and the complete file
   * applies on the next event. Atomic replaces (write + rename) avoid the noise.
   */
  readonly debounceMs?: number;
}

export class EndpointsFileDiscovery {
  readonly #o: EndpointsFileOptions;
  readonly #path: string;
  #watcher: FSWatcher | undefined;
  #statPolling = false;
  #debounce: NodeJS.Timeout | undefined;
  #lastApplied: string | undefined;
  #lastRejected: string | undefined;
  #reloading: Promise<FileReloadResult> | undefined;
  #queued: Promise<FileReloadResult> | undefined;
  #closed = false;
  readonly #listeners = new Set<(r: FileReloadResult) => void>();

  constructor(options: EndpointsFileOptions) {
    this.#o = options;
    this.#path = resolve(options.path);
  }

  /** Loads the file (a bad file is a startup error), publishes the pool, and starts watching. */
  async start(): Promise<void> {
    let content: string;
    try {
      content = await readFile(this.#path, 'utf8');
    } catch (err) {
      throw new EppConfigError(`endpoints file ${this.#path}: ${(err as Error).message}`, 'point --endpoints-file at a readable YAML/JSON file');
    }
    let endpoints: EndpointMetadata[];
    try {
      endpoints = parseEndpointsFile(content, this.#o.namespace);
    } catch (err) {
      throw new EppConfigError(`endpoints file ${this.#path}: ${(err as Error).message}`, 'fix the file; see docs/datalayer.md for the format');
    }
    this.#lastApplied = content;
    this.#o.store.replaceAll(endpoints);
    this.#o.store.setPoolKnown(true);
    this.#o.logger.info({ file: this.#path, endpoints: endpoints.length }, 'loaded endpoints file');

    const file = basename(this.#path);
    this.#watcher = watch(dirname(this.#path), { persistent: false }, (_event, changed) => {
      // Null filename: platform did not say; `..data`: a ConfigMap symlink swap.
      if (changed === null || changed === file || changed === '..data') this.#schedule();
    });
    this.#watcher.on('error', (err) => this.#o.logger.warn({ file: this.#path, err: err.message }, 'endpoints file watcher failed; relying on stat polling'));
    const interval = this.#o.statPollIntervalMs ?? 2000;
    if (interval > 0) {
      watchFile(this.#path, { persistent: false, interval }, () => this.#schedule());
      this.#statPolling = true;
    }
  }

  /** Subscribes to reload outcomes (tests, metrics). */
  onReload(listener: (r: FileReloadResult) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Re-reads the file. The outcome always reflects a read that started after this call: if a reload is in
   * flight, one more follows it, shared by every caller that arrived meanwhile.
   */
  reload(): Promise<FileReloadResult> {
    if (this.#reloading === undefined) {
      const p = this.#doReload().finally(() => {
        if (this.#reloading === p) this.#reloading = undefined;
      });
      this.#reloading = p;
      return p;
    }
    this.#queued ??= this.#reloading.then(() => {
      this.#queued = undefined;
      return this.reload();
    });
    return this.#queued;
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    if (this.#statPolling) unwatchFile(this.#path);
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.reload();
    }, this.#o.debounceMs ?? 100);
    this.#debounce.unref();
  }

  async #doReload(): Promise<FileReloadResult> {
    let result: FileReloadResult;
    let content: string;
    try {
      content = await readFile(this.#path, 'utf8');
    } catch (err) {
      content = `\0unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    if (this.#closed || content === this.#lastApplied) {
      result = { outcome: 'unchanged' };
    } else if (content === this.#lastRejected) {
      result = { outcome: 'unchanged' };
    } else {
      try {
        if (content.startsWith('\0unreadable: ')) throw new Error(`cannot read file (${content.slice(13)})`);
        const endpoints = parseEndpointsFile(content, this.#o.namespace);
        this.#lastApplied = content;
        this.#lastRejected = undefined;
        const changes = this.#o.store.replaceAll(endpoints);
        this.#o.logger.info({ file: this.#path, endpoints: endpoints.length, changes: changes.length }, 'endpoints file reloaded');
        result = { outcome: 'applied', endpoints: endpoints.length };
      } catch (err) {
        this.#lastRejected = content;
        const error = (err as Error).message;
        this.#o.logger.error({ file: this.#path, err: error }, 'endpoints file rejected; keeping the last good pool');
        result = { outcome: 'rejected', error };
      }
    }
    for (const l of this.#listeners) l(result);
    return result;
  }
}
