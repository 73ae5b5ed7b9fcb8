/**
 * The response path of one scheduled request: header hooks, chunk hooks, completion.
 *
 * Guarantees (docs/lifecycle.md draws them):
 * 1. Header hooks run in config order and are awaited before the data plane answers the response headers.
 * 2. Intermediate chunk hooks go to this stream's FIFO and run in order, off the critical path: `onChunk`
 *    returns before they run (they start on a later turn of the event loop), so the chunk's reply leaves first.
 * 3. The final chunk (end of stream, trailers, or the end of a buffered response) waits for the FIFO to
 *    drain, then its own chunk hooks and the completion hooks run; the data plane sends the final reply after
 *    that, carrying `dynamicMetadata`.
 * 4. Completion hooks run exactly once, with an outcome, whatever happens (success, upstream error, abort,
 *    internal error), and after every chunk hook of the stream. Nothing runs after completion.
 * 5. All state lives on this object: nothing is keyed by `x-request-id`, so concurrent streams are independent.
 * 6. The FIFO is bounded (`queueLimit`). Overflow policy `drop` (default) skips the hooks of chunks that meet a
 *    full queue (they see a gap in `chunk.index`), `block` makes the chunk's reply wait for room. Both counted.
 * 7. A hook that throws or rejects is logged once per stream and plugin, and counted; a hook that outlives
 *    `hookTimeoutMs` is abandoned and counted; a chunk hook that timed out is skipped for the rest of this
 *    stream's chunks (so a hung plugin delays a stream's end by about one timeout), but its completion hook
 *    still runs, so it can release what it holds. The stream itself never fails because of a hook.
 *
 * JavaScript runs hooks on one thread: the FIFO takes a hook's *waiting* (I/O) off the stream, not its CPU.
 *
 * This file is the stream's lifecycle (phases, the final chunk, completion exactly once). The FIFO itself is
 * chunk-queue.ts, the metrics and the hook failure policy response-metrics.ts, the settings response-path.ts; the
 * data planes reach a stream through the response relay (response-relay.ts).
 *
 * Why one file: the lifecycle above is one state machine (phases, the final chunk, completion exactly once); the
 * parts that change on their own already live apart (listed above).
 */
import type { Endpoint } from '../framework/datalayer.ts';
import type { EppError } from '../framework/errors.ts';
import type { ResponseParser } from '../framework/parser.ts';
import type { Plugin } from '../framework/plugin.ts';
import type { InferenceRequest, Usage } from '../framework/request.ts';
import type {
  DynamicMetadata,
  Outcome,
  ResponseChunk,
  ResponseInfo,
} from '../framework/requestcontrol.ts';
import type { ResponseHookPhase } from '../observability/metrics.ts';
import { ChunkQueue } from './chunk-queue.ts';
import type { ResponsePathContext } from './response-path.ts';
import type { HookPolicy } from './hook-runner.ts';
import { HookScope } from './hook-scope.ts';
import { observeEndOfResponse, observeHookTime, recordUsage, ResponseHookPolicy, type ModelLabels } from './response-metrics.ts';


class ResponseInfoImpl implements ResponseInfo {
  status = 0;
  headers: Record<string, string> = {};
  streaming = false;
  usage: Usage | undefined = undefined;
  proxyMetadata: Record<string, Record<string, unknown>> = {};
  readonly dynamicMetadata: DynamicMetadata = {};
  constructor(
    readonly request: InferenceRequest,
    readonly targetEndpoint: Endpoint | undefined,
  ) {}
}

type Phase = 'open' | 'finishing' | 'completed';

const PHASE_HEADERS: ResponseHookPhase = 'ResponseReceived';
const PHASE_CHUNK: ResponseHookPhase = 'ResponseStreaming';
const PHASE_COMPLETE: ResponseHookPhase = 'ResponseComplete';

export class ResponseStream {
  readonly info: ResponseInfoImpl;
  readonly #ctx: ResponsePathContext;
  /** The request's model names as metric labels (bounded once at the start, so inc and dec agree). */
  readonly modelLabels: ModelLabels;
  readonly #onSettled: ((stream: ResponseStream) => void) | undefined;
  #parser: ResponseParser | undefined;
  #createParser: (streaming: boolean) => ResponseParser;
  #phase: Phase = 'open';
  #headersSeen = false;
  #finalSeen = false;
  #chunkIndex = 0;
  #responseBytes = 0;
  #abortReason: string | undefined;
  #completion: Promise<void> | undefined;

