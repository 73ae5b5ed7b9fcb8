/**
 * `InferenceObjective` and `InferenceModelRewrite` (`inference.networking.x-k8s.io/v1alpha2`, epp-spec
 * §8.2–§8.3): validation of the manifests, shared by the `--resources-file` watcher and the Kubernetes watches,
 * and the pool filter both apply.
 */
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';

export const RESOURCES_API_VERSION = 'inference.networking.x-k8s.io/v1alpha2';
const DEFAULT_POOL_REF_GROUP = 'inference.networking.k8s.io';
const DEFAULT_POOL_REF_KIND = 'InferencePool';

export interface PoolRef {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
}

export interface ObjectiveResource {
  readonly name: string;
  readonly namespace: string | undefined;
  /** Undefined when unset (→ priority 0). */
  readonly priority: number | undefined;
  readonly poolRef: PoolRef;
}

export interface RewriteTarget {
  readonly model: string;
  /** 0 = no weight given. */
  readonly weight: number;
}

export interface RewriteRule {
  /** Exact model names this rule matches; empty = generic rule (matches every model). */
  readonly models: readonly string[];
  readonly targets: readonly RewriteTarget[];
}

export interface RewriteResource {
  readonly name: string;
  readonly namespace: string | undefined;
  /** ms since epoch, undefined when absent. */
  readonly creationTimestamp: number | undefined;
  /** Position in its source (file order), the tie-break and the stand-in for a missing timestamp. */
  readonly order: number;
  readonly poolRef: PoolRef;
  readonly rules: readonly RewriteRule[];
}

export interface ResourceSet {
  readonly objectives: readonly ObjectiveResource[];
  readonly rewrites: readonly RewriteResource[];
}

/** Where validated resources go (implemented by the runtime's objective and rewrite stores). */
export interface ResourceSink {
  /** Replaces everything `source` contributed before with `set`. */
  apply(source: string, set: ResourceSet): void;
}

const metadata = z.looseObject({
  name: z.string({ error: 'is required' }).min(1, 'is required'),
  namespace: z.string().optional(),
  creationTimestamp: z.union([z.string(), z.date()]).nullish(),
});

const poolRef = z.strictObject({
  group: z.string().optional(),
  kind: z.string().optional(),
  name: z.string({ error: 'is required' }).min(1, 'is required'),
});

const objectiveSchema = z.looseObject({
  apiVersion: z.literal(RESOURCES_API_VERSION),
  kind: z.literal('InferenceObjective'),
  metadata,
  spec: z.strictObject({
    priority: z.number().int('must be an integer').nullish(),
    poolRef,
  }),
});

const rewriteSchema = z.looseObject({
  apiVersion: z.literal(RESOURCES_API_VERSION),
  kind: z.literal('InferenceModelRewrite'),
  metadata,
  spec: z.strictObject({
    poolRef: poolRef.nullish(),
    rules: z
      .array(
        z.strictObject({
          matches: z
            .array(
              z.strictObject({
                model: z.strictObject({
                  type: z.literal('Exact', { error: "only 'Exact' is supported" }).optional(),
                  value: z.string({ error: 'is required' }).min(1, 'is required'),
                }),
              }),
            )
            .nullish(),
          targets: z
            .array(
              z.strictObject({
                modelRewrite: z.string({ error: 'is required' }).min(1, 'is required'),
                weight: z.number().int('must be an integer').min(0).max(1_000_000, 'must be at most 1000000').nullish(),
              }),
            )
            .nullish(),
        }),
      )
      .nullish(),
  }),
});

function pathOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || '(object)';
}

function timestamp(v: string | Date | null | undefined, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const ms = v instanceof Date ? v.getTime() : Date.parse(v);
  if (Number.isNaN(ms)) throw new Error(`${where}metadata.creationTimestamp: not an RFC 3339 time: ${String(v)}`);
  return ms;
}

function toPoolRef(p: { group?: string | undefined; kind?: string | undefined; name: string }): PoolRef {
  return { group: p.group || DEFAULT_POOL_REF_GROUP, kind: p.kind || DEFAULT_POOL_REF_KIND, name: p.name };
}

