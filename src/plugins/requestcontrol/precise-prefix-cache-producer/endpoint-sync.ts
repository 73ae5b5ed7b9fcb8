/**
 * One endpoint's event stream → index, with loss handling (design §5.5–5.6):
 *
 * - in order, seq +1 per batch: apply;
 * - a gap (`seq > last + 1`), a malformed batch, or joining mid-stream: REPLAYING — ask the engine's replay
 *   socket for the missing batches (live batches queue meanwhile), else fetch a full dump (`/kv_state`, the
 *   simulator's and Dynamo's approach), else DESYNCED;
 * - `seq < last` (engine restarted, seq restarts at 0): clear the endpoint, then recover from seq 0;
 * - DESYNCED: the endpoint's entries are dropped, live events keep being applied (what is stored from now on
 *   is exact, older chains are orphans), the producer scores it with the approximate fallback until a drift
 *   check passes (`markRecovered`) or a later recovery succeeds (retried after `retryCooldownMs`). Following
 *   an engine from seq 0 is a complete history, so a restart also ends DESYNCED;
 * - SILENT: the producer owes the endpoint events (`expectEvents`: it served a request that must have stored new
 *   blocks) and none arrived for `silenceMs` (`checkSilence`) — the publisher stopped, its socket is cut, the
 *   engine's `--kv-events-config` is missing, or every batch is lost. Entered from SYNCED or CONNECTING (the other
 *   phases are already untrusted or recovering); the entries are kept (the view before the silence is still the
 *   best guess of what the engine holds) but the producer scores the endpoint with the approximate fallback. The
 *   next batch ends it: the phase before the silence is restored and the batch is processed as usual, so lost
 *   batches show as a seq gap and go through replay → dump → DESYNCED.
 */
import type { Clock, Logger } from '../../../framework/plugin.ts';
import type { KvEventApplier } from './ingest.ts';
import type { KvBlockIndex } from './kv-block-index.ts';
import { KvEventDecodeError, decodeBatch, type DecodeStats, type KvEvent } from './kv-events.ts';
import type { EventTransport, RawMessage } from './zmq-transport.ts';

export type SyncPhase = 'CONNECTING' | 'SYNCED' | 'REPLAYING' | 'DESYNCED' | 'SILENT';

/** A full dump of an engine's cache (the simulator's `GET /kv_state`). */
export interface KvSnapshot {
  /** Last seq the dump includes. */
  readonly seq: bigint;
  readonly blockSize: number;
  /** BlockStored events, parents before children, one per copy. */
  readonly events: readonly KvEvent[];
}

export interface SyncCounters {
  batches: number;
  duplicates: number;
  gaps: number;
  restarts: number;
  malformed: number;
  replaysOk: number;
  replaysFailed: number;
  snapshotsOk: number;
  snapshotsFailed: number;
  desyncs: number;
  silences: number;
}

export function newSyncCounters(): SyncCounters {
  return { batches: 0, duplicates: 0, gaps: 0, restarts: 0, malformed: 0, replaysOk: 0, replaysFailed: 0, snapshotsOk: 0, snapshotsFailed: 0, desyncs: 0, silences: 0 };
}

export interface EndpointSyncDeps {
  readonly endpoint: string;
  readonly transport: EventTransport;
  readonly snapshot?: (() => Promise<KvSnapshot>) | undefined;
  readonly index: KvBlockIndex;
  readonly applier: KvEventApplier;
  readonly decodeStats: DecodeStats;
  readonly counters: SyncCounters;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Live batches queued while recovering; more means DESYNCED. */
  readonly maxPending: number;
  readonly retryCooldownMs: number;
  /** Called with the block size when an event's block size differs from ours. */
  readonly onBlockSizeMismatch: (endpoint: string, eventBlockSize: number) => void;
}

