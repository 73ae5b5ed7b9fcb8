// Duration strings of the simulator's options: "250us", "12ms", "1.5s", "2m", "1h", or a bare number of milliseconds.

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(us|µs|ms|s|m|h)?\s*$/;

/** Parses a non-negative duration and returns it in milliseconds. Throws a RangeError naming `what` when invalid. */
export function parseDurationMs(value: string | number, what = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${what}: expected a non-negative duration, got ${value}`);
    return value;
  }
  const match = PATTERN.exec(value);
  if (match === null) throw new RangeError(`${what}: cannot parse duration "${value}" (use e.g. 250us, 12ms, 1.5s)`);
  const amount = Number(match[1]);
  const unit = match[2] ?? 'ms';
  return amount * (UNIT_MS[unit] ?? 1);
}

/** Formats milliseconds the way the options are written (for help texts and /admin/config). */
export function formatDurationMs(ms: number): string {
  if (ms !== 0 && ms < 1) return `${Math.round(ms * 1000)}us`;
  if (ms >= 1000 && ms % 100 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
