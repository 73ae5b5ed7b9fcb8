/**
 * Watches InferenceObjective and InferenceModelRewrite (`inference.networking.x-k8s.io/v1alpha2`) in the pool
 * namespace with `@kubernetes/client-node`'s ListWatch, and publishes the objects whose `spec.poolRef` names
 * our pool (epp-spec §8.2–§8.3). Every event recomputes the set from the watch cache, so deletes and relists
 * (410 Gone) converge on the server's state. An invalid object is skipped with one log line per bad version;
 * a list/watch error is retried with capped exponential backoff, keeping the last known set.
 */
import { KubeConfig, ListWatch, Watch, CustomObjectsApi, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { EppConfigError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import {
  appliesTo,
  parseResource,
  RESOURCES_API_VERSION,
  type ObjectiveResource,
  type PoolFilter,
  type ResourceSink,
  type RewriteResource,
} from './manifests.ts';

const KUBERNETES_SOURCE = 'kubernetes';
const GROUP = 'inference.networking.x-k8s.io';
const VERSION = 'v1alpha2';

export interface ResourceWatchOptions {
  readonly namespace: string;
  readonly poolName: string;
  readonly poolGroup?: string;
  readonly kubeconfig?: string;
  readonly sink: ResourceSink;
  readonly logger: Logger;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

interface Watched {
  readonly kind: 'InferenceObjective' | 'InferenceModelRewrite';
  readonly lw: ListWatch<KubernetesObject>;
  retry: NodeJS.Timeout | undefined;
  backoffMs: number;
  failures: number;
}

export class KubernetesResourceWatch {
  readonly #o: ResourceWatchOptions;
  readonly #kc = new KubeConfig();
  readonly #custom: CustomObjectsApi;
  readonly #watched: Watched[] = [];
  readonly #rejected = new Set<string>();
  readonly #filter: PoolFilter;
  #closed = false;

  constructor(options: ResourceWatchOptions) {
    this.#o = options;
    try {
      if (options.kubeconfig) this.#kc.loadFromFile(options.kubeconfig);
      else this.#kc.loadFromDefault();
    } catch (err) {
      throw new EppConfigError(`cannot load kubeconfig: ${(err as Error).message}`, 'pass --kubeconfig or run in-cluster');
    }
    this.#custom = this.#kc.makeApiClient(CustomObjectsApi);
    this.#filter = { poolName: options.poolName, poolNamespace: options.namespace, ...(options.poolGroup ? { poolGroup: options.poolGroup } : {}) };
  }

  start(): void {
    for (const [kind, plural] of [['InferenceObjective', 'inferenceobjectives'], ['InferenceModelRewrite', 'inferencemodelrewrites']] as const) {
      const ns = this.#o.namespace;
      const path = `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}`;
      const list = (): Promise<KubernetesListObject<KubernetesObject>> =>
        this.#custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural }) as Promise<KubernetesListObject<KubernetesObject>>;
      const lw = new ListWatch<KubernetesObject>(path, new Watch(this.#kc), list, false);
      const w: Watched = { kind, lw, retry: undefined, backoffMs: this.#o.initialBackoffMs ?? 200, failures: 0 };
      const changed = (): void => {
        if (w.failures > 0) {
          this.#o.logger.info({ kind, failures: w.failures }, 'kubernetes list/watch recovered');
          w.failures = 0;
          w.backoffMs = this.#o.initialBackoffMs ?? 200;
        }
        this.#publish();
      };
      lw.on('add', changed);
      lw.on('update', changed);
      lw.on('delete', changed);
      lw.on('connect', () => this.#publish());
      lw.on('error', (err: unknown) => {
        if (this.#closed) return;
        w.failures++;
        if (w.failures === 1) this.#o.logger.warn({ kind, path, err: err instanceof Error ? err.message : String(err) }, 'kubernetes list/watch failed; retrying, keeping the current objects');
        const delay = w.backoffMs;
        w.backoffMs = Math.min(delay * 2, this.#o.maxBackoffMs ?? 10_000);
        w.retry = setTimeout(() => {
          w.retry = undefined;
          if (!this.#closed) void lw.start();
        }, delay);
        w.retry.unref();
      });
      this.#watched.push(w);
      void lw.start();
    }
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watched) {
      if (w.retry !== undefined) clearTimeout(w.retry);
      void w.lw.stop();
    }
  }

  #publish(): void {
    if (this.#closed) return;
    const objectives: ObjectiveResource[] = [];
    const rewrites: RewriteResource[] = [];
    let order = 0;
    for (const w of this.#watched) {
      for (const obj of w.lw.list(this.#o.namespace)) {
        const raw = { apiVersion: RESOURCES_API_VERSION, kind: w.kind, ...obj } as KubernetesObject & { status?: unknown };
        delete raw.status;
        let r: ObjectiveResource | RewriteResource | undefined;
        try {
          r = parseResource(raw, order++);
        } catch (err) {
          const key = `${w.kind}/${obj.metadata?.name ?? ''}@${obj.metadata?.resourceVersion ?? ''}`;
          if (!this.#rejected.has(key)) {
            this.#rejected.add(key);
            this.#o.logger.error({ object: key, err: (err as Error).message }, 'invalid object ignored');
          }
          continue;
        }
        if (r === undefined || !appliesTo({ ...r, namespace: r.namespace ?? this.#o.namespace }, this.#filter)) continue;
        if ('rules' in r) rewrites.push(r);
        else objectives.push(r);
      }
    }
    this.#o.sink.apply(KUBERNETES_SOURCE, { objectives, rewrites });
  }
}
