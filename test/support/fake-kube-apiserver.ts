/**
 * An in-process fake Kubernetes API server speaking the real list/watch wire format, for discovery tests.
 *
 * What it implements (the subset `@kubernetes/client-node`'s ListWatch uses):
 * - `GET /api/v1/namespaces/{ns}/pods` and `GET /apis/{group}/{version}/namespaces/{ns}/{plural}`:
 *   a list (`{kind: <Kind>List, metadata: {resourceVersion}, items}`) honouring `labelSelector`
 *   (`k=v`, `k==v`, `k!=v`, `k`, `!k`) and `fieldSelector` (`metadata.name=`, `metadata.namespace=`).
 * - The same path with `watch=true`: HTTP 200, chunked, one JSON event per line
 *   (`{"type":"ADDED|MODIFIED|DELETED|ERROR","object":{...}}`). Events after the given `resourceVersion`
 *   are replayed from history, then live events follow. A selector watch sees an object that stops matching
 *   as DELETED and one that starts matching as ADDED, like the real watch cache.
 * - `resourceVersion` older than the compaction point (`compact()`) → an `ERROR` event carrying a 410
 *   `Status` ("too old resource version"), then the stream ends — exactly what makes clients relist.
 * - `GET /api/v1` and `GET /apis/{group}/{version}`: API discovery (an `APIResourceList` of the known types).
 * - `closeWatches()` ends every open watch (what the API server does at its watch timeout).
 *
 * - `POST /apis/authentication.k8s.io/v1/tokenreviews` (tokens registered in `tokens`) and
 *   `POST /apis/authorization.k8s.io/v1/subjectaccessreviews` (allowed when `grants` holds the user and the
 *   non-resource path + verb, as `user GET /path`): what `--metrics-endpoint-auth` asks.
 *
 * Every object gets a cluster-wide increasing `metadata.resourceVersion` and a `uid`. `requests` records
 * each request (method, path, query) so tests can assert relists.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    deletionTimestamp?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** Identifies a resource collection: `''` group = core. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
}

export const PODS: ResourceType = { group: '', version: 'v1', plural: 'pods', kind: 'Pod' };
export const INFERENCE_POOLS: ResourceType = { group: 'inference.networking.k8s.io', version: 'v1', plural: 'inferencepools', kind: 'InferencePool' };

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEvent {
  readonly rv: number;
  readonly type: EventType;
  readonly key: string; // resource key
  readonly object: KubeObject;
  readonly previous: KubeObject | undefined;
}

interface OpenWatch {
  readonly res: ServerResponse;
  readonly key: string;
  readonly namespace: string;
  readonly labelSelector: Selector;
  readonly fieldSelector: FieldSelector;
}

type Requirement = { key: string; op: 'eq' | 'ne' | 'exists' | 'notexists'; value?: string };
type Selector = readonly Requirement[];
type FieldSelector = ReadonlyArray<{ field: string; value: string; negate: boolean }>;

function parseLabelSelector(s: string | null): Selector {
  if (!s) return [];
  return s.split(',').map((part) => {
    const p = part.trim();
    let m: RegExpExecArray | null;
    if ((m = /^(.+?)\s*!=\s*(.*)$/.exec(p))) return { key: m[1] as string, op: 'ne', value: m[2] as string };
    if ((m = /^(.+?)\s*==?\s*(.*)$/.exec(p))) return { key: m[1] as string, op: 'eq', value: m[2] as string };
    if (p.startsWith('!')) return { key: p.slice(1), op: 'notexists' };
    return { key: p, op: 'exists' };
  });
}

function parseFieldSelector(s: string | null): FieldSelector {
  if (!s) return [];
  return s.split(',').map((part) => {
    const ne = part.indexOf('!=');
    if (ne !== -1) return { field: part.slice(0, ne), value: part.slice(ne + 2), negate: true };
    const [field = '', value = ''] = part.replace('==', '=').split('=');
    return { field, value, negate: false };
  });
}

function matches(obj: KubeObject, namespace: string, labels: Selector, fields: FieldSelector): boolean {
  if ((obj.metadata.namespace ?? '') !== namespace) return false;
  const l = obj.metadata.labels ?? {};
  for (const r of labels) {
    const v = l[r.key];
    if (r.op === 'eq' && v !== r.value) return false;
    if (r.op === 'ne' && v === r.value) return false;
    if (r.op === 'exists' && v === undefined) return false;
    if (r.op === 'notexists' && v !== undefined) return false;
  }
  for (const f of fields) {
    const actual = f.field === 'metadata.name' ? obj.metadata.name : f.field === 'metadata.namespace' ? obj.metadata.namespace : undefined;
    if ((actual === f.value) === f.negate) return false;
  }
  return true;
}

function typeKey(t: ResourceType): string {
  return `${t.group}/${t.version}/${t.plural}`;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly watch: boolean;
}

export class FakeKubeApiServer {
  readonly #server: Server;
  readonly #types = new Map<string, ResourceType>();
  /** typeKey → "ns/name" → object */
  readonly #objects = new Map<string, Map<string, KubeObject>>();
  readonly #history: HistoryEvent[] = [];
  readonly #watches = new Set<OpenWatch>();
  #rv = 1000;
  #compactedRv = 0;
  #uid = 0;
  readonly requests: RecordedRequest[] = [];
  /** When set, every request gets this HTTP status (simulates an API server outage). */
  failWith: number | undefined;
  /** TokenReview: bearer token → the user it authenticates. */
  readonly tokens = new Map<string, { username: string; groups?: string[]; uid?: string }>();
  /** SubjectAccessReview: `"<user> <VERB> <non-resource path>"` entries that are allowed. */
  readonly grants = new Set<string>();

  constructor(types: readonly ResourceType[] = [PODS, INFERENCE_POOLS]) {
    for (const t of types) {
      this.#types.set(typeKey(t), t);
      this.#objects.set(typeKey(t), new Map());
    }
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    const a = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  /** Writes a kubeconfig pointing at this server (no auth) and returns its path. */
  writeKubeconfig(dir = mkdtempSync(join(tmpdir(), 'fake-kube-'))): string {
    const path = join(dir, 'kubeconfig.yaml');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${this.url}`,
        // client-node refuses plain http unless TLS verification is explicitly off.
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: fake',
        '  user: {}',
        'contexts:',
        '- name: fake',
        '  context: {cluster: fake, user: fake, namespace: default}',
        'current-context: fake',
        '',
      ].join('\n'),
    );
    return path;
  }

  async stop(): Promise<void> {
    this.closeWatches();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  /** Number of currently open watch streams. */
  get openWatches(): number {
    return this.#watches.size;
  }

  /** Creates or replaces an object (ADDED or MODIFIED event). Returns the stored copy. */
  apply(type: ResourceType, obj: KubeObject): KubeObject {
    const store = this.#store(type);
    const key = `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    const previous = store.get(key);
    const rv = ++this.#rv;
    const stored: KubeObject = structuredClone({
      ...obj,
      apiVersion: type.group === '' ? type.version : `${type.group}/${type.version}`,
      kind: type.kind,
      metadata: { ...obj.metadata, resourceVersion: String(rv), uid: previous?.metadata.uid ?? `uid-${++this.#uid}` },
    });
    store.set(key, stored);
    this.#publish({ rv, type: previous === undefined ? 'ADDED' : 'MODIFIED', key: typeKey(type), object: stored, previous });
    return stored;
  }

  /** Mutates a stored object through `fn` and publishes MODIFIED. */
  update(type: ResourceType, namespace: string, name: string, fn: (o: KubeObject) => void): KubeObject {
    const cur = this.get(type, namespace, name);
    if (cur === undefined) throw new Error(`${type.kind} ${namespace}/${name} not found`);
    const copy = structuredClone(cur);
    fn(copy);
    return this.apply(type, copy);
  }

  delete(type: ResourceType, namespace: string, name: string): void {
    const store = this.#store(type);
    const key = `${namespace}/${name}`;
    const previous = store.get(key);
    if (previous === undefined) throw new Error(`${type.kind} ${key} not found`);
    store.delete(key);
    const rv = ++this.#rv;
    const object = structuredClone({ ...previous, metadata: { ...previous.metadata, resourceVersion: String(rv) } });
    this.#publish({ rv, type: 'DELETED', key: typeKey(type), object, previous });
  }

  get(type: ResourceType, namespace: string, name: string): KubeObject | undefined {
    return this.#store(type).get(`${namespace}/${name}`);
  }

  /** Forgets history: any watch from an older resourceVersion now gets 410 Gone. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history.length = 0;
  }

  /** Ends every open watch stream normally (API server watch timeout). */
  closeWatches(): void {
    for (const w of this.#watches) w.res.end();
    this.#watches.clear();
  }

  /** Requests matching a predicate (e.g. lists of pods). */
  countRequests(pred: (r: RecordedRequest) => boolean): number {
    return this.requests.filter(pred).length;
  }

  #store(type: ResourceType): Map<string, KubeObject> {
    const s = this.#objects.get(typeKey(type));
    if (s === undefined) throw new Error(`unknown resource ${typeKey(type)}`);
    return s;
  }

  #publish(ev: HistoryEvent): void {
    this.#history.push(ev);
    for (const w of this.#watches) {
      if (w.key === ev.key) this.#send(w, ev);
    }
  }

  /** Writes `ev` to `w` translated for its selectors; returns nothing when the object is not visible. */
  #send(w: OpenWatch, ev: HistoryEvent): void {
    const nowMatches = ev.type !== 'DELETED' && matches(ev.object, w.namespace, w.labelSelector, w.fieldSelector);
    const prevMatches = ev.previous !== undefined && matches(ev.previous, w.namespace, w.labelSelector, w.fieldSelector);
    let type: EventType | undefined;
    if (ev.type === 'DELETED') type = prevMatches ? 'DELETED' : undefined;
    else if (nowMatches) type = prevMatches ? 'MODIFIED' : 'ADDED';
    else if (prevMatches) type = 'DELETED';
    if (type === undefined) return;
    w.res.write(`${JSON.stringify({ type, object: ev.object })}\n`);
  }

  #review(req: IncomingMessage, res: ServerResponse, isTokenReview: boolean): void {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(parts).toString('utf8')) as { spec: Record<string, unknown> };
      let status: Record<string, unknown>;
      if (isTokenReview) {
        const user = this.tokens.get(String(review.spec.token));
        status = user ? { authenticated: true, user } : { authenticated: false, error: 'invalid bearer token' };
      } else {
        const attrs = review.spec.nonResourceAttributes as { path?: string; verb?: string } | undefined;
        const key = `${String(review.spec.user)} ${(attrs?.verb ?? '').toUpperCase()} ${attrs?.path ?? ''}`;
        status = this.grants.has(key) ? { allowed: true } : { allowed: false, reason: 'no RBAC policy matched' };
      }
      const body = JSON.stringify({ ...review, status });
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams.entries());
    const isWatch = query.watch === 'true' || query.watch === '1';
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query, watch: isWatch });
    if (this.failWith !== undefined) {
      return this.#status(res, this.failWith, 'InternalError', 'injected failure');
    }
    if (req.method === 'POST' && (url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews' || url.pathname === '/apis/authorization.k8s.io/v1/subjectaccessreviews')) {
      return this.#review(req, res, url.pathname.includes('tokenreviews'));
    }
    // API discovery (`GET /api/v1`, `GET /apis/{group}/{version}`): the resource types this server knows.
    const d = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(url.pathname);
    if (req.method === 'GET' && d !== null) {
      const group = d[1] !== undefined ? '' : (d[2] ?? '');
      const version = d[1] ?? d[3] ?? '';
      const resources = [...this.#types.values()]
        .filter((t) => t.group === group && t.version === version)
        .map((t) => ({ name: t.plural, singularName: '', namespaced: true, kind: t.kind, verbs: ['get', 'list', 'watch'] }));
      if (resources.length === 0) return this.#status(res, 404, 'NotFound', `no resources in ${url.pathname}`);
      const body = JSON.stringify({ kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group === '' ? version : `${group}/${version}`, resources });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/namespaces\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || m === null) return this.#status(res, 404, 'NotFound', `no route for ${req.method} ${url.pathname}`);
    const [, coreVersion, group = '', groupVersion, namespace = '', plural = ''] = m;
    const version = coreVersion ?? groupVersion ?? '';
    const key = `${coreVersion !== undefined ? '' : group}/${version}/${plural}`;
    const type = this.#types.get(key);
    if (type === undefined) return this.#status(res, 404, 'NotFound', `the server could not find the requested resource (${key})`);
    const labelSelector = parseLabelSelector(url.searchParams.get('labelSelector'));
    const fieldSelector = parseFieldSelector(url.searchParams.get('fieldSelector'));

    if (!isWatch) {
      const items = [...this.#store(type).values()].filter((o) => matches(o, namespace, labelSelector, fieldSelector));
      const body = JSON.stringify({
        kind: `${type.kind}List`,
        apiVersion: type.group === '' ? type.version : `${type.group}/${type.version}`,
        metadata: { resourceVersion: String(this.#rv) },
        items: items.map((o) => ({ ...o, kind: undefined, apiVersion: undefined })),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }

    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = { res, key, namespace, labelSelector, fieldSelector };
    const rvParam = query.resourceVersion ?? '';
    const since = rvParam === '' || rvParam === '0' ? undefined : Number(rvParam);
    if (since !== undefined && since < this.#compactedRv) {
      const status = {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${since} (${this.#compactedRv})`,
        reason: 'Expired',
        code: 410,
      };
      res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
      return;
    }
    if (since === undefined) {
      // "Start at most recent": synthetic ADDED for the current state.
      for (const o of this.#store(type).values()) {
        if (matches(o, namespace, labelSelector, fieldSelector)) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
      }
    } else {
      for (const ev of this.#history) if (ev.key === key && ev.rv > since) this.#send(w, ev);
    }
    this.#watches.add(w);
    const drop = (): void => {
      this.#watches.delete(w);
    };
    req.on('close', drop);
    res.on('close', drop);
  }

  #status(res: ServerResponse, code: number, reason: string, message: string): void {
    const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(body);
  }
}

// --- object builders ---------------------------------------------------------------------------------------

export interface PodSpecInput {
  name: string;
  namespace?: string;
  ip?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ready?: boolean;
}

export function makePod(p: PodSpecInput): KubeObject {
  return {
    metadata: {
      name: p.name,
      namespace: p.namespace ?? 'default',
      labels: p.labels ?? {},
      ...(p.annotations !== undefined ? { annotations: p.annotations } : {}),
    },
    spec: { containers: [{ name: 'server', image: 'vllm/vllm-openai:latest' }] },
    status: {
      phase: 'Running',
      ...(p.ip !== undefined ? { podIP: p.ip } : {}),
      conditions: [{ type: 'Ready', status: p.ready === false ? 'False' : 'True' }],
    },
  };
}

export function makeInferencePool(p: { name: string; namespace?: string; selector: Record<string, string>; ports: number[] }): KubeObject {
  return {
    metadata: { name: p.name, namespace: p.namespace ?? 'default' },
    spec: {
      selector: { matchLabels: p.selector },
      targetPorts: p.ports.map((number) => ({ number })),
      endpointPickerRef: { name: `${p.name}-epp`, port: { number: 9002 } },
    },
  };
}
