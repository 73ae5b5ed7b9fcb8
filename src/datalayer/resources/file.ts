/**
 * `--resources-file PATH`: InferenceObjective / InferenceModelRewrite manifests for use without Kubernetes —
 * the same multi-document YAML a user would `kubectl apply` — watched for changes.
 *
 * Change detection as the endpoints file (docs/datalayer.md): `fs.watch` on the directory (editors that
 * rename a temp file, ConfigMap `..data` swaps) plus a stat poll for shared file systems, debounced. A bad
 * edit (syntax, schema, duplicate names) is rejected with one error log line naming the document and field,
 * and the last good set stays in force. At startup a bad file is a startup error.
 */
import { readFile } from 'node:fs/promises';
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { EppConfigError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import { parseResourcesFile, type PoolFilter, type ResourceSet, type ResourceSink } from './manifests.ts';

export type ResourcesReloadResult =
  | { readonly outcome: 'applied'; readonly objectives: number; readonly rewrites: number }
  | { readonly outcome: 'unchanged' }
  | { readonly outcome: 'rejected'; readonly error: string };

export interface ResourcesFileOptions {
  readonly path: string;
  readonly sink: ResourceSink;
  readonly filter: PoolFilter;
  readonly logger: Logger;
  /** Stat-poll interval; default 2000 ms; 0 disables. */
  readonly statPollIntervalMs?: number;
  /** Coalesces bursts of fs events; default 100 ms. */
  readonly debounceMs?: number;
}

export const RESOURCES_FILE_SOURCE = 'resources-file';

export class ResourcesFileWatcher {
  readonly #o: ResourcesFileOptions;
  readonly #path: string;
  #watcher: FSWatcher | undefined;
  #statPolling = false;
  #debounce: NodeJS.Timeout | undefined;
  #lastApplied: string | undefined;
  #lastRejected: string | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #listeners = new Set<(r: ResourcesReloadResult) => void>();

  constructor(options: ResourcesFileOptions) {
    this.#o = options;
    this.#path = resolve(options.path);
  }

  /** Loads and applies the file (a bad file is a startup error), then watches it. */
  async start(): Promise<void> {
    let content: string;
    try {
      content = await readFile(this.#path, 'utf8');
    } catch (err) {
      throw new EppConfigError(`--resources-file ${this.#path}: ${(err as Error).message}`, 'point --resources-file at a readable YAML file');
    }
    let set: ResourceSet;
    try {
      set = parseResourcesFile(content, this.#o.filter);
    } catch (err) {
      throw new EppConfigError(`--resources-file ${this.#path}: ${(err as Error).message}`, 'fix the manifest; see docs/flow-control.md for the format');
    }
    this.#apply(content, set);
    const file = basename(this.#path);
    this.#watcher = watch(dirname(this.#path), { persistent: false }, (_event, changed) => {
      if (changed === null || changed === file || changed === '..data') this.#schedule();
    });
    this.#watcher.on('error', (err) => this.#o.logger.warn({ file: this.#path, err: err.message }, 'resources file watcher failed; relying on stat polling'));
    const interval = this.#o.statPollIntervalMs ?? 2000;
    if (interval > 0) {
      watchFile(this.#path, { persistent: false, interval }, () => this.#schedule());
      this.#statPolling = true;
    }
  }

  onReload(listener: (r: ResourcesReloadResult) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads the file now (reloads never overlap; each call gets the outcome of a read started after it). */
  reload(): Promise<ResourcesReloadResult> {
    const p = this.#chain.then(() => this.#doReload());
    this.#chain = p.catch(() => {});
    return p;
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

  #apply(content: string, set: ResourceSet): void {
    this.#lastApplied = content;
    this.#lastRejected = undefined;
    this.#o.sink.apply(RESOURCES_FILE_SOURCE, set);
    this.#o.logger.info({ file: this.#path, objectives: set.objectives.length, rewrites: set.rewrites.length }, 'resources file loaded');
  }

  async #doReload(): Promise<ResourcesReloadResult> {
    let result: ResourcesReloadResult;
    let content: string | undefined;
    let readError: string | undefined;
    try {
      content = await readFile(this.#path, 'utf8');
    } catch (err) {
      readError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    const key = content ?? `\0${readError}`;
    if (this.#closed || key === this.#lastApplied || key === this.#lastRejected) {
      result = { outcome: 'unchanged' };
    } else {
      try {
        if (content === undefined) throw new Error(`cannot read file (${readError})`);
        const set = parseResourcesFile(content, this.#o.filter);
        this.#apply(content, set);
        result = { outcome: 'applied', objectives: set.objectives.length, rewrites: set.rewrites.length };
      } catch (err) {
        this.#lastRejected = key;
        const error = (err as Error).message;
        this.#o.logger.error({ file: this.#path, err: error }, 'resources file rejected; keeping the last good InferenceObjectives and InferenceModelRewrites');
        result = { outcome: 'rejected', error };
      }
    }
    for (const l of this.#listeners) l(result);
    return result;
  }
}