  // FIFO of intermediate chunks awaiting their hooks: created by the first chunk that has hooks to run.
  #queue: ChunkQueue | null = null;

  // Signals of this stream's hook calls, and failure bookkeeping (allocated only when a hook misbehaves).
  readonly #scope = new HookScope();
  /** The hook failure policy (response-metrics.ts), created when a hook first runs. */
  #policy: HookPolicy | null = null;

  constructor(
    ctx: ResponsePathContext,
    request: InferenceRequest,
    target: Endpoint | undefined,
    createParser: (streaming: boolean) => ResponseParser,
    onSettled?: (stream: ResponseStream) => void,
  ) {
    this.#ctx = ctx;
    this.info = new ResponseInfoImpl(request, target);
    this.#createParser = createParser;
    this.#onSettled = onSettled;
    this.modelLabels = { model_name: ctx.metrics.modelLabel(request.incomingModel), target_model_name: ctx.metrics.modelLabel(request.targetModel) };
  }

  /** True once completion hooks have been started (or finished). */
  get completed(): boolean {
    return this.#phase === 'completed';
  }

  /** Chunk-hook work items waiting in this stream's FIFO (for tests and metrics). */
  get pendingChunkHooks(): number {
    return this.#queue?.pending ?? 0;
  }

  /**
   * The response headers arrived. Runs header hooks in order; the returned promise (if any) must be awaited
   * before the data plane answers the headers. `streaming` is true when the request asked for a stream or the
   * response is SSE. A second call is ignored.
   */
  onHeaders(
    status: number,
    headers: Record<string, string>,
    streaming: boolean,
    proxyMetadata?: Record<string, Record<string, unknown>>,
  ): void | Promise<void> {
    if (this.#headersSeen || this.#phase !== 'open') return;
    this.#headersSeen = true;
    const info = this.info;
    info.status = status;
    info.headers = headers;
    info.streaming = streaming;
    if (proxyMetadata) info.proxyMetadata = proxyMetadata;
    this.#parser = this.#createParser(streaming);
    const hooks = this.#ctx.hooks.headers;
    if (hooks === null) return;
    const started = this.#ctx.now();
    const r = this.#runHooks(hooks, PHASE_HEADERS, (h, signal) => h.onResponseHeaders(info, signal));
    if (r === undefined) {
      this.#observeHookTime(PHASE_HEADERS, started);
      return;
    }
    return r.then(() => this.#observeHookTime(PHASE_HEADERS, started));
  }

  /**
   * The proxy sends no response headers for this stream (Envoy `response_header_mode: SKIP`): the body starts
   * without them. Sets the streaming mode and the response parser; header hooks do not run (there are no
   * headers). Ignored once headers were seen.
   */
  headersSkipped(streaming: boolean): void {
    if (this.#headersSeen || this.#phase !== 'open') return;
    this.#headersSeen = true;
    this.info.status = 200;
    this.info.streaming = streaming;
    this.#parser = this.#createParser(streaming);
  }

  /**
   * A response body chunk arrived. For an intermediate chunk this returns synchronously in `async` mode (its
   * hooks run later, in order) — or a promise under the `block` overflow policy when the FIFO is full, or in
   * `inline` mode. For the final chunk (`endOfStream`) it returns a promise that settles once every hook of
   * the stream and the completion hooks have run: send the final reply after it.
   */
  onChunk(data: Uint8Array, endOfStream: boolean): void | Promise<void> {
    if (this.#phase !== 'open') {
      // Nothing after the final chunk or completion: ignored. A chunk after the final one is counted (the data
      // plane should not send it); one after an abort or failure is an ordinary race with the upstream.
      if (this.#finalSeen) this.#ctx.runner.violation('chunk-after-end');
      return;
    }
    if (!this.#headersSeen) this.headersSkipped(false);
    this.#responseBytes += data.length;
    const parsed = this.#parser?.push(data, endOfStream);
    if (parsed !== undefined) this.#recordUsage(parsed);
    const index = this.#chunkIndex++;
    if (endOfStream) return this.#finish(data, index);
    const hooks = this.#ctx.hooks.chunk;
    if (hooks === null) return;
    const chunk = this.#chunk(index, data, false);
    if (this.#ctx.options.chunkHookMode === 'inline') return this.#runChunk(chunk);
    return this.#enqueue(chunk);
  }

  /** The stream ended without more body (response trailers, or end of a buffered response with no data). */
  finish(): Promise<void> {
    if (this.#phase !== 'open') return this.#completion ?? Promise.resolve();
    const r = this.onChunk(EMPTY, true);
    return r ?? this.#completion ?? Promise.resolve();
  }

  /**
   * The request ended early (client cancel, stream error, shutdown). Pending chunk hooks still run (each still
   * bounded by its timeout; their signal is aborted), then completion hooks with an `aborted` outcome.
   * Idempotent; returns the completion promise.
   */
  abort(reason: string): Promise<void> {
    if (this.#phase === 'completed') return this.#completion ?? Promise.resolve();
    this.#abortReason ??= reason;
    this.#scope.abort(new Error(reason));
    if (this.#phase === 'finishing') return this.#completion ?? Promise.resolve();
    return this.#complete({ kind: 'aborted', reason });
  }

  /** The EPP failed the request after scheduling it. Idempotent. */
  fail(error: EppError | Error): Promise<void> {
    if (this.#phase !== 'open') return this.#completion ?? Promise.resolve();
    return this.#complete({ kind: 'internal-error', error });
  }

  // ------------------------------------------------------------------ final chunk and completion

  #finish(data: Uint8Array, index: number): Promise<void> {
    this.#phase = 'finishing';
    this.#finalSeen = true;
    let completion: Promise<void>;
    try {
      const drained = this.#queue?.whenDrained();
      completion = drained === undefined ? this.#finalChunk(data, index) : drained.then(() => this.#finalChunk(data, index));
    } catch (err) {
      completion = Promise.reject(err);
    }
    this.#completion = completion;
    return completion;
  }

  /** What the chunk hooks see of chunk `index`. */
  #chunk(index: number, data: Uint8Array, endOfStream: boolean): ResponseChunk {
    return { index, data, startOfStream: index === 0, endOfStream, usage: this.info.usage, receivedAt: this.#ctx.now() };
  }

  /** The final chunk's own hooks, then completion. A settled promise, and no microtask, when every hook is synchronous. */
  #finalChunk(data: Uint8Array, index: number): Promise<void> {
    const hooks = this.#ctx.hooks.chunk;
    if (hooks !== null) {
      const r = this.#runChunk(this.#chunk(index, data, true));
      if (r) return r.then(() => this.#completeFinal());
    }
    return this.#completeFinal();
  }

  #completeFinal(): Promise<void> {
    this.#observeEndOfResponse();
    const status = this.info.status;
    const outcome: Outcome =
      this.#abortReason !== undefined
        ? { kind: 'aborted', reason: this.#abortReason }
        : status >= 400
          ? { kind: 'upstream-error', status }
          : { kind: 'success', usage: this.info.usage };
    return this.#runCompletion(outcome);
  }

  #complete(outcome: Outcome): Promise<void> {
    this.#phase = 'finishing';
    const run = async (): Promise<void> => {
      const drained = this.#queue?.whenDrained();
      if (drained) await drained;
      await this.#runCompletion(outcome);
    };
    this.#completion = run();
    return this.#completion;
  }

  /** Completion hooks, once; then the stream settles. A settled promise when every completion hook is synchronous. */
  #runCompletion(outcome: Outcome): Promise<void> {
    if (this.#phase === 'completed') {
      this.#ctx.runner.violation('second-completion');
      return SETTLED;
    }
    this.#phase = 'completed';
    this.#ctx.metrics.completionOutcomes.inc({ outcome: outcome.kind });
    const hooks = this.#ctx.hooks.complete;
    let pending = false;
    try {
      if (hooks === null) return SETTLED;
      this.#scope.fresh(); // completion gets a fresh, un-aborted signal
      const started = this.#ctx.now();
      const info = this.info;
      const r = this.#runHooks(hooks, PHASE_COMPLETE, (h, signal) => h.onResponseComplete(info, outcome, signal));
      if (r === undefined) {
        this.#observeHookTime(PHASE_COMPLETE, started);
        return SETTLED;
      }
      pending = true;
      return r.then(() => this.#observeHookTime(PHASE_COMPLETE, started)).finally(() => this.#settled());
    } finally {
      if (!pending) this.#settled();
    }
  }

  /** Nothing runs for this stream any more: its queue and parser are let go, the director is told. */
  #settled(): void {
    this.#queue?.clear();
    this.#parser = undefined;
    this.#onSettled?.(this);
  }

  // ------------------------------------------------------------------ the FIFO's bound

  #enqueue(chunk: ResponseChunk): void | Promise<void> {
    const queue = (this.#queue ??= new ChunkQueue((c) => this.#runChunk(c)));
    const pending = queue.pending;
    const { queueLimit, overflowPolicy } = this.#ctx.options;
    if (pending >= queueLimit) {
      this.#ctx.metrics.responseQueueOverflow.inc({ policy: overflowPolicy });
      if (overflowPolicy === 'block') return queue.pushAndWait(chunk, queueLimit);
      const scope = this.#scope;
      if (scope.logged === null || !scope.logged.has(OVERFLOW_MARKER)) {
        (scope.logged ??= new Set()).add(OVERFLOW_MARKER);
        this.#ctx.logger.warn(
          { requestId: this.info.request.requestId, queueLimit },
          'response chunk-hook queue full: skipping hooks for chunks until it drains (policy drop)',
        );
      }
      return;
    }
    queue.push(chunk);
    this.#ctx.metrics.responseQueueDepth.observe(pending + 1);
  }

  #runChunk(chunk: ResponseChunk): void | Promise<void> {
    const hooks = this.#ctx.hooks.chunk;
    if (hooks === null) return;
    const info = this.info;
    const started = this.#ctx.now();
    const r = this.#runHooks(hooks, PHASE_CHUNK, (h, signal) => h.onResponseChunk(info, chunk, signal));
    if (r === undefined) {
      this.#observeHookTime(PHASE_CHUNK, started);
      return;
    }
    return r.then(() => this.#observeHookTime(PHASE_CHUNK, started));
  }

  // ------------------------------------------------------------------ running hooks safely

  /**
   * Runs `hooks` in order through the shared runner: synchronous hooks back to back (no timer, no promise); the
   * first hook that returns a thenable makes this return a promise that continues with the rest once it settles
   * (or times out). Chunk hooks that timed out earlier on this stream are skipped.
   */
  #runHooks<H extends Plugin>(hooks: readonly H[], phase: ResponseHookPhase, call: (hook: H, signal: AbortSignal) => unknown): Promise<void> | undefined {
    const policy = (this.#policy ??= new ResponseHookPolicy(this.#ctx.metrics, this.#ctx.logger, this.info.request.requestId, PHASE_CHUNK));
    return this.#ctx.runner.runAll(this.#scope, phase, hooks, this.#ctx.options.hookTimeoutMs, policy, call, phase === PHASE_CHUNK);
  }

  // ------------------------------------------------------------------ metrics

  #observeHookTime(phase: ResponseHookPhase, started: number): void {
    observeHookTime(this.#ctx.metrics, phase, (this.#ctx.now() - started) / 1000);
  }

  #recordUsage(usage: Usage): void {
    this.info.usage = usage;
    recordUsage(this.#ctx.metrics, this.modelLabels, usage);
  }

  #observeEndOfResponse(): void {
    const seconds = (this.#ctx.now() - this.info.request.receivedAt) / 1000;
    observeEndOfResponse(this.#ctx.metrics, this.modelLabels, seconds, this.#responseBytes, this.info.usage);
  }
}

const EMPTY = new Uint8Array(0);
/** The completion of a stream whose hooks all returned synchronously: already settled (shared; promises are immutable). */
const SETTLED: Promise<void> = Promise.resolve();
/** Marks "overflow already logged" in the per-stream logged set. */
const OVERFLOW_MARKER: Plugin = { typedName: { type: 'overflow', name: 'overflow' } };
