/** Test doubles shared by every suite: a recording logger and a clock that only moves when told. */
import type { Clock, Logger } from '../../src/framework/plugin.ts';
import type { Ticker, TickerHandle } from '../../src/datalayer/ticker.ts';

export interface LogEntry {
  readonly level: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  readonly msg: string;
  /** The object argument merged over the logger's bindings (`{}` for message-only calls without bindings). */
  readonly obj: Record<string, unknown>;
}

/** A Logger that records every call, all levels enabled; children share the record and add their bindings. */
export class RecordingLogger implements Logger {
  readonly entries: LogEntry[];
  readonly #bindings: Record<string, unknown>;
  constructor(entries: LogEntry[] = [], bindings: Record<string, unknown> = {}) {
    this.entries = entries;
    this.#bindings = bindings;
  }
  #log(level: LogEntry['level'], a: object | string, b?: string): void {
    if (typeof a === 'string') this.entries.push({ level, msg: a, obj: { ...this.#bindings } });
    else this.entries.push({ level, msg: b ?? '', obj: { ...this.#bindings, ...(a as Record<string, unknown>) } });
  }
  error(a: object | string, b?: string): void {
    this.#log('error', a, b);
  }
  warn(a: object | string, b?: string): void {
    this.#log('warn', a, b);
  }
  info(a: object | string, b?: string): void {
    this.#log('info', a, b);
  }
  debug(a: object | string, b?: string): void {
    this.#log('debug', a, b);
  }
  trace(a: object | string, b?: string): void {
    this.#log('trace', a, b);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.entries, { ...this.#bindings, ...bindings });
  }
  isLevelEnabled(): boolean {
    return true;
  }
  /** Entries at `level` whose message contains `text`. */
  count(level: LogEntry['level'], text: string): number {
    return this.entries.filter((e) => e.level === level && e.msg.includes(text)).length;
  }
  /** Messages logged at `level`, each followed by its object as JSON when it has one. */
  messages(level: LogEntry['level']): string[] {
    return this.entries
      .filter((e) => e.level === level)
      .map((e) => (Object.keys(e.obj).length === 0 ? e.msg : `${e.msg} ${JSON.stringify(e.obj)}`));
  }
}

/** A clock that only moves when told. */
export class ManualClock implements Clock {
  #nowMs: number;
  constructor(startMs = 1_700_000_000_000) {
    this.#nowMs = startMs;
  }
  now(): number {
    return this.#nowMs;
  }
  advance(ms: number): void {
    this.#nowMs += ms;
  }
}

/**
 * Test ticker: nothing happens until `tick()`, which runs every registered callback once (in registration
 * order) and resolves when the promises they returned have settled.
 */
export class ManualTicker implements Ticker {
  readonly #callbacks = new Set<() => unknown>();
  /** Intervals requested so far, in registration order (for assertions). */
  readonly intervals: number[] = [];

  every(intervalMs: number, onTick: () => unknown): TickerHandle {
    const cb = (): unknown => onTick();
    this.#callbacks.add(cb);
    this.intervals.push(intervalMs);
    return { stop: () => this.#callbacks.delete(cb) };
  }

  /** Number of live registrations. */
  get size(): number {
    return this.#callbacks.size;
  }

  async tick(): Promise<void> {
    const results = [...this.#callbacks].map((cb) => cb());
    await Promise.allSettled(results);
  }
}
