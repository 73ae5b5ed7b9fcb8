// One generation request (one choice) as the engines see it: its tokens, KV blocks, progress and timestamps.
// Times are simulated milliseconds; token counts are simulated tokens.

import { chainHash } from './block-hash.ts';
import type { OutputText } from './output-text.ts';

export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

/** What an engine reports back for one sequence. */
export interface SequenceObserver {
  /** Called once per generated token, in order (index 0 = first token), at simulated time `atMs`. */
  onToken(index: number, atMs: number): void;
  /** Called exactly once, after the last `onToken`, also when the sequence is aborted (reason `abort`). */
  onFinish(sequence: Sequence, reason: FinishReason, error?: { status: number; message: string }): void;
}

/** A TTFT spike drawn by fault injection: the first token is held back by `(factor − 1) × ttft + extraMs`. */
export interface TtftSpike {
  readonly factor: number;
  readonly extraMs: number;
}

export interface SequenceInit {
  readonly id: string;
  readonly arrivalMs: number;
  readonly promptTokenIds: ArrayLike<number>;
  /** Hashes of the prompt's full blocks under this request's chain root. */
  readonly promptBlockHashes: number[];
  /** Chain root (model or LoRA namespace); needed to hash output blocks. */
  readonly rootHash: number;
  readonly lora: string | null;
  /** The request's `cache_salt` (part of block 0's extra keys), null when none. */
  readonly cacheSalt?: string | null;
  /** Tokens to generate before finishing with `finishReasonAtTarget`. */
  readonly targetTokens: number;
  readonly finishReasonAtTarget: 'stop' | 'length';
  readonly output: OutputText;
  /** The request's `max_tokens`, for `vllm:request_params_max_tokens` (undefined when absent). */
  readonly maxTokensParam: number | undefined;
  /** The request's `n`, for `vllm:request_params_n`. */
  readonly nParam: number;
  readonly ttftSpike: TtftSpike | null;
  readonly observer: SequenceObserver;
}

export class Sequence {
  readonly id: string;
  readonly arrivalMs: number;
  readonly promptTokenIds: ArrayLike<number>;
  readonly promptLen: number;
  readonly rootHash: number;
  readonly lora: string | null;
  readonly cacheSalt: string | null;
  readonly targetTokens: number;
  readonly finishReasonAtTarget: 'stop' | 'length';
  readonly output: OutputText;
  readonly maxTokensParam: number | undefined;
  readonly nParam: number;
  readonly ttftSpike: TtftSpike | null;
  readonly observer: SequenceObserver;

  status: 'new' | 'waiting' | 'running' | 'finished' = 'new';
  /** Hashes of full blocks of prompt + output, in order; grows as output blocks fill. */
  readonly blockHashes: number[];
  /** Output token ids generated so far. */
  readonly outputTokenIds: number[] = [];
  /** KV blocks held, in token order. */
  blocks: number[] = [];
  /** Tokens whose KV is computed (or was found in the prefix cache). */
  numComputed = 0;
  /** Leading blocks already offered to the prefix cache. */
  numBlocksCached = 0;
  /** `cached_tokens` of the first admission. */
  cachedTokens = 0;
  preemptions = 0;
  firstAdmittedMs: number | null = null;
  firstTokenMs: number | null = null;
  lastTokenMs: number | null = null;
  /** While set, the first token has been sampled but is held back (TTFT spike) and the sequence does not decode. */
  holdUntilMs: number | null = null;
  /** Tokens handed to the observer so far. */
  deliveredTokens = 0;

  constructor(init: SequenceInit) {
    this.id = init.id;
    this.arrivalMs = init.arrivalMs;
    this.promptTokenIds = init.promptTokenIds;
    this.promptLen = init.promptTokenIds.length;
    this.blockHashes = init.promptBlockHashes;
    this.rootHash = init.rootHash;
    this.lora = init.lora;
    this.cacheSalt = init.cacheSalt ?? null;
    this.targetTokens = init.targetTokens;
    this.finishReasonAtTarget = init.finishReasonAtTarget;
    this.output = init.output;
    this.maxTokensParam = init.maxTokensParam;
    this.nParam = init.nParam;
    this.ttftSpike = init.ttftSpike;
    this.observer = init.observer;
  }

  get generated(): number {
    return this.outputTokenIds.length;
  }

  /** Prompt plus generated tokens. */
  get numTokens(): number {
    return this.promptLen + this.outputTokenIds.length;
  }

  tokenAt(i: number): number {
    return i < this.promptLen ? (this.promptTokenIds[i] as number) : (this.outputTokenIds[i - this.promptLen] as number);
  }

  /** Appends the next output token and hashes any block it completes. */
  appendOutputToken(blockSize: number): void {
    this.outputTokenIds.push(this.output.tokenId(this.outputTokenIds.length));
    const fullBlocks = Math.floor(this.numTokens / blockSize);
    while (this.blockHashes.length < fullBlocks) {
      const b = this.blockHashes.length;
      const parent = b === 0 ? this.rootHash : (this.blockHashes[b - 1] as number);
      const tokens = new Array<number>(blockSize);
      for (let i = 0; i < blockSize; i++) tokens[i] = this.tokenAt(b * blockSize + i);
      this.blockHashes.push(chainHash(parent, tokens, 0, blockSize));
    }
  }

  /** vLLM's extra keys of block `b`: the LoRA name, then the cache salt on block 0; null when none. */
  extraKeys(b: number): string[] | null {
    const keys: string[] = [];
    if (this.lora !== null) keys.push(this.lora);
    if (b === 0 && this.cacheSalt !== null) keys.push(this.cacheSalt);
    return keys.length === 0 ? null : keys;
  }

  /** Token ids of block `b` (must be full). */
  blockTokenIds(b: number, blockSize: number): number[] {
    const out = new Array<number>(blockSize);
    for (let i = 0; i < blockSize; i++) out[i] = this.tokenAt(b * blockSize + i);
    return out;
  }
}
