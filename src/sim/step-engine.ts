// Iteration-level engine modelled on vLLM V1's scheduler (sim-spec §2.2): continuous batching, chunked prefill
// under a per-step token budget, FCFS admission with head-of-line blocking on KV blocks, recompute preemption of
// the most recently admitted request, automatic prefix caching (§3.2).
//
// Timing: a step is planned at its start (work → duration) and completed by one timer at `start + duration`.
// The next step starts at the previous *planned* end, not at the time the timer actually fired, so timer
// lateness delays delivery but never accumulates into simulated latency.

import { distinctLoras } from './engine.ts';
import type { Engine, EngineDeps, SchedulerState } from './engine.ts';
import type { BlockStoredEvent } from './kv-events.ts';
import { LoraSlots } from './lora-slots.ts';
import type { FinishReason, Sequence } from './sequence.ts';
import { stepDurationMs } from './step-cost.ts';
import type { TimerHandle } from './clock.ts';

export class StepEngine implements Engine {
  readonly #deps: EngineDeps;
  readonly #waiting: Sequence[] = [];
  /** Running sequences in admission order (the last one is the preemption victim). */
  readonly #running: Sequence[] = [];
  readonly #loraSlots = new LoraSlots();
  /** The pending timer that starts or completes a step; null while idle. */
  #timer: TimerHandle | null = null;
  readonly #holdTimers = new Set<TimerHandle>();
  #stalledUntilMs = Number.NEGATIVE_INFINITY;
  #nextPeriodicStallMs: number | null = null;
  #closed = false;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
    deps.pool.onEvict = (hash) => deps.kvEvents.push({ type: 'BlockRemoved', block_hashes: [hash], medium: 'GPU' });
  }

  submit(seq: Sequence): void {
    if (this.#closed) throw new Error('StepEngine: submit after close');
    seq.status = 'waiting';
    this.#waiting.push(seq);
    this.#publishState();
    this.#wake(this.#deps.clock.nowMs());
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
    this.#publishState();
  }

  preemptAll(): number {
    const n = this.#running.length;
    // Last admitted first, each to the front of waiting: the queue then resumes in admission order.
    while (this.#running.length > 0) this.#preempt(this.#running[this.#running.length - 1] as Sequence);
    this.#publishState();
    this.#wake(this.#deps.clock.nowMs()); // no-op while a step is in flight: its end re-plans
    return n;
  }

  stallFor(durationMs: number): void {
    const until = this.#deps.clock.nowMs() + durationMs;
    if (until > this.#stalledUntilMs) this.#stalledUntilMs = until;
  }

  state(): SchedulerState {
    return {
      running: this.#running.length,
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
    this.#timer?.cancel();
    this.#timer = null;
    for (const t of this.#holdTimers) t.cancel();
    this.#holdTimers.clear();
  }

  /** Starts stepping at `atMs` unless a step is already planned. */
  #wake(atMs: number): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = this.#deps.clock.setTimer(atMs, () => {
      this.#timer = null;
      this.#runStep(atMs);
    });
  }

  /** Plans one step starting at `startMs` and arms the timer that completes it. */
  #runStep(startMs: number): void {
    const { clock, rng, pool, options: o, metrics } = this.#deps;
    if (this.#running.length === 0 && this.#waiting.length === 0) return;

    this.#maybeStartPeriodicStall(startMs);
    if (this.#stalledUntilMs > startMs) {
      const resumeMs = this.#stalledUntilMs;
      this.#timer = clock.setTimer(resumeMs, () => {
        this.#timer = null;
        this.#runStep(resumeMs);
      });
      return;
    }

    const B = pool.blockSize;
    let budget = o.maxNumBatchedTokens;
    const scheduled: Sequence[] = [];
    const tokens: number[] = [];
    let prefillTokens = 0;
    let decodeTokens = 0;
    let decodeContextTokens = 0;
    let preempted = false;

    // 1. Running sequences, admission order.
    for (let i = 0; i < this.#running.length && budget > 0; i++) {
      const seq = this.#running[i] as Sequence;
      if (seq.holdUntilMs !== null) continue;
      const n = Math.min(seq.numTokens - seq.numComputed, budget);
      const need = Math.ceil((seq.numComputed + n) / B) - seq.blocks.length;
      let selfPreempted = false;
      while (need > 0 && !pool.allocate(need, seq.blocks)) {
        const victim = this.#running[this.#running.length - 1] as Sequence;
        this.#preempt(victim);
        preempted = true;
        if (victim === seq) {
          selfPreempted = true;
          break;
        }
      }
      if (selfPreempted) break;
      const isDecode = seq.generated > 0 && seq.numComputed === seq.numTokens - 1;
      if (isDecode) {
        decodeTokens += 1;
        decodeContextTokens += seq.numTokens;
      } else {
        prefillTokens += n;
      }
      scheduled.push(seq);
      tokens.push(n);
      budget -= n;
    }

    // 2. Waiting sequences, FCFS; none after a preemption in this step (as vLLM).
    let idx = 0;
    while (!preempted && budget > 0 && idx < this.#waiting.length && this.#running.length < o.maxNumSeqs) {
      const seq = this.#waiting[idx] as Sequence;
      const blocked = seq.lora !== null && !this.#loraSlots.canRun(seq.lora, o.maxLoras);
      if (blocked || seq.holdUntilMs !== null) {
        idx++;
        continue;
      }
      const maxHitBlocks = Math.floor((seq.numTokens - 1) / B);
      const hitBlocks = o.enablePrefixCaching ? pool.lookup(seq.blockHashes, maxHitBlocks) : 0;
      const hitTokens = hitBlocks * B;
      const n = Math.min(seq.numTokens - hitTokens, budget);
      const newBlocks = Math.ceil((hitTokens + n) / B) - hitBlocks;
      if (newBlocks + pool.idleHits(seq.blockHashes, hitBlocks) > pool.numFreeBlocks) break; // head-of-line
      pool.acquireHits(seq.blockHashes, hitBlocks, seq.blocks);
      pool.allocate(newBlocks, seq.blocks);
      seq.numComputed = hitTokens;
      seq.numBlocksCached = hitBlocks;
      this.#waiting.splice(idx, 1);
      this.#running.push(seq);
      seq.status = 'running';
      if (seq.lora !== null) this.#loraSlots.acquire(seq.lora);
      if (seq.firstAdmittedMs === null) {
        seq.firstAdmittedMs = startMs;
        seq.cachedTokens = hitTokens;
      }
      metrics.onAdmitted(seq, seq.numTokens, hitTokens);
      scheduled.push(seq);
      tokens.push(n);
      prefillTokens += n;
      budget -= n;
    }

    if (scheduled.length === 0) {
      // Only held sequences (TTFT spike) or nothing admissible: idle until a hold ends or a request arrives.
      this.#publishState();
      return;
    }
    this.#publishState(); // vLLM refreshes scheduler gauges once the step's batch is formed
    const durationMs = stepDurationMs({ decodeTokens, prefillTokens, decodeContextTokens }, o, rng);
    const endMs = startMs + durationMs;
    this.#timer = clock.setTimer(endMs, () => {
      this.#timer = null;
      this.#completeStep(scheduled, tokens, endMs);
      metrics.onStep(durationMs, prefillTokens + decodeTokens);
      this.#runStep(endMs);
    });
  }

  #completeStep(scheduled: readonly Sequence[], tokens: readonly number[], endMs: number): void {
    const { pool, options: o, kvEvents } = this.#deps;
    const B = pool.blockSize;
    for (let i = 0; i < scheduled.length; i++) {
      const seq = scheduled[i] as Sequence;
      if (seq.status !== 'running') continue; // aborted or preempted meanwhile
      seq.numComputed += tokens[i] as number;
      if (o.enablePrefixCaching) this.#cacheFullBlocks(seq, B, o.cacheOutputBlocks);
      if (seq.numComputed < seq.numTokens) continue; // prefill chunk, no token sampled
      seq.appendOutputToken(B);
      const index = seq.generated - 1;
      if (index === 0 && seq.ttftSpike !== null) {
        this.#holdFirstToken(seq, endMs);
        continue;
      }
      if (seq.deliveredTokens === index) this.#deliver(seq, endMs);
      if (seq.generated >= seq.targetTokens) this.#finish(seq, seq.finishReasonAtTarget, endMs);
    }
    kvEvents.flush(this.#deps.clock.unixNowMs());
    this.#publishState();
  }

  /** Offers newly full blocks to the prefix cache and queues one BlockStored event for them. */
  #cacheFullBlocks(seq: Sequence, B: number, cacheOutput: boolean): void {
    const { pool, kvEvents } = this.#deps;
    const promptBlocks = Math.floor(seq.promptLen / B);
    const limit = Math.min(Math.floor(seq.numComputed / B), cacheOutput ? seq.blockHashes.length : promptBlocks);
    let event: { hashes: number[]; tokens: number[]; first: number; extra: (string[] | null)[] } | null = null;
    for (let b = seq.numBlocksCached; b < limit; b++) {
      const hash = seq.blockHashes[b] as number;
      const tokens = seq.blockTokenIds(b, B);
      const extra = seq.extraKeys(b);
      const parent = b === 0 ? null : (seq.blockHashes[b - 1] as number);
      if (pool.cacheBlock(seq.blocks[b] as number, hash, { parent, tokenIds: tokens, loraName: seq.lora, extraKeys: extra })) {
        if (!kvEvents.active) continue;
        // A block already cached by another copy breaks the run: the next stored block starts a new event.
        if (event !== null && event.first + event.hashes.length !== b) {
          this.#pushStored(seq, event, B);
          event = null;
        }
        event ??= { hashes: [], tokens: [], first: b, extra: [] };
        event.hashes.push(hash);
        event.extra.push(extra);
        for (const t of tokens) event.tokens.push(t);
      }
    }
    if (limit > seq.numBlocksCached) seq.numBlocksCached = limit;
    if (event !== null) this.#pushStored(seq, event, B);
  }

  #pushStored(seq: Sequence, event: { hashes: number[]; tokens: number[]; first: number; extra: (string[] | null)[] }, B: number): void {
    const stored: BlockStoredEvent = {
      type: 'BlockStored',
      block_hashes: event.hashes,
      parent_block_hash: event.first === 0 ? null : (seq.blockHashes[event.first - 1] as number),
      token_ids: event.tokens,
      block_size: B,
      lora_name: seq.lora,
      medium: 'GPU',
      extra_keys: event.extra,
    };
    this.#deps.kvEvents.push(stored);
  }

  #deliver(seq: Sequence, atMs: number): void {
    const index = seq.deliveredTokens;
    seq.deliveredTokens++;
    if (index === 0) {
      seq.firstTokenMs = atMs;
      this.#deps.metrics.onFirstToken(seq, atMs);
    } else {
      this.#deps.metrics.onNextToken(seq, atMs - (seq.lastTokenMs ?? atMs));
    }
    seq.lastTokenMs = atMs;
    seq.observer.onToken(index, atMs);
  }

  /** TTFT-spike fault: the sampled first token is delivered later; the sequence keeps its slot meanwhile. */
  #holdFirstToken(seq: Sequence, sampledMs: number): void {
    const spike = seq.ttftSpike;
    if (spike === null) return;
    const ttftMs = sampledMs - seq.arrivalMs;
    const releaseMs = sampledMs + (spike.factor - 1) * ttftMs + spike.extraMs;
    seq.holdUntilMs = releaseMs;
    const timer = this.#deps.clock.setTimer(releaseMs, () => {
      this.#holdTimers.delete(timer);
      if (seq.status === 'finished') return;
      seq.holdUntilMs = null;
      this.#deliver(seq, releaseMs);
      if (seq.generated >= seq.targetTokens) this.#finish(seq, seq.finishReasonAtTarget, releaseMs);
      this.#publishState();
      this.#wake(releaseMs);
    });
    this.#holdTimers.add(timer);
  }

  /** Recompute preemption: frees the blocks (they stay cached if hashed) and requeues at the front. */
  #preempt(seq: Sequence): void {
    const i = this.#running.lastIndexOf(seq);
    if (i >= 0) this.#running.splice(i, 1);
    this.#deps.pool.release(seq.blocks);
    seq.blocks = [];
    seq.numComputed = 0;
    seq.numBlocksCached = 0;
    seq.preemptions++;
    if (seq.lora !== null) this.#loraSlots.release(seq.lora);
    seq.status = 'waiting';
    this.#waiting.unshift(seq);
    this.#deps.metrics.onPreemption(seq);
  }

  #finish(seq: Sequence, reason: FinishReason, atMs: number): void {
    // A held sequence preempted by `preemptAll` waits for its held first token, which may be its last.
    const wasRunning = seq.status === 'running';
    const queue = wasRunning ? this.#running : this.#waiting;
    const i = queue.indexOf(seq);
    if (i >= 0) queue.splice(i, 1);
    this.#deps.pool.release(seq.blocks);
    seq.blocks = [];
    if (wasRunning && seq.lora !== null) this.#loraSlots.release(seq.lora);
    seq.status = 'finished';
    this.#deps.metrics.onFinished(seq, reason, atMs);
    seq.observer.onFinish(seq, reason);
  }

  #maybeStartPeriodicStall(nowMs: number): void {
    const { stallEveryMs, stallDurationMs } = this.#deps.options;
    if (stallEveryMs <= 0 || stallDurationMs <= 0) {
      this.#nextPeriodicStallMs = null;
      return;
    }
    this.#nextPeriodicStallMs ??= nowMs + stallEveryMs;
    if (nowMs >= this.#nextPeriodicStallMs) {
      this.#stalledUntilMs = Math.max(this.#stalledUntilMs, nowMs + stallDurationMs);
      this.#nextPeriodicStallMs = nowMs + stallDurationMs + stallEveryMs;
    }
  }

  #publishState(): void {
    this.#deps.metrics.onSchedulerState(this.state());
  }
}
