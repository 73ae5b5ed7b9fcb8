/**
 * Bounds the values a client-controlled string can take as a metric label. A value the operator's setup knows
 * (a served model, a rewrite rule's model, ...) keeps its name; up to `maxExtra` other distinct values keep
 * theirs too, first come first kept (so a pool whose models nothing announces still gets per-model series);
 * every further value is recorded as `other`. The series count per metric is thus at most
 * |known| + maxExtra + 1, whatever clients send.
 */
export const OTHER_LABEL = 'other';

export class LabelBound {
  #known: (value: string) => boolean;
  #maxExtra: number;
  readonly #extra = new Set<string>();

  constructor(maxExtra: number, known: (value: string) => boolean = () => false) {
    this.#maxExtra = maxExtra;
    this.#known = known;
  }

  /** Replaces the known-value test and (optionally) the extra allowance. Values already admitted stay. */
  configure(known: (value: string) => boolean, maxExtra?: number): void {
    this.#known = known;
    if (maxExtra !== undefined) this.#maxExtra = maxExtra;
  }

  /** Values admitted beyond the known set so far. */
  get extraCount(): number {
    return this.#extra.size;
  }

  label(value: string): string {
    if (value === '' || this.#extra.has(value) || this.#known(value)) return value;
    if (this.#extra.size < this.#maxExtra) {
      this.#extra.add(value);
      return value;
    }
    return OTHER_LABEL;
  }
}

/** Distinct model names (beyond the known ones) kept as labels before the rest become `other`. */
export const DEFAULT_MAX_EXTRA_MODEL_LABELS = 32;
/** Distinct fairness ids kept as labels before the rest become `other`. */
export const DEFAULT_MAX_FAIRNESS_LABELS = 64;
