// The llm-d inference simulator's latency model (sim-spec §2.1), kept for comparisons with the Go simulator:
// `maxNumSeqs` worker slots and a FIFO queue; a request in a slot sleeps TTFT, then ITL per further token.
// Requests interfere only through the linear load factor f = 1 + (timeFactorUnderLoad − 1) × (running − 1) /
// (maxNumSeqs − 1). The prompt's blocks are pinned in the block pool for the request's lifetime; a request whose
// blocks do not fit fails with 500, as in the llm-d sim.

import { distinctLoras } from './engine.ts';
import type { Engine, EngineDeps, SchedulerState } from './engine.ts';
import { LoraSlots } from './lora-slots.ts';
import type { FinishReason, Sequence } from './sequence.ts';
import type { TimerHandle } from './clock.ts';

const KV_FULL_MESSAGE = 'the kv cache does not have sufficient capacity to store this request';

export class LlmdEngine implements Engine {
  readonly #deps: EngineDeps;
  readonly #waiting: Sequence[] = [];
  readonly #running = new Set<Sequence>();
  readonly #timers = new Map<Sequence, TimerHandle>();
  readonly #loraSlots = new LoraSlots();
  #dispatchTimer: TimerHandle | null = null;
  #stalledUntilMs = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
    deps.pool.onEvict = (hash) => deps.kvEvents.push({ type: 'BlockRemoved', block_hashes: [hash], medium: 'GPU' });
  }

  submit(seq: Sequence): void {
    if (this.#closed) throw new Error('LlmdEngine: submit after close');
    seq.status = 'waiting';
    this.#waiting.push(seq);
    this.#publishState();
    this.#scheduleDispatch();
  }

  abort(seq: Sequence): void {
    if (seq.status === 'finished' || seq.status === 'new') return;
    if (seq.status === 'waiting') {
      const i = this.#waiting.indexOf(seq);
      if (i >= 0) this.#waiting.splice(i, 1);
      seq.status = 'finished';
      this.#deps.metrics.onFinished(seq, 'abort', this.#deps.clock.nowMs());
      seq.observer.onFinish(seq, 'abort');
      this.#publishState();
      return;
    }
    this.#finish(seq, 'abort', this.#deps.clock.nowMs());
  }

  preemptAll(): number {
    const preempted = [...this.#running];
    for (const seq of preempted) {
      this.#timers.get(seq)?.cancel();
      this.#timers.delete(seq);
      this.#running.delete(seq);
      this.#deps.pool.release(seq.blocks);
      seq.blocks = [];
      seq.numComputed = 0;
      seq.preemptions++;
      if (seq.lora !== null) this.#loraSlots.release(seq.lora);
      seq.status = 'waiting';
      this.#deps.metrics.onPreemption(seq);
    }
    this.#waiting.unshift(...preempted); // admission order, ahead of the queue
    this.#publishState();
    if (preempted.length > 0) this.#scheduleDispatch();
    return preempted.length;
  }

  stallFor(durationMs: number): void {
    const until = this.#deps.clock.nowMs() + durationMs;
    if (until > this.#stalledUntilMs) this.#stalledUntilMs = until;
  }

  state(): SchedulerState {
    return {
      running: this.#running.size,
      waiting: this.#waiting.length,
      kvUsage: this.#deps.pool.usage,
      runningLoras: distinctLoras(this.#running),
      waitingLoras: distinctLoras(this.#waiting),
    };
  }

  close(): void {
    if (this.#closed) return;
    for (const seq of [...this.#running, ...this.#waiting]) this.abort(seq);
    this.#closed = true;
    this.#dispatchTimer?.cancel();
    for (const t of this.#timers.values()) t.cancel();
    this.#timers.clear();
  }

  #scheduleDispatch(): void {
    if (this.#dispatchTimer !== null || this.#closed) return;
    this.#dispatchTimer = this.#deps.clock.setTimer(this.#deps.clock.nowMs(), () => {
      this.#dispatchTimer = null;
      this.#dispatch();
    });
  }

  /** Starts queued requests while slots are free, skipping requests whose LoRA has no slot. */
  #dispatch(): void {
    const { options: o, pool, clock, metrics } = this.#deps;
    let idx = 0;
    while (idx < this.#waiting.length && this.#running.size < o.maxNumSeqs) {
      const seq = this.#waiting[idx] as Sequence;
      if (seq.lora !== null && !this.#loraSlots.canRun(seq.lora, o.maxLoras)) {
        idx++;
        continue;
      }
      this.#waiting.splice(idx, 1);
      const now = clock.nowMs();
      const B = pool.blockSize;
      const hitBlocks = o.enablePrefixCaching ? pool.lookup(seq.blockHashes, Math.floor((seq.promptLen - 1) / B)) : 0;
      const promptBlocks = Math.ceil(seq.promptLen / B);
      const newBlocks = promptBlocks - hitBlocks;
      if (newBlocks + pool.idleHits(seq.blockHashes, hitBlocks) > pool.numFreeBlocks) {
        seq.status = 'finished';
        metrics.onFinished(seq, 'error', now);
        seq.observer.onFinish(seq, 'error', { status: 500, message: KV_FULL_MESSAGE });
        continue;
      }
      pool.acquireHits(seq.blockHashes, hitBlocks, seq.blocks);
      pool.allocate(newBlocks, seq.blocks);
      if (o.enablePrefixCaching) {
        const full = Math.floor(seq.promptLen / B);
        for (let b = hitBlocks; b < full; b++) pool.cacheBlock(seq.blocks[b] as number, seq.blockHashes[b] as number);
      }
      seq.status = 'running';
      if (seq.firstAdmittedMs === null) {
        seq.firstAdmittedMs = now;
        seq.cachedTokens = hitBlocks * B;
      }
      seq.numComputed = seq.promptLen;
      this.#running.add(seq);
      if (seq.lora !== null) this.#loraSlots.acquire(seq.lora);
      metrics.onAdmitted(seq, seq.promptLen, hitBlocks * B);
      this.#arm(seq, now + this.#ttftMs(seq, hitBlocks * B));
    }
    this.#publishState();
  }

  #loadFactor(): number {
    const { maxNumSeqs, timeFactorUnderLoad } = this.#deps.options;
    if (maxNumSeqs <= 1) return 1;
    return 1 + ((timeFactorUnderLoad - 1) * (this.#running.size - 1)) / (maxNumSeqs - 1);
  }

  /** TTFT of an admission (after a preemption: the time to the next token) with `hitTokens` of the prompt cached. */
  #ttftMs(seq: Sequence, hitTokens: number): number {
    const o = this.#deps.options;
    const f = this.#loadFactor();
    let ttft: number;
    if (o.latencyCalculator === 'constant') {
      ttft = f * this.#jitter(o.ttftMs, o.ttftStdDevMs);
    } else {
      const mean = o.prefillOverheadMs + (seq.promptLen - hitTokens) * o.prefillTimePerTokenMs;
      ttft = f * this.#jitter(mean, o.prefillTimeStdDevMs);
    }
    ttft *= o.speedFactor;
    if (seq.ttftSpike !== null && seq.deliveredTokens === 0) ttft = ttft * seq.ttftSpike.factor + seq.ttftSpike.extraMs;
    return ttft;
  }

  /**
   * The llm-d sim's `RandomNormDuration`: mean and std-dev truncated to whole ms, a normal sample clamped to
   * [0.3, 1.7] × mean, truncated to whole ms.
   */
  #jitter(meanMs: number, stdDevMs: number): number {
    const mean = Math.trunc(meanMs);
    const sd = Math.trunc(stdDevMs);
    if (sd <= 0) return mean;
    const sample = mean + sd * this.#deps.rng.normal();
    return Math.trunc(Math.min(1.7 * mean, Math.max(0.3 * mean, sample)));
  }

  #arm(seq: Sequence, atMs: number): void {
    const timer = this.#deps.clock.setTimer(atMs, () => this.#onTokenDue(seq, atMs));
    this.#timers.set(seq, timer);
  }

  #onTokenDue(seq: Sequence, dueMs: number): void {
    this.#timers.delete(seq);
    if (seq.status !== 'running') return;
    if (this.#stalledUntilMs > dueMs) {
      this.#arm(seq, this.#stalledUntilMs);
      return;
    }
    const { metrics, pool, options: o } = this.#deps;
    seq.appendOutputToken(pool.blockSize);
    const index = seq.deliveredTokens++;
    if (index === 0) {
      seq.firstTokenMs = dueMs;
      metrics.onFirstToken(seq, dueMs);
    } else {
      metrics.onNextToken(seq, dueMs - (seq.lastTokenMs ?? dueMs));
    }
    seq.lastTokenMs = dueMs;
    seq.observer.onToken(index, dueMs);
    if (seq.status !== 'running') return; // aborted by the observer
    if (seq.generated >= seq.targetTokens) {
      this.#finish(seq, seq.finishReasonAtTarget, dueMs);
      return;
    }
    const itl = this.#loadFactor() * this.#jitter(o.interTokenLatencyMs, o.interTokenLatencyStdDevMs) * o.speedFactor;
    this.#arm(seq, dueMs + itl);
  }

  #finish(seq: Sequence, reason: FinishReason, atMs: number): void {
    this.#timers.get(seq)?.cancel();
    this.#timers.delete(seq);
    this.#running.delete(seq);
    this.#deps.pool.release(seq.blocks);
    seq.blocks = [];
    if (seq.lora !== null) this.#loraSlots.release(seq.lora);
    seq.status = 'finished';
    this.#deps.metrics.onFinished(seq, reason, atMs);
    seq.observer.onFinish(seq, reason);
    this.#deps.kvEvents.flush(this.#deps.clock.unixNowMs());
    this.#publishState();
    if (this.#waiting.length > 0) this.#scheduleDispatch();
  }

  #publishState(): void {
    this.#deps.metrics.onSchedulerState(this.state());
  }
}