export class EndpointSync {
  readonly endpoint: string;
  phase: SyncPhase = 'CONNECTING';
  lastSeq: bigint | null = null;
  /** Why the endpoint is DESYNCED (for logs and tests). */
  reason = '';
  /** Live messages received (the silence check compares it before and after a request). */
  messages = 0;
  /** Resolves when no recovery is running (tests wait for quiescence on it). */
  idle: Promise<void> = Promise.resolve();
  readonly #d: EndpointSyncDeps;
  #pending: RawMessage[] = [];
  #lastAttemptMs = Number.NEGATIVE_INFINITY;
  #closed = false;
  /** When events were first owed and have not arrived since (undefined: nothing owed). */
  #owedSince: number | undefined;
  #phaseBeforeSilence: SyncPhase = 'SYNCED';

  constructor(deps: EndpointSyncDeps) {
    this.#d = deps;
    this.endpoint = deps.endpoint;
  }

  /** Starts receiving; recovers proactively from seq 0 when a replay socket or a dump is available. */
  start(): void {
    this.#d.transport.start(
      (m) => this.#onWire(m),
      (reason) => {
        this.#d.counters.malformed++;
        this.#d.logger.warn({ endpoint: this.endpoint, reason }, 'malformed KV event message; its batch counts as lost');
      },
    );
    if (this.#d.transport.replay !== undefined || this.#d.snapshot !== undefined) this.#recover(0n, 'initial sync');
  }

  close(): void {
    this.#closed = true;
    this.#d.transport.close();
  }

  /** The drift check passed: trust the index again. */
  markRecovered(): void {
    if (this.phase !== 'DESYNCED') return;
    this.#d.logger.info({ endpoint: this.endpoint }, 'KV index for endpoint back in sync (drift check passed)');
    this.phase = 'SYNCED';
    this.reason = '';
  }

  /** Predictions drifted from what the engine reports: drop the endpoint's entries and try to recover. */
  markDrifted(detail: string): void {
    if (this.phase === 'DESYNCED' || this.phase === 'REPLAYING') return;
    this.#desync(`prediction drift: ${detail}`);
    if (this.#canRetry()) this.#recover(this.lastSeq === null ? 0n : this.lastSeq + 1n, 'drift', true);
  }

  /**
   * A request routed when `messages` was `messagesAtRouting` has been served and stored new blocks, so the engine
   * published them (at scheduling, before it answered). If no message arrived since the routing, starts the
   * silence clock unless it is already running; any message from the endpoint stops it. (Counting messages, not
   * comparing times: events usually arrive before the response completes.)
   */
  expectEvents(now: number, messagesAtRouting: number): void {
    if (this.messages > messagesAtRouting) return;
    this.#owedSince ??= now;
  }

  /** Marks the endpoint SILENT when owed events are `silenceMs` overdue; true when it did. */
  checkSilence(now: number, silenceMs: number): boolean {
    const since = this.#owedSince;
    if (since === undefined || now - since < silenceMs) return false;
    if (this.phase !== 'SYNCED' && this.phase !== 'CONNECTING') return false;
    this.#phaseBeforeSilence = this.phase;
    this.phase = 'SILENT';
    this.reason = `no KV events for ${Math.round(now - since)} ms after serving requests that stored new blocks`;
    this.#d.counters.silences++;
    this.#d.logger.warn(
      { endpoint: this.endpoint, silentForMs: Math.round(now - since), lastSeq: this.lastSeq === null ? null : String(this.lastSeq) },
      this.#phaseBeforeSilence === 'CONNECTING'
        ? 'no KV event ever received from endpoint although it served requests: is the engine started with --kv-events-config and reachable? Scored by the approximate fallback until events arrive'
        : 'KV event stream of endpoint went SILENT (requests served, no events): scored by the approximate fallback until events resume',
    );
    return true;
  }

