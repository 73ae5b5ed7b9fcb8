/**
 * Logger factory. pino writes JSON lines to stdout. Upstream's verbosity (`-v`, `--v`) maps to pino levels:
 * 0–2 (DEFAULT) → info, 3 (VERBOSE) and 4 (DEBUG) → debug, 5+ (TRACE) → trace. `EPP_LOG_LEVEL` (a pino level
 * name, e.g. `silent`) overrides the flag; the test runner sets it to keep test output clean.
 * Nothing is logged per response chunk at the default level.
 */
import { pino } from 'pino';
import type { Logger } from '../framework/plugin.ts';

export function levelForVerbosity(v: number): 'info' | 'debug' | 'trace' {
  if (v >= 5) return 'trace';
  if (v >= 3) return 'debug';
  return 'info';
}

/** `level` (a pino level name) wins over `verbosity`; `EPP_LOG_LEVEL` wins over both. */
export function createLogger(options: { verbosity?: number; level?: string; name?: string } = {}): Logger {
  const level = process.env.EPP_LOG_LEVEL ?? options.level ?? levelForVerbosity(options.verbosity ?? 2);
  return pino({ name: options.name ?? 'epp', level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything (for tests and benchmarks that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
