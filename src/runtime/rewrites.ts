/**
 * InferenceModelRewrite selection (epp-spec §2.1, §8.3).
 *
 * Rules with `matches` are exact rules, indexed under each model value; rules without are generic. For an
 * incoming model name: the exact rule of the oldest object wins; else the generic rule of the oldest object;
 * else no rewrite. "Oldest" = `creationTimestamp`; objects without one count as newer than any with one and
 * keep their source (file) order among themselves. Within one object the first rule listing the model wins.
 *
 * Weighted target choice: weights summed (0 = no weight); sum 0 → uniform; else the first target whose
 * cumulative weight exceeds r ∈ [0, sum). A rule with no targets rewrites nothing (upstream would send an
 * empty model name).
 */
import type { RewriteResource, RewriteRule } from '../datalayer/resources/manifests.ts';
import type { RandomSource } from '../framework/plugin.ts';
import { randomIndex } from '../util/random.ts';
import type { ModelRewriteResolver } from './request-path.ts';

interface IndexedRule {
  readonly objectName: string;
  readonly rule: RewriteRule;
}

export interface RewriteDecision {
  /** Name of the InferenceModelRewrite object (the `model_rewrite_name` metric label). */
  readonly rewriteName: string;
  readonly targetModel: string;
}

export class RewriteStore implements ModelRewriteResolver {
  readonly #onDecision: ((d: RewriteDecision, model: string) => void) | undefined;
  readonly #bySource = new Map<string, readonly RewriteResource[]>();
  readonly #sourceOrder = new Map<string, number>();
  #exact = new Map<string, IndexedRule>();
  #generic: IndexedRule | undefined;

  /** `onDecision` runs for every applied rewrite (the `model_rewrite_decisions_total` counter). */
  constructor(onDecision?: (d: RewriteDecision, model: string) => void) {
    this.#onDecision = onDecision;
  }

  rewrite(model: string, random: RandomSource): string | undefined {
    if (this.#exact.size === 0 && this.#generic === undefined) return undefined;
    const d = this.decide(model, random);
    if (d === undefined) return undefined;
    this.#onDecision?.(d, model);
    return d.targetModel;
  }

  replace(source: string, rewrites: readonly RewriteResource[]): void {
    if (!this.#sourceOrder.has(source)) this.#sourceOrder.set(source, this.#sourceOrder.size);
    this.#bySource.set(source, rewrites);
    const all: Array<{ r: RewriteResource; src: number }> = [];
    for (const [s, list] of this.#bySource) for (const r of list) all.push({ r, src: this.#sourceOrder.get(s) as number });
    all.sort((a, b) => {
      const ta = a.r.creationTimestamp ?? Number.POSITIVE_INFINITY;
      const tb = b.r.creationTimestamp ?? Number.POSITIVE_INFINITY;
      return ta !== tb ? (ta < tb ? -1 : 1) : a.src - b.src || a.r.order - b.r.order;
    });
    const exact = new Map<string, IndexedRule>();
    let generic: IndexedRule | undefined;
    for (const { r } of all) {
      for (const rule of r.rules) {
        if (rule.models.length === 0) generic ??= { objectName: r.name, rule };
        else for (const m of rule.models) if (!exact.has(m)) exact.set(m, { objectName: r.name, rule });
      }
    }
    this.#exact = exact;
    this.#generic = generic;
  }

  /** True when a rule names `model` (as a match or a target): a model the operator configured. */
  names(model: string): boolean {
    if (this.#exact.has(model)) return true;
    for (const list of this.#bySource.values()) for (const r of list) for (const rule of r.rules) for (const t of rule.targets) if (t.model === model) return true;
    return false;
  }

  /** The rule that applies to `model`, or undefined. */
  ruleFor(model: string): IndexedRule | undefined {
    return this.#exact.get(model) ?? this.#generic;
  }

  /** The rewrite for `model` with a weighted target drawn from `random`, or undefined when none applies. */
  decide(model: string, random: RandomSource): RewriteDecision | undefined {
    const hit = this.ruleFor(model);
    if (hit === undefined) return undefined;
    const target = weightedPick(hit.rule.targets, random);
    return target === undefined ? undefined : { rewriteName: hit.objectName, targetModel: target };
  }
}

export function weightedPick(targets: RewriteRule['targets'], random: RandomSource): string | undefined {
  if (targets.length === 0) return undefined;
  let sum = 0;
  for (const t of targets) sum += t.weight;
  if (sum <= 0) return targets[randomIndex(random, targets.length)]?.model;
  const r = random.next() * sum;
  let acc = 0;
  for (const t of targets) {
    acc += t.weight;
    if (acc > r) return t.model;
  }
  return targets[targets.length - 1]?.model;
}
