/**
 * `k8s-notification-source` (epp-spec §5.2): a data-layer source that watches Kubernetes objects of one kind
 * (`group`, `version`, `kind`) in the pool's namespace and delivers their add/update/delete events to its
 * extractors (`KubernetesObjectEvent`). One source per kind: a second source for the same kind is a startup error.
 *
 * It runs when endpoints are discovered from Kubernetes (`--pool-name` or `--endpoint-selector`), with the same
 * kubeconfig; otherwise there is no cluster to watch and it logs that once. The resource name is resolved by API
 * discovery, then a list+watch (`@kubernetes/client-node` ListWatch) follows the objects; list/watch failures are
 * logged once per failure streak and retried with capped exponential backoff.
 *
 * The Kubernetes client is loaded when the source starts watching, not when this module is imported (every
 * `epp` process registers the built-in plugins; the client is the largest module there is). Loading the
 * kubeconfig therefore happens then too: Kubernetes discovery has loaded the same kubeconfig at startup, so a
 * failure here is logged (and the source stays silent) rather than a startup error.
 */
import type { KubeConfig, KubernetesListObject, KubernetesObject, ListWatch } from '@kubernetes/client-node';
import { z } from 'zod';
import { KUBERNETES_OBJECT_EVENTS, type KubernetesObjectEvent, type NotificationContext, type NotificationSource } from '../../../../framework/datasource.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';

export const K8S_NOTIFICATION_SOURCE_TYPE = 'k8s-notification-source';

const parametersSchema = z.strictObject({
  /** API group; '' (default) is the core group. */
  group: z.string({ error: 'expected a string' }).default(''),
  version: z.string({ error: 'expected a string (e.g. v1)' }).min(1, 'is required (e.g. v1)'),
  kind: z.string({ error: 'expected a string (e.g. ConfigMap)' }).min(1, 'is required (e.g. ConfigMap)'),
});

type KubernetesClient = typeof import('@kubernetes/client-node');

/** The client and a kubeconfig loaded with it. */
async function connect(kubeconfig: string | undefined): Promise<{ k8s: KubernetesClient; kc: KubeConfig }> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return { k8s, kc };
}

/** `KubernetesObjectApi` with its (protected) discovery lookup exposed (a class over the loaded client). */
function resourceLookup(k8s: KubernetesClient, kc: KubeConfig) {
  class ResourceLookup extends k8s.KubernetesObjectApi {
    find(apiVersion: string, kind: string) {
      return this.resource(apiVersion, kind);
    }
  }
  return kc.makeApiClient(ResourceLookup);
}

export class K8sNotificationSource implements NotificationSource {
  readonly typedName: TypedName;
  readonly outputType = KUBERNETES_OBJECT_EVENTS;
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** First retry delay after a list/watch error; doubles up to 10 s. */
  initialBackoffMs = 200;

  constructor(name: string, gvk: { group: string; version: string; kind: string }) {
    this.typedName = { type: K8S_NOTIFICATION_SOURCE_TYPE, name };
    this.group = gvk.group;
    this.version = gvk.version;
    this.kind = gvk.kind;
  }

  get apiVersion(): string {
    return this.group === '' ? this.version : `${this.group}/${this.version}`;
  }

  /** `group/version/kind` (`v1/Pod` for the core group): one source per value. */
  get uniqueKey(): string {
    return `${this.apiVersion}/${this.kind}`;
  }

  start(context: NotificationContext): () => void {
    const k8s = context.kubernetes;
    if (!k8s) {
      context.logger.warn({ gvk: this.uniqueKey }, 'k8s-notification-source: endpoints are not discovered from Kubernetes, so there is no cluster to watch; no events');
      return () => {};
    }
    const connected = connect(k8s.kubeconfig).then(
      (c) => ({ ...c, api: resourceLookup(c.k8s, c.kc) }),
      (err: unknown) => {
        context.logger.error(
          { gvk: this.uniqueKey, err: err instanceof Error ? err.message : String(err) },
          `k8s-notification-source '${this.typedName.name}': cannot load kubeconfig (pass --kubeconfig or run in-cluster); no events`,
        );
        return undefined;
      },
    );
    let stopped = false;
    let lw: ListWatch<KubernetesObject> | undefined;
    let retry: NodeJS.Timeout | undefined;
    let backoff = this.initialBackoffMs;
    let failures = 0;
    const gvk = this.uniqueKey;
    const deliver = (type: KubernetesObjectEvent['type']) => (object: KubernetesObject) =>
      context.deliver({ type, gvk, object: object as unknown as Record<string, unknown> } satisfies KubernetesObjectEvent);
    const fail = (err: unknown): void => {
      if (stopped) return;
      failures++;
      if (failures === 1) context.logger.warn({ gvk, err: err instanceof Error ? err.message : String(err) }, 'k8s-notification-source: list/watch failed; retrying');
      const delay = backoff;
      backoff = Math.min(delay * 2, 10_000);
      retry = setTimeout(() => {
        retry = undefined;
        void run();
      }, delay);
      retry.unref();
    };
    const run = async (): Promise<void> => {
      if (stopped) return;
      const c = await connected;
      if (c === undefined || stopped) return;
      const { k8s: client, kc, api } = c;
      try {
        if (lw === undefined) {
          const resource = await api.find(this.apiVersion, this.kind);
          if (resource === undefined) throw new Error(`the API server does not serve kind ${this.kind} in ${this.apiVersion}`);
          const base = this.group === '' ? `/api/${this.version}` : `/apis/${this.group}/${this.version}`;
          const path = resource.namespaced ? `${base}/namespaces/${k8s.namespace}/${resource.name}` : `${base}/${resource.name}`;
          const list = (): Promise<KubernetesListObject<KubernetesObject>> =>
            api.list(this.apiVersion, this.kind, resource.namespaced ? k8s.namespace : undefined) as Promise<KubernetesListObject<KubernetesObject>>;
          const created = new client.ListWatch<KubernetesObject>(path, new client.Watch(kc), list, false);
          created.on('add', deliver('added'));
          created.on('update', deliver('updated'));
          created.on('delete', deliver('deleted'));
          created.on('connect', () => {
            if (failures > 0) context.logger.info({ gvk, failures }, 'k8s-notification-source: list/watch recovered');
            failures = 0;
            backoff = this.initialBackoffMs;
          });
          created.on('error', fail);
          if (stopped) return;
          lw = created;
        }
        await lw.start();
      } catch (err) {
        fail(err);
      }
    };
    void run();
    return () => {
      stopped = true;
      if (retry !== undefined) clearTimeout(retry);
      void lw?.stop();
    };
  }
}

export const k8sNotificationSourceFactory: PluginFactory = (name, parameters) => {
  const gvk = parsePluginParameters({ type: K8S_NOTIFICATION_SOURCE_TYPE, name }, parametersSchema, parameters);
  return new K8sNotificationSource(name, gvk);
};
