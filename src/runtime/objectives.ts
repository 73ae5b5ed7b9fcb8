/**
 * InferenceObjective lookup (epp-spec §6.1, §8.2): objective name (header `x-gateway-inference-objective`) →
 * priority. Unknown objective or unset priority → 0 (the director's default). Objects come from one or more
 * sources (the `--resources-file`, the Kubernetes watch); each source replaces its own set atomically. When
 * two sources define the same name, the source that was applied first wins.
 */
import type { ObjectiveResource, ResourceSet, ResourceSink } from '../datalayer/resources/manifests.ts';
import type { ObjectiveResolver } from './request-path.ts';
import { RewriteStore, type RewriteDecision } from './rewrites.ts';

export class ObjectiveStore implements ObjectiveResolver {
  readonly #bySource = new Map<string, ReadonlyMap<string, number | undefined>>();
  #merged: ReadonlyMap<string, number | undefined> = new Map();

  priority(objectiveName: string): number | undefined {
    return this.#merged.get(objectiveName);
  }

  /** Names currently known (for tests and logs). */
  names(): string[] {
    return [...this.#merged.keys()];
  }

  replace(source: string, objectives: readonly ObjectiveResource[]): void {
    const m = new Map<string, number | undefined>();
    for (const o of objectives) if (!m.has(o.name)) m.set(o.name, o.priority);
    this.#bySource.set(source, m);
    const merged = new Map<string, number | undefined>();
    for (const src of this.#bySource.values()) for (const [k, v] of src) if (!merged.has(k)) merged.set(k, v);
    this.#merged = merged;
  }
}

/** The sink the resource sources publish to: objectives and rewrites, replaced per source. */
export class InferenceResources implements ResourceSink {
  readonly objectives = new ObjectiveStore();
  readonly rewrites: RewriteStore;
  constructor(onRewrite?: (d: RewriteDecision, model: string) => void) {
    this.rewrites = new RewriteStore(onRewrite);
  }
  apply(source: string, set: ResourceSet): void {
    this.objectives.replace(source, set.objectives);
    this.rewrites.replace(source, set.rewrites);
  }
}