/**
 * Validates one object. Returns undefined for an InferenceModelRewrite without `spec.poolRef` (ignored, as
 * upstream). Throws Error with a field path, prefixed by `where`.
 */
export function parseResource(obj: unknown, order: number, where = ''): ObjectiveResource | RewriteResource | undefined {
  const kind = (obj as { kind?: unknown } | null)?.kind;
  if (kind !== 'InferenceObjective' && kind !== 'InferenceModelRewrite') {
    throw new Error(`${where}kind: expected InferenceObjective or InferenceModelRewrite, got ${JSON.stringify(kind ?? null)}`);
  }
  const schema = kind === 'InferenceObjective' ? objectiveSchema : rewriteSchema;
  const parsed = schema.safeParse(obj);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const keys = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `'${k}'`).join(', ')}` : issue.message;
    throw new Error(`${where}${kind} ${JSON.stringify((obj as { metadata?: { name?: unknown } }).metadata?.name ?? '')}: ${pathOf(issue.path)}: ${keys}`);
  }
  const d = parsed.data;
  const name = d.metadata.name;
  if (d.kind === 'InferenceObjective') {
    const spec = (d as z.infer<typeof objectiveSchema>).spec;
    return { name, namespace: d.metadata.namespace, priority: spec.priority ?? undefined, poolRef: toPoolRef(spec.poolRef) };
  }
  const spec = (d as z.infer<typeof rewriteSchema>).spec;
  if (spec.poolRef === undefined || spec.poolRef === null) return undefined;
  return {
    name,
    namespace: d.metadata.namespace,
    creationTimestamp: timestamp(d.metadata.creationTimestamp, where),
    order,
    poolRef: toPoolRef(spec.poolRef),
    rules: (spec.rules ?? []).map((r) => ({
      models: (r.matches ?? []).map((m) => m.model.value),
      targets: (r.targets ?? []).map((t) => ({ model: t.modelRewrite, weight: t.weight ?? 0 })),
    })),
  };
}

/** Which objects apply to this EPP: all of them (standalone), or those naming our pool. */
export interface PoolFilter {
  readonly poolName?: string;
  readonly poolNamespace?: string;
  readonly poolGroup?: string;
}

export function appliesTo(r: { namespace: string | undefined; poolRef: PoolRef }, f: PoolFilter): boolean {
  if (f.poolName === undefined || f.poolName === '') return true;
  if (r.poolRef.name !== f.poolName) return false;
  if (f.poolGroup !== undefined && r.poolRef.group !== f.poolGroup) return false;
  if (f.poolNamespace !== undefined && r.namespace !== undefined && r.namespace !== f.poolNamespace) return false;
  return true;
}

/**
 * Parses a multi-document YAML file of InferenceObjective / InferenceModelRewrite manifests (a `kind: List`
 * with `items` is accepted too; empty documents are skipped). Keeps the objects that apply to the pool.
 * Throws Error naming the document and field on any invalid object, or on duplicate names of one kind.
 */
export function parseResourcesFile(text: string, filter: PoolFilter = {}): ResourceSet {
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  const objects: Array<{ obj: unknown; where: string }> = [];
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`document ${i + 1}: not valid YAML: ${(doc.errors[0]?.message ?? '').split('\n')[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const v = value as { kind?: unknown; items?: unknown };
    if (v.kind === 'List' && Array.isArray(v.items)) v.items.forEach((item, j) => objects.push({ obj: item, where: `document ${i + 1}: items[${j}]: ` }));
    else objects.push({ obj: value, where: `document ${i + 1}: ` });
  });
  const objectives: ObjectiveResource[] = [];
  const rewrites: RewriteResource[] = [];
  const seen = new Set<string>();
  objects.forEach(({ obj, where }, order) => {
    const r = parseResource(obj, order, where);
    if (r === undefined || !appliesTo(r, filter)) return;
    const isObjective = !('rules' in r);
    const key = `${isObjective ? 'InferenceObjective' : 'InferenceModelRewrite'}/${r.namespace ?? ''}/${r.name}`;
    if (seen.has(key)) throw new Error(`${where}duplicate ${key.split('/')[0]} '${r.name}'`);
    seen.add(key);
    if ('rules' in r) rewrites.push(r);
    else objectives.push(r);
  });
  return { objectives, rewrites };
}