  #onWire(m: RawMessage): void {
    if (this.#closed) return;
    this.messages++;
    this.#owedSince = undefined;
    if (this.phase === 'SILENT') {
      this.phase = this.#phaseBeforeSilence;
      this.reason = '';
      this.#d.logger.info({ endpoint: this.endpoint, seq: String(m.seq) }, 'KV events from endpoint resumed after a silence');
    }
    if (this.phase === 'REPLAYING') {
      if (this.#pending.length >= this.#d.maxPending) {
        this.#d.logger.warn({ endpoint: this.endpoint }, 'too many live KV batches queued during recovery');
        this.#pending = [];
        this.#desync('live batches overflowed during recovery');
        return;
      }
      this.#pending.push(m);
      return;
    }
    this.#process(m);
  }

  #process(m: RawMessage): void {
    const d = this.#d;
    const last = this.lastSeq;
    if (last !== null) {
      if (m.seq === last) {
        d.counters.duplicates++;
        return;
      }
      if (m.seq < last) {
        d.counters.restarts++;
        d.logger.info({ endpoint: this.endpoint, seq: String(m.seq), lastSeq: String(last) }, 'KV event seq went back: engine restarted; clearing its entries');
        d.index.clear(this.endpoint);
        this.lastSeq = null;
        if (m.seq === 0n) {
          this.#applyLive(m);
          if (this.phase === 'DESYNCED') this.#resynced('following the restarted engine from seq 0');
          return;
        }
        this.#gap(0n, m, 'restart');
        return;
      }
      if (m.seq > last + 1n) {
        d.counters.gaps++;
        this.#gap(last + 1n, m, `gap: expected seq ${last + 1n}, got ${m.seq}`);
        return;
      }
    } else if (m.seq !== 0n && this.phase !== 'DESYNCED') {
      this.#gap(0n, m, 'joined mid-stream');
      return;
    }
    if (!this.#applyLive(m)) return;
    if (this.phase === 'CONNECTING') {
      this.phase = m.seq === 0n ? 'SYNCED' : this.phase;
    }
  }

  /** Decodes and applies one live batch; an undecodable batch is lost (recovered like a gap at its seq). */
  #applyLive(m: RawMessage): boolean {
    if (this.#decodeApply(m)) return true;
    this.#gap(m.seq, undefined, `undecodable batch ${m.seq}`);
    return false;
  }

