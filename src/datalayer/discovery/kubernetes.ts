/**
 * Kubernetes discovery (epp-spec §5.1, §8.1): an InferencePool and its Ready pods, or — standalone mode — a
 * fixed label selector and target ports from flags. Built on `@kubernetes/client-node`'s `ListWatch`
 * (list, then watch from the list's resourceVersion; on `410 Gone` it relists and reconciles deletions).
 *
 * Pool mode: one list+watch on `inferencepools` restricted to `metadata.name=<pool>`. When the pool appears
 * or its selector or target ports change, the pod list+watch is (re)started with the new selector (a full
 * resync); a port-only change recomputes endpoints from the cached pods. Pool deleted (or being deleted) →
 * the pod watch stops, the store is cleared and `poolKnown` turns false (readiness fails).
 *
 * Both modes: `poolKnown` turns true once the pods for the current pool have been listed, so the EPP is not
 * ready while it still knows no endpoints (upstream standalone mode reports ready before the first list).
 *
 * Pod → endpoints: a pod counts when its Ready condition is True, it has no deletion timestamp, it has an IP
 * and its labels match the selector. It yields one endpoint per active target port, named
 * `<pod>-rank-<index in targetPorts>`; the annotation `inference.networking.k8s.io/active-ports` (comma list)
 * restricts the active ports, no annotation = all.
 *
 * Failures: a list/watch error is logged once per failure streak and retried with capped exponential
 * backoff; the last known endpoints stay in place meanwhile (a flapping API server must not empty the pool).
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ListWatch,
  Watch,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { joinHostPort, type EndpointMetadata } from '../../framework/datalayer.ts';
import { EppConfigError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { Datastore } from '../datastore.ts';

const DEFAULT_POOL_GROUP = 'inference.networking.k8s.io';
const ACTIVE_PORTS_ANNOTATION = 'inference.networking.k8s.io/active-ports';

export interface KubernetesDiscoveryOptions {
  /** InferencePool name (pool mode). Exactly one of `poolName` / `endpointSelector` must be set. */
  readonly poolName?: string;
  /** Namespace of the pool and its pods (already resolved: flag → env NAMESPACE → `default`). */
  readonly poolNamespace: string;
  /** `inference.networking.k8s.io` (v1, default) or `inference.networking.x-k8s.io` (v1alpha2). */
  readonly poolGroup?: string;
  /** Standalone mode: `k=v[,k=v...]`. */
  readonly endpointSelector?: string;
  /** Standalone mode: 1–8 ports (duplicates removed). */
  readonly targetPorts?: readonly number[];
  /** Path of a kubeconfig file; default: in-cluster config or `$KUBECONFIG`/`~/.kube/config`. */
  readonly kubeconfig?: string;
  /** Deprecated `--model-server-metrics-port`: used only when the pool has exactly one target port. 0 = unset. */
  readonly metricsPortOverride?: number;
  /** First retry delay after a list/watch error; doubles up to `maxBackoffMs`. Defaults 200 / 10000 ms. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** The parts of a pool the EPP uses. */
export interface PoolSpec {
  readonly selector: Readonly<Record<string, string>>;
  readonly targetPorts: readonly number[];
}

/** Parses `k=v[,k=v...]` (also `k==v`). Throws EppConfigError. */
function parseSelector(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)\s*==?\s*([-A-Za-z0-9_.]*)$/.exec(part);
    if (m === null || m[1] === undefined || m[2] === undefined) {
      throw new EppConfigError(`--endpoint-selector: '${part}' is not key=value`, 'use --endpoint-selector app=vllm[,k=v...]');
    }
    out[m[1]] = m[2];
  }
  if (Object.keys(out).length === 0) throw new EppConfigError('--endpoint-selector is empty', 'use --endpoint-selector app=vllm[,k=v...]');
  return out;
}

/** Validates target ports: 1–8 entries in 0–65535; duplicates removed (first kept). Throws EppConfigError. */
function normalizeTargetPorts(ports: readonly number[], what = '--endpoint-target-ports'): number[] {
  const out: number[] = [];
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new EppConfigError(`${what}: ${p} is not a port (0-65535)`, 'fix the port list');
    if (!out.includes(p)) out.push(p);
  }
  if (out.length < 1 || out.length > 8) throw new EppConfigError(`${what}: ${out.length} ports given, 1-8 allowed`, 'fix the port list');
  return out;
}

