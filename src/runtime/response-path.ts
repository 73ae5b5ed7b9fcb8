/**
 * The response path's settings (`--response-hook-timeout`, `--response-queue-limit`, `--response-queue-overflow`,
 * `--response-chunk-hooks`) and what every response stream shares with the others (response-stream.ts).
 */
import type { Logger } from '../framework/plugin.ts';
import type { ResponseChunkHook, ResponseCompleteHook, ResponseHeadersHook } from '../framework/requestcontrol.ts';
import type { EppMetrics } from '../observability/metrics.ts';
import { DEFAULT_RESPONSE_CHUNK_HOOKS, DEFAULT_RESPONSE_HOOK_TIMEOUT_MS, DEFAULT_RESPONSE_QUEUE_LIMIT, DEFAULT_RESPONSE_QUEUE_OVERFLOW } from './defaults.ts';
import type { HookRunner } from './hook-runner.ts';

export type OverflowPolicy = 'drop' | 'block';
export type ChunkHookMode = 'async' | 'inline';

export interface ResponsePathOptions {
  /** Timeout for one async response hook call. */
  readonly hookTimeoutMs: number;
  /** Maximum pending chunk-hook work items per stream. */
  readonly queueLimit: number;
  readonly overflowPolicy: OverflowPolicy;
  /** `async` (default): intermediate chunk hooks run off the critical path. `inline`: the reply waits for them. */
  readonly chunkHookMode: ChunkHookMode;
}

export const DEFAULT_RESPONSE_PATH_OPTIONS: ResponsePathOptions = Object.freeze({
  hookTimeoutMs: DEFAULT_RESPONSE_HOOK_TIMEOUT_MS,
  queueLimit: DEFAULT_RESPONSE_QUEUE_LIMIT,
  overflowPolicy: DEFAULT_RESPONSE_QUEUE_OVERFLOW,
  chunkHookMode: DEFAULT_RESPONSE_CHUNK_HOOKS,
});

export interface ResponseHooks {
  readonly headers: readonly ResponseHeadersHook[] | null;
  readonly chunk: readonly ResponseChunkHook[] | null;
  readonly complete: readonly ResponseCompleteHook[] | null;
}

/** What a response stream needs from its surroundings. One per process (shared by all streams). */
export interface ResponsePathContext {
  readonly hooks: ResponseHooks;
  readonly options: ResponsePathOptions;
  readonly metrics: EppMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  /** Runs the hooks (shared with the request path: one timer wheel, per-plugin metrics). */
  readonly runner: HookRunner;
}
