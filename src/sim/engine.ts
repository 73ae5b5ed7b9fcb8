// Contract shared by the two latency models (the iteration-level `StepEngine` and the llm-d-style `LlmdEngine`).

import type { BlockPool } from './block-pool.ts';
import type { SimClock } from './clock.ts';
import type { SimServerOptions } from './config.ts';
import type { KvEventHub } from './kv-events.ts';
import type { RandomSource } from './rng.ts';
import type { FinishReason, Sequence } from './sequence.ts';

/** Engine-side observations, in simulated milliseconds. Implemented by `ServerMetrics`. */
export interface EngineMetrics {
  /** A sequence was admitted to the running batch (every admission, re-admissions after preemption included). */
  onAdmitted(seq: Sequence, queriedTokens: number, hitTokens: number): void;
  /** The first token of `seq` reached the client-facing observer at `atMs`. */
  onFirstToken(seq: Sequence, atMs: number): void;
  /** A later token was delivered `gapMs` after the previous one. */
  onNextToken(seq: Sequence, gapMs: number): void;
  onPreemption(seq: Sequence): void;
  /** One engine step took `durationMs` and processed `tokens` tokens. */
  onStep(durationMs: number, tokens: number): void;
  onFinished(seq: Sequence, reason: FinishReason, atMs: number): void;
  /** Scheduler state after a step or an arrival. */
  onSchedulerState(state: SchedulerState): void;
}

export interface SchedulerState {
  readonly running: number;
  readonly waiting: number;
  /** Pinned KV blocks / total, 0..1. */
  readonly kvUsage: number;
  /** Adapters of running requests (distinct, admission order). */
  readonly runningLoras: readonly string[];
  /** Adapters of waiting requests (distinct, queue order). */
  readonly waitingLoras: readonly string[];
}

/** What an engine is built from. `options` is the server's live options object: runtime knobs are re-read. */
export interface EngineDeps {
  readonly clock: SimClock;
  readonly rng: RandomSource;
  readonly pool: BlockPool;
  readonly options: Readonly<SimServerOptions>;
  readonly metrics: EngineMetrics;
  readonly kvEvents: KvEventHub;
}

export interface Engine {
  /** Queues a new sequence (admission checks such as the queue bound are the caller's). Never calls back synchronously. */
  submit(seq: Sequence): void;
  /**
   * Removes a sequence wherever it is and frees its blocks; counts it as finished with reason `abort` and calls
   * its observer's `onFinish` once. No-op for a finished sequence.
   */
  abort(seq: Sequence): void;
  /**
   * Preempts every running sequence, as vLLM's `reset_prefix_cache(reset_running_requests=True)` does: frees their
   * blocks (hashed ones stay cached until the caller clears them; no KV event), resets their progress and puts them
   * back at the front of the waiting queue in admission order, to recompute. Each counts one preemption. Work of a
   * step in flight is discarded for them. Afterwards no sequence holds a block. Returns how many were preempted.
   */
  preemptAll(): number;
  /** Stops stepping for `durationMs` from now (a stall fault); overlapping stalls extend to the latest end. */
  stallFor(durationMs: number): void;
  /** Current scheduler state (same values the gauges show). */
  state(): SchedulerState;
  /** Aborts every sequence and cancels every timer. The engine accepts nothing afterwards. */
  close(): void;
}

/** Distinct values of `items.map(key)`, dropping nulls, in first-seen order. */
export function distinctLoras(items: Iterable<Sequence>): string[] {
  const seen = new Set<string>();
  for (const s of items) if (s.lora !== null) seen.add(s.lora);
  return [...seen];
}