/** Extracts the pool spec from an InferencePool object; throws Error on a malformed object. */
export function poolSpecFrom(obj: KubernetesObject, group: string): PoolSpec {
  const spec = (obj as { spec?: Record<string, unknown> }).spec ?? {};
  let selector: unknown;
  let ports: number[];
  if (group === DEFAULT_POOL_GROUP) {
    selector = (spec.selector as { matchLabels?: unknown } | undefined)?.matchLabels;
    const tp = spec.targetPorts;
    if (!Array.isArray(tp)) throw new Error('spec.targetPorts is missing');
    ports = tp.map((p: unknown) => Number((p as { number?: unknown }).number));
  } else {
    // v1alpha2: `selector` is a plain label map and there is a single `targetPortNumber`.
    selector = spec.selector;
    ports = [Number(spec.targetPortNumber)];
  }
  if (selector === null || typeof selector !== 'object' || Object.keys(selector).length === 0) {
    throw new Error('the pool selector is empty');
  }
  const sel: Record<string, string> = {};
  for (const [k, v] of Object.entries(selector as Record<string, unknown>)) sel[k] = String(v);
  return { selector: sel, targetPorts: normalizeTargetPorts(ports, 'spec.targetPorts') };
}

function selectorString(sel: Readonly<Record<string, string>>): string {
  return Object.keys(sel).sort().map((k) => `${k}=${sel[k]}`).join(',');
}

function samePorts(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

function podReady(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (!pod.status?.podIP) return false;
  return (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function labelsMatch(labels: Readonly<Record<string, string>> | undefined, sel: Readonly<Record<string, string>>): boolean {
  for (const k of Object.keys(sel)) if ((labels ?? {})[k] !== sel[k]) return false;
  return true;
}

/** The endpoints of one pod under a pool spec (empty when the pod does not count). */
export function podEndpoints(pod: V1Pod, pool: PoolSpec, metricsPortOverride = 0): EndpointMetadata[] {
  const name = pod.metadata?.name;
  if (!name || !podReady(pod) || !labelsMatch(pod.metadata?.labels, pool.selector)) return [];
  const ip = pod.status?.podIP as string;
  const annotation = pod.metadata?.annotations?.[ACTIVE_PORTS_ANNOTATION];
  let active: Set<number> | undefined;
  if (annotation !== undefined) {
    active = new Set(annotation.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n)));
  }
  const labels = { ...(pod.metadata?.labels ?? {}) };
  const out: EndpointMetadata[] = [];
  pool.targetPorts.forEach((port, rank) => {
    if (active !== undefined && !active.has(port)) return;
    const metricsPort = pool.targetPorts.length === 1 && metricsPortOverride > 0 ? metricsPortOverride : port;
    out.push({
      name: `${name}-rank-${rank}`,
      namespace: pod.metadata?.namespace ?? '',
      podName: name,
      address: ip,
      port,
      metricsHost: joinHostPort(ip, metricsPort),
      labels,
    });
  });
  return out;
}

/**
 * A `Watch` that (a) tells us when `ListWatch` has finished a list and is about to watch (there is no
 * "synced" event otherwise) and (b) refuses to open a watch once disposed: `ListWatch.stop()` during a list
 * would otherwise still open a watch afterwards.
 */
class SyncAwareWatch extends Watch {
  disposed = false;
  readonly #onWatchStart: () => void;
  constructor(config: KubeConfig, onWatchStart: () => void) {
    super(config);
    this.#onWatchStart = onWatchStart;
  }
  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.disposed) return new AbortController();
    this.#onWatchStart();
    return super.watch(path, queryParams, callback, done);
  }
}

interface Informer<T extends KubernetesObject> {
  readonly lw: ListWatch<T>;
  readonly watch: SyncAwareWatch;
  backoffMs: number;
  failures: number;
  retry: NodeJS.Timeout | undefined;
}

export class KubernetesDiscovery {
  readonly #o: KubernetesDiscoveryOptions;
  readonly #store: Datastore;
  readonly #logger: Logger;
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #group: string;
  readonly #version: string;
  #pool: PoolSpec | undefined;
  #poolInformer: Informer<KubernetesObject> | undefined;
  #podInformer: Informer<V1Pod> | undefined;
  #podSelector = '';
  #closed = false;

