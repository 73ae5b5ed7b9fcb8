/**
 * A config-like file that is re-read whenever it changes (the endpoints file, the resources file).
 *
 * Change detection: `fs.watch` on the directory (catches editors that write a temp file and rename it, and
 * Kubernetes ConfigMap volumes that swap a `..data` symlink) plus a stat poll, because inotify does not see
 * writes made on another host of a shared file system (NFS/Lustre on Slurm clusters). Both only schedule a
 * reload, debounced. A reload whose bytes equal the last applied or last rejected content does nothing.
 * A bad edit is rejected with one error log line and the last good content stays in force; at startup a bad
 * file is a startup error. Reloads never overlap, and each `reload()` call gets the outcome of a read that
 * started after the call.
 */
import { readFile } from 'node:fs/promises';
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { EppConfigError } from '../framework/errors.ts';
import type { Logger } from '../framework/plugin.ts';

export type ReloadResult<S> =
  | ({ readonly outcome: 'applied' } & S)
  | { readonly outcome: 'unchanged' }
  | { readonly outcome: 'rejected'; readonly error: string };

export interface WatchedFileOptions<T, S> {
  readonly path: string;
  /** How the file is named in logs, e.g. `endpoints file`. */
  readonly label: string;
  /** How the file is named in startup errors (default `label`), e.g. the flag `--resources-file`. */
  readonly errorLabel?: string;
  /** Parses the content; throws an Error whose message names the document and field. */
  readonly parse: (content: string) => T;
  /** Applies parsed content; returns the summary reported in the `applied` outcome and the log line. */
  readonly apply: (value: T, initial: boolean) => S;
  /** The fix named in startup errors: for an unreadable file, and for an invalid one. */
  readonly fixes: { readonly unreadable: string; readonly invalid: string };
  /** What stays in force when an edit is rejected (for the log line), e.g. `the last good pool`. */
  readonly kept: string;
  readonly logger: Logger;
  /** Stat-poll interval; default 2000 ms; 0 disables. */
  readonly statPollIntervalMs?: number;
  /**
   * Coalesces bursts of fs events into one reload; default 100 ms. An in-place write (truncate, then write)
   * can still be read half-done; that read is rejected and logged, and the complete file applies on the next
   * event. Atomic replaces (write + rename) avoid the noise.
   */
  readonly debounceMs?: number;
}

export class WatchedFile<T, S extends object> {
  readonly #o: WatchedFileOptions<T, S>;
  readonly #path: string;
  #watcher: FSWatcher | undefined;
  #statPolling = false;
  #debounce: NodeJS.Timeout | undefined;
  #lastApplied: string | undefined;
  #lastRejected: string | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #listeners = new Set<(r: ReloadResult<S>) => void>();

  constructor(options: WatchedFileOptions<T, S>) {
    this.#o = options;
    this.#path = resolve(options.path);
  }

  get path(): string {
    return this.#path;
  }

  /** Loads and applies the file (a bad file is a startup error), then starts watching it. */
  async start(): Promise<S> {
    const { label, fixes } = this.#o;
    const errorLabel = this.#o.errorLabel ?? label;
    let content: string;
    try {
      content = await readFile(this.#path, 'utf8');
    } catch (err) {
      throw new EppConfigError(`${errorLabel} ${this.#path}: ${(err as Error).message}`, fixes.unreadable);
    }
    let value: T;
    try {
      value = this.#o.parse(content);
    } catch (err) {
      throw new EppConfigError(`${errorLabel} ${this.#path}: ${(err as Error).message}`, fixes.invalid);
    }
    const summary = this.#apply(content, value, true);
    const file = basename(this.#path);
    this.#watcher = watch(dirname(this.#path), { persistent: false }, (_event, changed) => {
      // Null filename: the platform did not say; `..data`: a ConfigMap symlink swap.
      if (changed === null || changed === file || changed === '..data') this.#schedule();
    });
    this.#watcher.on('error', (err) => this.#o.logger.warn({ file: this.#path, err: err.message }, `${label} watcher failed; relying on stat polling`));
    const interval = this.#o.statPollIntervalMs ?? 2000;
    if (interval > 0) {
      watchFile(this.#path, { persistent: false, interval }, () => this.#schedule());
      this.#statPolling = true;
    }
    return summary;
  }

  /** Subscribes to reload outcomes (tests, metrics). Returns the unsubscribe function. */
  onReload(listener: (r: ReloadResult<S>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads the file now. */
  reload(): Promise<ReloadResult<S>> {
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

  #apply(content: string, value: T, initial: boolean): S {
    const summary = this.#o.apply(value, initial);
    this.#lastApplied = content;
    this.#lastRejected = undefined;
    this.#o.logger.info({ file: this.#path, ...summary }, `${this.#o.label} ${initial ? 'loaded' : 'reloaded'}`);
    return summary;
  }

  async #doReload(): Promise<ReloadResult<S>> {
    let content: string | undefined;
    let readError: string | undefined;
    try {
      content = await readFile(this.#path, 'utf8');
    } catch (err) {
      readError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
    // An unreadable file is remembered by its error, so the same failure is logged once.
    const key = content ?? `\0${readError}`;
    let result: ReloadResult<S>;
    if (this.#closed || key === this.#lastApplied || key === this.#lastRejected) {
      result = { outcome: 'unchanged' };
    } else {
      try {
        if (content === undefined) throw new Error(`cannot read file (${readError})`);
        const summary = this.#apply(content, this.#o.parse(content), false);
        result = { outcome: 'applied', ...summary };
      } catch (err) {
        this.#lastRejected = key;
        const error = (err as Error).message;
        this.#o.logger.error({ file: this.#path, err: error }, `${this.#o.label} rejected; keeping ${this.#o.kept}`);
        result = { outcome: 'rejected', error };
      }
    }
    for (const l of this.#listeners) l(result);
    return result;
  }
}
