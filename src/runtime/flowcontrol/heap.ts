/**
 * A binary min-heap that tracks each element's position, so an element can be removed from the middle in
 * O(log n) (a queued request that times out or whose client leaves). The position lives on the element under
 * a slot name, so one element can sit in two heaps at once (its flow queue and the TTL heap).
 */
export type HeapSlot = 'queueIndex' | 'ttlIndex';

export class IndexedHeap<T extends Record<HeapSlot, number>> {
  readonly #items: T[] = [];
  readonly #less: (a: T, b: T) => boolean;
  readonly #slot: HeapSlot;

  constructor(compare: (a: T, b: T) => number, slot: HeapSlot) {
    this.#less = (a, b) => compare(a, b) < 0;
    this.#slot = slot;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    item[this.#slot] = this.#items.length;
    this.#items.push(item);
    this.#up(this.#items.length - 1);
  }

  pop(): T | undefined {
    const top = this.#items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** Removes `item` if it is in this heap (no-op otherwise). */
  remove(item: T): void {
    const i = item[this.#slot];
    const items = this.#items;
    if (i < 0 || items[i] !== item) return;
    item[this.#slot] = -1;
    const last = items.pop() as T;
    if (i === items.length) return;
    items[i] = last;
    last[this.#slot] = i;
    this.#down(i);
    this.#up(last[this.#slot]);
  }

  #up(i: number): void {
    const items = this.#items;
    const item = items[i] as T;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as T;
      if (!this.#less(item, p)) break;
      items[i] = p;
      p[this.#slot] = i;
      i = parent;
    }
    items[i] = item;
    item[this.#slot] = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const item = items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && this.#less(items[r] as T, items[l] as T) ? r : l;
      const c = items[child] as T;
      if (!this.#less(c, item)) break;
      items[i] = c;
      c[this.#slot] = i;
      i = child;
    }
    items[i] = item;
    item[this.#slot] = i;
  }
}
