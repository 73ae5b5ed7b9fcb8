/**
 * Renders deploy/kubernetes with the real `kubectl kustomize` and reads the rendered objects: what the deploy
 * tests share. kubectl is a prerequisite (.ci/run installs it); without it the tests skip locally and fail on CI.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO = resolve(import.meta.dirname, '../..');
export const KUSTOMIZE_ROOT = join(REPO, 'deploy/kubernetes');
/** Every kustomization a user applies, relative to deploy/kubernetes. */
export const KUSTOMIZATIONS = ['base', 'overlays/inferencepool', 'overlays/standalone', 'overlays/embedded-gateway', 'overlays/replicas', 'monitoring', 'model-servers/sim'] as const;
/** The ones that run the EPP. */
export const EPP_KUSTOMIZATIONS = ['base', 'overlays/inferencepool', 'overlays/standalone', 'overlays/embedded-gateway', 'overlays/replicas'] as const;

const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const kubectlFound = spawnSync(KUBECTL, ['version', '--client'], { encoding: 'utf8' }).status === 0;

/** `skip` option for node:test: skip without kubectl locally; on CI (CI=true) the test runs and fails. */
export const needsKubectl: string | false = kubectlFound || process.env.CI ? false : `'${KUBECTL}' not found: install kubectl (.ci/run shows how)`;

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

const cache = new Map<string, KubeObject[]>();

/** `kubectl kustomize deploy/kubernetes/<dir>` → objects. Throws with kubectl's stderr on failure. */
export function render(dir: string): KubeObject[] {
  const hit = cache.get(dir);
  if (hit) return structuredClone(hit);
  const r = spawnSync(KUBECTL, ['kustomize', join(KUSTOMIZE_ROOT, dir)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (${r.status ?? r.error?.message}):\n${r.stderr}`);
  const objects = parseAllDocuments(r.stdout).map((d) => {
    if (d.errors.length > 0) throw new Error(`${dir}: rendered YAML does not parse: ${d.errors[0]?.message}`);
    return d.toJS() as KubeObject;
  });
  cache.set(dir, objects);
  return structuredClone(objects);
}

export function find(objects: readonly KubeObject[], kind: string, name?: string): KubeObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
export interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
}
export interface PodSpec {
  containers: Container[];
  volumes?: Array<{ name: string; configMap?: { name: string }; emptyDir?: unknown }>;
  serviceAccountName?: string;
}

export function podSpec(deployment: KubeObject): PodSpec {
  return (deployment.spec as { template: { spec: PodSpec } }).template.spec;
}

/** The image's ENTRYPOINT, from the Dockerfile: what a container without `command` runs. */
export function imageEntrypoint(): string[] {
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  if (!m?.[1]) throw new Error('Dockerfile has no exec-form ENTRYPOINT');
  return JSON.parse(m[1]) as string[];
}

/**
 * The `epp` argv a container runs (subcommand first), with `$(VAR)` expanded as the kubelet does from the
 * container's env (`fieldRef: metadata.namespace` → `namespace`). Undefined for containers that are not the EPP.
 */
export function eppArgv(c: Container, namespace: string): string[] | undefined {
  // Our image is `endpoint-picker[:tag]` (retagged by users with kustomize `images:`); others (Envoy) are not the EPP.
  if (!/(^|\/)endpoint-picker(:|@|$)/.test(c.image)) return undefined;
  const entry = c.command ?? imageEntrypoint();
  const at = entry.indexOf('/app/bin/epp.js');
  if (at === -1) return undefined;
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = namespace;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = `${c.name}-pod`;
  }
  const expand = (a: string) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, v: string) => env[v] ?? whole);
  return [...entry.slice(at + 1), ...(c.args ?? [])].map(expand);
}