  /** Decodes and applies one batch; false (counted, logged, nothing applied) when it cannot be decoded. */
  #decodeApply(m: RawMessage): boolean {
    const d = this.#d;
    let events: readonly KvEvent[];
    try {
      events = decodeBatch(m.topic, m.seq, m.payload, d.decodeStats).events;
    } catch (err) {
      if (!(err instanceof KvEventDecodeError)) throw err;
      d.counters.malformed++;
      d.logger.warn({ endpoint: this.endpoint, seq: String(m.seq), err: err.message }, 'undecodable KV event batch; treating it as lost');
      return false;
    }
    d.counters.batches++;
    if (!d.applier.apply(this.endpoint, events)) d.onBlockSizeMismatch(this.endpoint, d.applier.lastMismatchBlockSize);
    this.lastSeq = m.seq;
    // After AllBlocksCleared the engine's cache is exactly what follows: a DESYNCED endpoint is exact again.
    if (this.phase === 'DESYNCED' && events.some((e) => e.type === 'AllBlocksCleared')) this.#resynced('the engine cleared its cache');
    return true;
  }

  #gap(from: bigint, trigger: RawMessage | undefined, why: string): void {
    if (this.phase === 'DESYNCED' && !this.#canRetry()) {
      // Keep following the live stream: what is stored from now on is exact.
      if (trigger !== undefined) {
        this.#applyLive(trigger);
      }
      return;
    }
    this.#recover(from, why, false, trigger);
  }

  #canRetry(): boolean {
    return this.#d.clock.now() - this.#lastAttemptMs >= this.#d.retryCooldownMs;
  }

  #recover(from: bigint, why: string, alreadyDesynced = false, trigger?: RawMessage): void {
    const d = this.#d;
    this.#lastAttemptMs = d.clock.now();
    const wasDesynced = this.phase === 'DESYNCED' || alreadyDesynced;
    this.phase = 'REPLAYING';
    this.#pending = trigger === undefined ? [] : [trigger];
    d.logger.debug({ endpoint: this.endpoint, from: String(from), why }, 'recovering KV events');
    this.idle = this.#recoverAsync(from, why, wasDesynced);
  }

  async #recoverAsync(from: bigint, why: string, wasDesynced: boolean): Promise<void> {
    const d = this.#d;
    let ok = false;
    let failure = 'no replay socket and no dump configured';
    if (wasDesynced) {
      // The entries kept while DESYNCED are partial: only a complete history (from seq 0) or a dump is exact.
      d.index.clear(this.endpoint);
      this.lastSeq = null;
      from = 0n;
    }
    if (d.transport.replay !== undefined) {
      try {
        const msgs = await d.transport.replay(from);
        if (this.#closed) return;
        ok = this.#applyReplay(from, msgs);
        if (ok) d.counters.replaysOk++;
        else {
          d.counters.replaysFailed++;
          failure = `replay from ${from} incomplete (the engine's buffer no longer holds it)`;
        }
      } catch (err) {
        if (this.#closed) return;
        d.counters.replaysFailed++;
        failure = `replay from ${from} failed: ${(err as Error).message}`;
      }
    }
    if (!ok && d.snapshot !== undefined) {
      try {
        const snap = await d.snapshot();
        if (this.#closed) return;
        d.index.clear(this.endpoint);
        if (!d.applier.apply(this.endpoint, snap.events)) d.onBlockSizeMismatch(this.endpoint, snap.blockSize);
        this.lastSeq = snap.seq;
        d.counters.snapshotsOk++;
        ok = true;
      } catch (err) {
        if (this.#closed) return;
        d.counters.snapshotsFailed++;
        failure += `; dump failed: ${(err as Error).message}`;
      }
    }
    if (ok) ok = this.#drainPending();
    if (ok) {
      this.#resynced(why);
      return;
    }
    this.#desync(`${why}: ${failure}`);
    // Follow the live stream from the newest queued batch on.
    const pending = this.#pending;
    this.#pending = [];
    for (const m of pending) if (this.lastSeq === null || m.seq > this.lastSeq) this.#decodeApply(m);
  }

  /** Applies replayed batches; false if they do not continue from `from` without holes. */
  #applyReplay(from: bigint, msgs: readonly RawMessage[]): boolean {
    if (from === 0n && this.lastSeq !== null) return false;
    let expected = from;
    for (const m of msgs) {
      if (m.seq < expected) continue;
      if (m.seq !== expected) return false;
      if (!this.#decodeApply(m)) return false;
      expected = m.seq + 1n;
    }
    return true;
  }

  /** Applies live batches queued during recovery; false on a hole between the recovered state and them. */
  #drainPending(): boolean {
    const pending = this.#pending;
    this.#pending = [];
    for (let i = 0; i < pending.length; i++) {
      const m = pending[i] as RawMessage;
      if (this.lastSeq !== null && m.seq <= this.lastSeq) continue;
      if ((this.lastSeq === null ? 0n : this.lastSeq + 1n) !== m.seq) {
        this.#pending = pending.slice(i);
        return false;
      }
      if (!this.#decodeApply(m)) return false;
    }
    return true;
  }

  #resynced(why: string): void {
    if (this.phase !== 'SYNCED') this.#d.logger.info({ endpoint: this.endpoint, why }, 'KV index for endpoint in sync');
    this.phase = 'SYNCED';
    this.reason = '';
  }

  #desync(reason: string): void {
    const d = this.#d;
    if (this.phase !== 'DESYNCED') {
      d.counters.desyncs++;
      d.logger.warn({ endpoint: this.endpoint, reason }, 'KV index for endpoint DESYNCED: its entries are dropped and it is scored by the approximate producer until a drift check passes');
    }
    d.index.clear(this.endpoint);
    this.phase = 'DESYNCED';
    this.reason = reason;
  }
}
