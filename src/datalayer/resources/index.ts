/**
 * Sources of InferenceObjectives and InferenceModelRewrites: the `--resources-file` (standalone) and the
 * Kubernetes watches (when a pool is watched). Both validate with one schema (manifests.ts) and publish to
 * the same sink.
 */
import type { Logger } from '../../framework/plugin.ts';
import { ResourcesFileWatcher } from './file.ts';
import type { KubernetesResourceWatch } from './kubernetes.ts';
import type { PoolFilter, ResourceSink } from './manifests.ts';

export * from './manifests.ts';
export { ResourcesFileWatcher, RESOURCES_FILE_SOURCE, type ResourcesReloadResult } from './file.ts';
export type { KubernetesResourceWatch } from './kubernetes.ts';

export interface ResourceSourcesOptions {
  readonly sink: ResourceSink;
  readonly logger: Logger;
  /** `--resources-file`. */
  readonly file?: string;
  /** Filters the file's objects when set (`--pool-name`); standalone mode applies them all. */
  readonly fileFilter?: PoolFilter;
  /** Watch the CRDs of this pool (pool mode). */
  readonly kubernetes?: { readonly namespace: string; readonly poolName: string; readonly poolGroup?: string; readonly kubeconfig?: string };
}

export interface ResourceSources {
  readonly file: ResourcesFileWatcher | undefined;
  close(): void;
}

export async function startResourceSources(o: ResourceSourcesOptions): Promise<ResourceSources> {
  const logger = o.logger.child({ component: 'resources' });
  let file: ResourcesFileWatcher | undefined;
  let k8s: KubernetesResourceWatch | undefined;
  if (o.file !== undefined) {
    file = new ResourcesFileWatcher({ path: o.file, sink: o.sink, filter: o.fileFilter ?? {}, logger });
    await file.start();
  }
  if (o.kubernetes !== undefined) {
    try {
      // Loaded only when a pool is watched (the Kubernetes client is slow to load).
      const { KubernetesResourceWatch } = await import('./kubernetes.ts');
      k8s = new KubernetesResourceWatch({ ...o.kubernetes, sink: o.sink, logger });
      k8s.start();
    } catch (err) {
      file?.close();
      throw err;
    }
  }
  return {
    file,
    close() {
      file?.close();
      k8s?.close();
    },
  };
}
