/**
 * `--resources-file PATH`: InferenceObjective / InferenceModelRewrite manifests for use without Kubernetes —
 * the same multi-document YAML a user would `kubectl apply` — watched for changes.
 *
 * Change detection as the endpoints file (`../watched-file.ts`). A bad edit (syntax, schema, duplicate names)
 * is rejected with one error log line naming the document and field, and the last good set stays in force.
 * At startup a bad file is a startup error.
 */
import type { Logger } from '../../framework/plugin.ts';
import { WatchedFile, type ReloadResult } from '../watched-file.ts';
import { parseResourcesFile, type PoolFilter, type ResourceSet, type ResourceSink } from './manifests.ts';

export type ResourcesReloadResult = ReloadResult<{ readonly objectives: number; readonly rewrites: number }>;

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
  readonly #file: WatchedFile<ResourceSet, { readonly objectives: number; readonly rewrites: number }>;

  constructor(o: ResourcesFileOptions) {
    this.#file = new WatchedFile({
      path: o.path,
      label: 'resources file',
      errorLabel: '--resources-file',
      parse: (content) => parseResourcesFile(content, o.filter),
      apply: (set) => {
        o.sink.apply(RESOURCES_FILE_SOURCE, set);
        return { objectives: set.objectives.length, rewrites: set.rewrites.length };
      },
      fixes: {
        unreadable: 'point --resources-file at a readable YAML file',
        invalid: 'fix the manifest; see docs/flow-control.md for the format',
      },
      kept: 'the last good InferenceObjectives and InferenceModelRewrites',
      logger: o.logger,
      ...(o.statPollIntervalMs !== undefined ? { statPollIntervalMs: o.statPollIntervalMs } : {}),
      ...(o.debounceMs !== undefined ? { debounceMs: o.debounceMs } : {}),
    });
  }

  /** Loads and applies the file (a bad file is a startup error), then watches it. */
  async start(): Promise<void> {
    await this.#file.start();
  }

  onReload(listener: (r: ResourcesReloadResult) => void): () => void {
    return this.#file.onReload(listener);
  }

  /** Re-reads the file now (reloads never overlap; each call gets the outcome of a read started after it). */
  reload(): Promise<ResourcesReloadResult> {
    return this.#file.reload();
  }

  close(): void {
    this.#file.close();
  }
}
