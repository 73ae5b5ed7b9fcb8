// Number of tokens a request generates (sim-spec §2.4, the llm-d sim's "random" dataset rules).

import type { RandomSource } from './rng.ts';

export type GenerationMode = 'random' | 'echo' | 'fixed';

export interface OutputLength {
  readonly tokens: number;
  readonly finishReason: 'stop' | 'length';
}

/** Probabilities of the six buckets used when `max_tokens` is given; the last bucket is exactly `max_tokens`. */
const BUCKET_WEIGHTS = [0.2, 0.3, 0.2, 0.05, 0.1, 0.15] as const;
const WIDE_LIMIT = 120;
const NARROW_BUCKET = 20;

/**
 * @param maxTokens the request's limit, if any
 * @param ignoreEos generate exactly `maxTokens`
 * @param roomTokens tokens left in the context window after the prompt (≥ 1)
 */
export function sampleOutputLength(
  rng: RandomSource,
  mode: GenerationMode,
  maxTokens: number | undefined,
  ignoreEos: boolean,
  roomTokens: number,
): OutputLength {
  if (maxTokens !== undefined && (ignoreEos || mode === 'fixed')) return { tokens: maxTokens, finishReason: 'length' };
  if (maxTokens === undefined) {
    const high = Math.max(1, roomTokens);
    if (high - 1 < NARROW_BUCKET) return { tokens: 1 + rng.int(high), finishReason: 'stop' };
    for (;;) {
      const n = Math.round(40 + 20 * rng.normal());
      if (n >= 1 && n <= high) return { tokens: n, finishReason: n === high ? 'length' : 'stop' };
    }
  }
  const tokens = sampleBucketed(rng, maxTokens);
  return { tokens, finishReason: tokens === maxTokens ? 'length' : 'stop' };
}

function sampleBucketed(rng: RandomSource, max: number): number {
  if (max <= 1) return 1;
  let u = rng.next();
  let bucket = 0;
  for (; bucket < BUCKET_WEIGHTS.length - 1; bucket++) {
    u -= BUCKET_WEIGHTS[bucket] as number;
    if (u < 0) break;
  }
  if (bucket === BUCKET_WEIGHTS.length - 1) return max;
  const [low, high] = bucketRange(bucket, max);
  return low + rng.int(high - low + 1);
}

/** Inclusive token range of bucket 0..4 over [1, max − 1]. */
function bucketRange(bucket: number, max: number): [number, number] {
  if (max > WIDE_LIMIT) {
    switch (bucket) {
      case 0: return [1, 20];
      case 1: return [21, 40];
      case 2: return [41, 60];
      case 3: return [61, max - NARROW_BUCKET - 1];
      default: return [max - NARROW_BUCKET, max - 1];
    }
  }
  const span = max - 1;
  const low = 1 + Math.floor((bucket * span) / 5);
  const high = Math.max(low, Math.floor(((bucket + 1) * span) / 5));
  return [low, Math.min(high, max - 1)];
}
