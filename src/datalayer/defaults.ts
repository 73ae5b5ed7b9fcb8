/** Defaults of the data layer the CLI shows, declared once. Constants only (the CLI loads no data layer for --help). */

/** `--refresh-metrics-interval`: scrape interval per endpoint. */
export const DEFAULT_REFRESH_INTERVAL_MS = 50;
