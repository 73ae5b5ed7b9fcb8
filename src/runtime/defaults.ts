/**
 * Defaults of the response path, declared once: the runtime applies them (`DEFAULT_RESPONSE_PATH_OPTIONS` in
 * ./response-path.ts) and the CLI shows them. Constants only, so the CLI reads them without loading the engine.
 */

/** `--response-hook-timeout`: timeout of one async response hook call. */
export const DEFAULT_RESPONSE_HOOK_TIMEOUT_MS = 1000;
/** `--response-queue-limit`: pending chunk-hook work items per stream. */
export const DEFAULT_RESPONSE_QUEUE_LIMIT = 1024;
/** `--response-queue-overflow`: when a stream's queue is full, skip those chunks' hooks. */
export const DEFAULT_RESPONSE_QUEUE_OVERFLOW = 'drop';
/** `--response-chunk-hooks`: intermediate chunk hooks run off the critical path. */
export const DEFAULT_RESPONSE_CHUNK_HOOKS = 'async';
