// Duration of one engine step of the iteration-level model (sim-spec §2.2 step 4).

import type { SimServerOptions } from './config.ts';
import type { RandomSource } from './rng.ts';

/** Work scheduled in one step. */
export interface StepWork {
  /** Decode tokens (one per decoding sequence). */
  readonly decodeTokens: number;
  /** Prompt (or recompute) tokens. */
  readonly prefillTokens: number;
  /** Total context length of the decoding sequences. */
  readonly decodeContextTokens: number;
}

/**
 * `(overhead + perSeq × D + perPrefillToken × P + kvRead × K / 1000) × speedFactor × max(0.5, 1 + N(0, jitter))`,
 * in simulated ms. Draws one normal sample from `rng` when `stepJitter > 0`.
 */
export function stepDurationMs(work: StepWork, o: Readonly<SimServerOptions>, rng: RandomSource): number {
  const base =
    o.stepOverheadMs +
    o.decodeTimePerSeqMs * work.decodeTokens +
    o.prefillTimePerTokenMs * work.prefillTokens +
    (o.kvReadTimePer1kTokensMs * work.decodeContextTokens) / 1000;
  const jitter = o.stepJitter > 0 ? Math.max(0.5, 1 + o.stepJitter * rng.normal()) : 1;
  return base * o.speedFactor * jitter;
}
