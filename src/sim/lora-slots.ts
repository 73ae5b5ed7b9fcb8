// LoRA slots of the running batch (sim-spec §2.3): at most `maxLoras` distinct adapters may have running requests.
// A slot is held while its adapter has at least one running request, and is free again when the last one stops.

export class LoraSlots {
  readonly #runningByAdapter = new Map<string, number>();

  /** True if a request for `adapter` may join the batch now. */
  canRun(adapter: string, maxLoras: number): boolean {
    return this.#runningByAdapter.has(adapter) || this.#runningByAdapter.size < maxLoras;
  }

  /** Records one more running request of `adapter` (call only after `canRun`). */
  acquire(adapter: string): void {
    this.#runningByAdapter.set(adapter, (this.#runningByAdapter.get(adapter) ?? 0) + 1);
  }

  /** Records that one running request of `adapter` stopped running. */
  release(adapter: string): void {
    const n = (this.#runningByAdapter.get(adapter) ?? 0) - 1;
    if (n <= 0) this.#runningByAdapter.delete(adapter);
    else this.#runningByAdapter.set(adapter, n);
  }

  get activeAdapters(): number {
    return this.#runningByAdapter.size;
  }
}
