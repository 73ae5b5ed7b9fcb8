/**
 * Defaults of the server limits, declared once: `startEpp` applies them and the CLI shows them. A module of
 * constants only, so the CLI can read them without loading the servers (`epp --help` stays fast).
 */

/** `--shutdown-grace-period`: on SIGTERM, how long open requests may finish. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;
/** Upstream `--refresh-prometheus-metrics-interval`. */
export const DEFAULT_POOL_METRICS_REFRESH_MS = 5_000;
/** Upstream `--metrics-staleness-threshold`. */
export const DEFAULT_METRICS_STALENESS_MS = 2_000;
/** 32 MiB: far above any text prompt; with the in-flight budget below it fits the 1 GiB limit of docs/operations.md. */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 32 * 1024 * 1024;
/** ext_proc streams idle longer than this are ended (a model server may queue a request for minutes). */
export const DEFAULT_EXT_PROC_IDLE_TIMEOUT_MS = 10 * 60_000;
/**
 * 128 MiB = four maximum-size bodies at once: `npm run soak:hostile` peaked at 797 MiB RSS with six concurrent
 * 32 MiB bodies (four served, two answered 429), inside the 1 GiB limit of docs/operations.md.
 */
export const DEFAULT_MAX_REQUEST_BODY_BYTES_IN_FLIGHT = 128 * 1024 * 1024;