  constructor(options: KubernetesDiscoveryOptions, store: Datastore, logger: Logger) {
    const pool = options.poolName ?? '';
    const selector = options.endpointSelector ?? '';
    if ((pool === '') === (selector === '')) {
      throw new EppConfigError('either pool-name or endpoint-selector must be set (exactly one)', 'pass --pool-name or --endpoint-selector with --endpoint-target-ports');
    }
    if (options.poolNamespace === '') throw new EppConfigError('pool namespace is empty', 'pass --pool-namespace or set NAMESPACE');
    this.#o = options;
    this.#store = store;
    this.#logger = logger;
    this.#group = options.poolGroup ?? DEFAULT_POOL_GROUP;
    if (this.#group === DEFAULT_POOL_GROUP) this.#version = 'v1';
    else if (this.#group === 'inference.networking.x-k8s.io') this.#version = 'v1alpha2';
    else throw new EppConfigError(`--pool-group '${this.#group}' is not supported`, `use ${DEFAULT_POOL_GROUP} (v1) or inference.networking.x-k8s.io (v1alpha2)`);
    if (selector !== '') {
      this.#pool = { selector: parseSelector(selector), targetPorts: normalizeTargetPorts(options.targetPorts ?? []) };
    }
    this.#kc = new KubeConfig();
    try {
      if (options.kubeconfig !== undefined && options.kubeconfig !== '') this.#kc.loadFromFile(options.kubeconfig);
      else this.#kc.loadFromDefault();
    } catch (err) {
      throw new EppConfigError(`cannot load kubeconfig: ${(err as Error).message}`, 'pass --kubeconfig or run in-cluster');
    }
    this.#core = this.#kc.makeApiClient(CoreV1Api);
    this.#custom = this.#kc.makeApiClient(CustomObjectsApi);
  }

  /** Starts the watches. Readiness follows via `store.poolKnown()`. */
  start(): void {
    if (this.#pool !== undefined) {
      this.#startPods(this.#pool);
      return;
    }
    const ns = this.#o.poolNamespace;
    const name = this.#o.poolName as string;
    const fieldSelector = `metadata.name=${name}`;
    const path = `/apis/${this.#group}/${this.#version}/namespaces/${ns}/inferencepools`;
    const list = (): Promise<KubernetesListObject<KubernetesObject>> =>
      this.#custom.listNamespacedCustomObject({
        group: this.#group,
        version: this.#version,
        namespace: ns,
        plural: 'inferencepools',
        fieldSelector,
      }) as Promise<KubernetesListObject<KubernetesObject>>;
    const informer = this.#informer<KubernetesObject>('InferencePool', path, list, undefined, fieldSelector, () => {});
    this.#poolInformer = informer;
    const onPool = (obj: KubernetesObject): void => {
      if (this.#poolInformer !== informer || obj.metadata?.name !== name) return;
      if (obj.metadata?.deletionTimestamp) this.#poolGone('being deleted');
      else this.#poolChanged(obj);
    };
    informer.lw.on('add', onPool);
    informer.lw.on('update', onPool);
    informer.lw.on('delete', (obj) => {
      if (this.#poolInformer === informer && obj.metadata?.name === name) this.#poolGone('deleted');
    });
    void informer.lw.start();
  }

  close(): void {
    this.#closed = true;
    this.#dispose(this.#poolInformer);
    this.#dispose(this.#podInformer);
    this.#poolInformer = undefined;
    this.#podInformer = undefined;
  }

  #poolChanged(obj: KubernetesObject): void {
    let spec: PoolSpec;
    try {
      spec = poolSpecFrom(obj, this.#group);
    } catch (err) {
      this.#logger.error({ pool: this.#o.poolName, err: (err as Error).message }, 'invalid InferencePool; keeping the previous state');
      return;
    }
    const prev = this.#pool;
    this.#pool = spec;
    if (prev === undefined || selectorString(prev.selector) !== selectorString(spec.selector)) {
      this.#logger.info({ pool: this.#o.poolName, selector: selectorString(spec.selector), targetPorts: spec.targetPorts }, 'InferencePool reconciled; resyncing pods');
      this.#startPods(spec);
    } else if (!samePorts(prev.targetPorts, spec.targetPorts)) {
      this.#logger.info({ pool: this.#o.poolName, targetPorts: spec.targetPorts }, 'InferencePool target ports changed; recomputing endpoints');
      this.#resyncFromCache();
    }
  }

  #poolGone(why: string): void {
    if (this.#pool === undefined && !this.#store.poolKnown()) return;
    this.#logger.warn({ pool: this.#o.poolName, why }, 'InferencePool gone; clearing endpoints (not ready)');
    this.#pool = undefined;
    this.#dispose(this.#podInformer);
    this.#podInformer = undefined;
    this.#podSelector = '';
    this.#store.clear();
    this.#store.setPoolKnown(false);
  }

  #startPods(pool: PoolSpec): void {
    this.#dispose(this.#podInformer);
    const labelSelector = selectorString(pool.selector);
    this.#podSelector = labelSelector;
    const ns = this.#o.poolNamespace;
    const path = `/api/v1/namespaces/${ns}/pods`;
    const list = (): Promise<KubernetesListObject<V1Pod>> => this.#core.listNamespacedPod({ namespace: ns, labelSelector });
    const informer = this.#informer<V1Pod>('Pod', path, list, labelSelector, undefined, () => {
      // A list just completed (first start, or relist after 410/restart): reconcile the whole pool from the
      // cache, which drops endpoints of pods the list no longer has, then report the pool as known.
      if (this.#podInformer !== informer) return;
      this.#resyncFromCache();
      this.#store.setPoolKnown(true);
    });
    this.#podInformer = informer;
    const onPod = (pod: V1Pod): void => {
      if (this.#podInformer !== informer || this.#pool === undefined) return;
      const name = pod.metadata?.name;
      if (name) this.#store.replacePod(name, podEndpoints(pod, this.#pool, this.#o.metricsPortOverride));
    };
    informer.lw.on('add', onPod);
    informer.lw.on('update', onPod);
    informer.lw.on('delete', (pod) => {
      const name = pod.metadata?.name;
      if (this.#podInformer === informer && name) this.#store.removePod(name);
    });
    void informer.lw.start();
  }

  #resyncFromCache(): void {
    const pool = this.#pool;
    const informer = this.#podInformer;
    if (pool === undefined || informer === undefined) return;
    const all: EndpointMetadata[] = [];
    for (const pod of informer.lw.list(this.#o.poolNamespace)) all.push(...podEndpoints(pod, pool, this.#o.metricsPortOverride));
    this.#store.replaceAll(all);
  }

  #informer<T extends KubernetesObject>(
    kind: string,
    path: string,
    list: () => Promise<KubernetesListObject<T>>,
    labelSelector: string | undefined,
    fieldSelector: string | undefined,
    onListed: () => void,
  ): Informer<T> {
    let listedSinceConnect = false;
    const watch = new SyncAwareWatch(this.#kc, () => {
      if (informer.failures > 0) {
        this.#logger.info({ kind, path, failures: informer.failures }, 'kubernetes list/watch recovered');
        informer.failures = 0;
        informer.backoffMs = this.#o.initialBackoffMs ?? 200;
      }
      if (listedSinceConnect) {
        listedSinceConnect = false;
        onListed();
      }
    });
    const lw = new ListWatch<T>(path, watch, async () => {
      const result = await list();
      listedSinceConnect = true;
      return result;
    }, false, labelSelector, fieldSelector);
    const informer: Informer<T> = { lw, watch, backoffMs: this.#o.initialBackoffMs ?? 200, failures: 0, retry: undefined };
    lw.on('error', (err: unknown) => {
      if (watch.disposed || this.#closed) return;
      informer.failures++;
      if (informer.failures === 1) {
        this.#logger.warn({ kind, path, err: err instanceof Error ? err.message : String(err) }, 'kubernetes list/watch failed; retrying with backoff, keeping the current endpoints');
      }
      const delay = informer.backoffMs;
      informer.backoffMs = Math.min(delay * 2, this.#o.maxBackoffMs ?? 10_000);
      informer.retry = setTimeout(() => {
        informer.retry = undefined;
        if (!watch.disposed && !this.#closed) void lw.start();
      }, delay);
      informer.retry.unref();
    });
    return informer;
  }

  #dispose(informer: Informer<KubernetesObject> | Informer<V1Pod> | undefined): void {
    if (informer === undefined) return;
    informer.watch.disposed = true;
    if (informer.retry !== undefined) clearTimeout(informer.retry);
    void informer.lw.stop();
  }

  /** Current label selector of the pod watch ('' when none). For tests and debugging. */
  get podSelector(): string {
    return this.#podSelector;
  }
}
