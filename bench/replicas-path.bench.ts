/**
 * `npm run bench:replicas-path`: the request-path cost of sync, isolated. One replica's prefix producer
 * (8 endpoints, 128-block prompts) routes requests at a steady rate while a peer publishes 1,000 placements/s
 * (128 hashes each, as pre-encoded batches appended to the log: the peer's own work runs elsewhere) that this
 * replica applies through the real sync engine (memory transport, or a real redis-server with `--transport
 * redis`; real timers; it also publishes its own placements) — "sync on" — or nothing — "sync off". Arms run
 * once per repetition in a seeded shuffled order, in the same process, after warm-up rounds that fill the index
 * until its size stops moving (a filling index pays one-off table doublings that a replica in steady state does
 * not). Reported as medians [min–max] over rounds.
 *
 * Per round: the per-request time of prepareData + preRequest (the request-path work the index does) p50/p99;
 * event-loop delay p99/max; collections per second by kind and the longest scavenge; and every **stall over
 * 2 ms** (a 1 ms timer that came > 2 ms late) with its cause (bench/support/stalls.ts). How a stall is
 * attributed, on Linux: at every tick the sampler reads the main thread's `/proc/self/task/<pid>/schedstat`
 * (ns on the CPU, ns runnable but waiting on a run queue), so each stall's window splits into time the thread
 * was **descheduled** (another task had the core: the machine, not this process), **GC** (`PerformanceObserver`
 * 'gc' entries inside the window), **asleep** (neither running nor runnable beyond the timer interval), and
 * what is left, **on-CPU** — this process's own code. A stall is given the first cause without which it would
 * not have been one, in that order; a stall labelled on-CPU therefore had over 2 ms of non-GC on-CPU time in its
 * window, and the column "worst on-CPU ms in a stall" shows how close the others came. Where schedstat is
 * missing (not Linux, a kernel without schedstats) the bench says so and splits stalls by GC only.
 *
 * Then every stall is printed on its own line with its evidence (bench/support/stall-evidence.ts): its window's
 * on-CPU time split by what the bench was running (its routed requests, the index applying peers' placements,
 * snapshot pieces and their encoding, appends to the memory transport or every Redis command sent, every Redis reply
 * decoded — `recv`: ioredis' RESP decoder on each socket chunk and the replies' dispatch, added in session 10 —, and
 * "other"), the collections in it by kind, the run-queue wait,
 * the time neither on the CPU nor runnable (where a running thread's stolen time lands on a kernel with
 * paravirt steal accounting), and the machine in the same window: steal ticks per CPU, softirqs on the thread's
 * CPU (charged to the thread it interrupts on a kernel without IRQ time accounting), the thread's page faults.
 * A summary per arm counts the stalls by cause with how many had steal on the thread's CPU, and which activity
 * took most of each on-CPU stall's window; the round table gains steal, softirqs and page faults per second.
 *
 * Before each round's measured window (outside it), with `--collect on` (the default; `off` measures as before
 * session 10), the round's load runs 3 s unmeasured and then a full collection: every round builds a fresh engine
 * with fresh transports and drops them at its end, and a fresh engine grows its coalescing tables over its first
 * seconds (16 tables growing to 128–256 kB each: 2–4 MB of array buffers, once per engine), and V8 counts array
 * buffers added since the last mark-compact against the old generation's limit: each round then answers only for
 * what it allocated itself. (It did not remove the one mark-compact per sync-on round, nor did `--engine shared`:
 * docs/benchmarks.md, Replicas, session 10.) A table per arm gives what each round's second half left in the old generation and in
 * array buffers (kB/s), from which the steady-state mark-compact interval follows. `--engine shared` runs one engine
 * for the whole run instead (a replica's steady state): sync-off rounds detach its placement sink and the peer is
 * silent, so nothing is published or applied, but its heartbeat (20 small XADDs/s) and long-poll go on there.
 * Over Redis the peer's XADDs are pre-framed bytes on a socket of their own, replies off (`--peer-client raw`, the
 * default since session 11; `ioredis`: through a RedisTransport in this process, as before, whose command objects
 * and — until session 11 — copies of every batch were charged to this replica's heap).
 *
 * `--pin on|both` isolates the measured thread as far as this machine allows (bench/support/pin.ts, `taskset`):
 * the main thread alone on the last core; this process's other threads (V8's collector helpers, libuv) and
 * redis-server on the others; processes the bench did not start still share the core (no `isolcpus` here).
 * `both` alternates pinned and unpinned rounds in one run. `--profile-stalls` samples V8's profiler every
 * 200 µs during the measured rounds and prints the stacks inside each cause's stall windows (the profiler's cost
 * makes those rounds slower: for finding causes, not for figures).
 *
 *   node --import tsx bench/replicas-path.bench.ts [--rounds 6] [--round-ms 2000] [--rate 200] [--slice-ms 0.5,0.25]
 *     [--transport memory|redis] [--pin off|on|both] [--profile-stalls] [--coalesce-ms 1000] [--snapshot-ms <round-ms/2; 0: none>] [--collect on|off] [--engine per-round|shared] [--peer-client raw|ioredis] [--seed 1]
 */
import { constants as perfConstants, monitorEventLoopDelay, performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { connect as netConnect } from 'node:net';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Decoder } from 'ioredis/built/resp/decoder.js';
import { DEFAULT_SYNC_SETTINGS, SyncEngine } from '../src/datalayer/sync/engine.ts';
import { MemoryBus, MemoryLink } from '../src/datalayer/sync/memory-transport.ts';
import { RedisTransport } from '../src/datalayer/sync/redis-transport.ts';
import { SnapshotFieldBuilder } from '../src/datalayer/sync/snapshot-field.ts';
import { Redis } from 'ioredis';
import type { SyncTransport } from '../src/datalayer/sync/transport.ts';
import { RedisServer } from '../test/support/redis.ts';
import type { Endpoint } from '../src/framework/datalayer.ts';
import type { PlacementSink } from '../src/framework/replication.ts';
import { encodeBatch } from '../src/datalayer/sync/codec.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { approxPrefixCacheProducerFactory, type ApproxPrefixCacheProducer } from '../src/plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { realTimers } from '../src/util/timers.ts';
import { systemClock } from '../src/util/clock.ts';
import { createRandomSource } from '../src/util/random.ts';
import { makeCandidate, makeEndpoint, makeSchedulingResult } from '../test/support/plugin-fixtures.ts';
import { RoutedRequest } from '../src/runtime/routed-request.ts';
import { RequestAbort } from '../src/runtime/request-abort.ts';
import { quantiles } from './routing/stats.ts';
import { describeWarmUp, repetitions, warmUntilSteady } from './support/alternate.ts';
import { printRunInfo } from './support/run-info.ts';
import { classifyStalls, gcInStall, openSchedstat, stallCause, startGcRecorder, startStallSampler, type StallCause } from './support/stalls.ts';
import { describeStall, formatStall, SpanLog, type StallEvidence } from './support/stall-evidence.ts';
import { stacksIn, startProfiler } from './support/profile.ts';
import { pinning, type Pinning } from './support/pin.ts';
import { formatSpread, spread } from './support/stats.ts';
import { InFlightTracker } from '../src/runtime/inflight.ts';
import { PluginMetricSources } from '../src/runtime/plugin-metrics.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, 'round-ms': { type: 'string', default: '2000' }, rate: { type: 'string', default: '200' }, 'slice-ms': { type: 'string', default: '0.5' }, transport: { type: 'string', default: 'memory' }, seed: { type: 'string', default: '1' }, pin: { type: 'string', default: 'off' }, 'profile-stalls': { type: 'boolean', default: false }, 'coalesce-ms': { type: 'string', default: String(DEFAULT_SYNC_SETTINGS.coalesceMs) }, 'snapshot-ms': { type: 'string' }, collect: { type: 'string', default: 'on' }, engine: { type: 'string', default: 'per-round' }, 'peer-client': { type: 'string', default: 'raw' } } });
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args['round-ms']);
const RATE = Number(args.rate);
const SLICES = (args['slice-ms'] as string).split(',').map(Number);
const STALL_MS = 2;
/**
 * This replica's touch coalescing (the production default unless given): part of what its request path pays when
 * sync is on (`enqueuePlacement` runs in preRequest). Rounds before session 8 ran with it off (0).
 */
const COALESCE_MS = Number(args['coalesce-ms']);
/**
 * Sync-on rounds write one snapshot of the whole index mid-round (the lease holder does every 10 s by default;
 * a round is shorter), so its cost is inside what is measured.
 */
const SNAPSHOT_MS = args['snapshot-ms'] === undefined ? ROUND_MS / 2 : Number(args['snapshot-ms']);
if (!(SNAPSHOT_MS >= 0)) throw new Error(`--snapshot-ms must be a number of ms (0: no snapshot), not ${args['snapshot-ms']}`);
if (args.collect !== 'on' && args.collect !== 'off') throw new Error(`--collect must be on or off, not ${args.collect}`);
/**
 * `--collect on` (the default): a full collection before each round's measured window, outside it. Every round
 * builds a fresh engine and transports (4 Redis connections) and drops them at its end; their garbage — above all
 * the ≈ 2 MB of coalescing tables an engine grows in its first second (8 endpoints × 2 generations), array buffers
 * that V8 counts against the old generation's limit until a mark-compact — otherwise stays in the heap and
 * starts a mark-compact in a later round, which the bench then charged to the sync-on arm (session 10: one per
 * sync-on round, ≈ 1–2 s into it; a replica builds its engine once). `off` measures as sessions 6–9 did.
 */
const COLLECT = args.collect === 'on';
if (args.engine !== 'per-round' && args.engine !== 'shared') throw new Error(`--engine must be per-round or shared, not ${args.engine}`);
/**
 * `--engine shared`: one engine (and one log) for the whole run, as a replica has — started before the warm-up;
 * sync-off rounds detach its placement sink and the peer stops publishing, so nothing is published or applied
 * there, but the idle engine's heartbeat (20 small XADDs/s) and long-poll go on; the bench writes the snapshots
 * (every --snapshot-ms, sync-on rounds only). Uses the first --slice-ms. `per-round` (the default): a fresh engine
 * per sync-on round, as before.
 */
const SHARED = args.engine === 'shared';
/** With --collect on: how long each round's load runs, unmeasured, before the collection and the measured window. */
const SETTLE_MS = 3000;
let collectGarbage: (() => void) | undefined;
if (COLLECT) {
  setFlagsFromString('--expose-gc');
  collectGarbage = runInNewContext('gc') as () => void;
}
if (args['peer-client'] !== 'raw' && args['peer-client'] !== 'ioredis') throw new Error(`--peer-client must be raw or ioredis, not ${args['peer-client']}`);
/**
 * `--peer-client raw` (the default): over Redis, the simulated peer's XADDs go out as pre-framed bytes on a socket
 * of their own with replies off (CLIENT REPLY OFF) — what a peer replica's appends cost this process is then one
 * socket write each, as near to "the peer runs elsewhere" as one process gets. `ioredis` (sessions ≤ 10): through a
 * RedisTransport of its own in this process — ioredis' command objects, promises, timers and replies for 200
 * appends/s, and until session 11 a copy of every batch (≈ 1 MB/s of array buffers), all charged to this replica's
 * heap: about half the array buffers the sync-on arm allocated came from the peer's client (docs/benchmarks.md,
 * Replicas, session 11).
 */
const RAW_PEER = args['peer-client'] === 'raw';
/** V8's count of external memory (array buffers' backing stores): what it adds to the old generation's size. */
const externalMemory = (): number => getHeapStatistics().external_memory;
const oldSpaceUsed = (): number => getHeapSpaceStatistics().find((x) => x.space_name === 'old_space')?.space_used_size ?? Number.NaN;
if (args.transport !== 'memory' && args.transport !== 'redis') throw new Error(`--transport must be memory or redis, not ${args.transport}`);
/** With --transport redis: a throwaway redis-server on loopback (Debian's redis-server must be installed). */
const redis = args.transport === 'redis' ? await RedisServer.start() : undefined;
if (!['off', 'on', 'both'].includes(args.pin as string)) throw new Error(`--pin must be off, on or both, not ${args.pin}`);
/** With --pin on|both: this process's main thread on one core, its other threads and redis-server on the other. */
const pin: Pinning | { unavailable: string } | undefined = args.pin === 'off' ? undefined : pinning(() => (redis?.pid !== undefined ? [redis.pid] : []));
const pinModes: readonly boolean[] = pin === undefined || 'unavailable' in pin ? [false] : args.pin === 'both' ? [false, true] : [true];

const endpoints: Endpoint[] = Array.from({ length: 8 }, (_, i) => makeEndpoint(`ep${i}`));
const handle = { logger: silentLogger(), clock: systemClock, random: createRandomSource(1), plugin: () => undefined, endpoints: () => endpoints, inflight: new InFlightTracker(), metrics: new PluginMetricSources() };
const local = approxPrefixCacheProducerFactory('prefix', { autoTune: false, lruCapacityPerServer: 31_250 }, handle) as ApproxPrefixCacheProducer;
/**
 * The bench's own activities, timed per call so each stall's on-CPU time splits into them (stall-evidence.ts):
 * this replica's routed requests, the index's work for peers' placements and for snapshots (each piece of the
 * export walk, each import), and the synchronous part of handing a batch to the transport.
 */
const SPAN = { route: 0, apply: 1, snapshot: 2, publish: 3, send: 4, recv: 5 } as const;
const spans = new SpanLog(Object.keys(SPAN));
const now = (): number => performance.now();
local.applyRemotePlacement = spans.wrap(SPAN.apply, now, local.applyRemotePlacement.bind(local));
local.importSnapshot = spans.wrap(SPAN.snapshot, now, local.importSnapshot.bind(local));
const exportSnapshot = local.exportSnapshot.bind(local);
local.exportSnapshot = function* () {
  const it = exportSnapshot()[Symbol.iterator]();
  for (;;) {
    const t0 = now();
    const r = it.next();
    spans.record(SPAN.snapshot, t0, now());
    if (r.done === true) return;
    yield r.value;
  }
};
// The syncer's encoding of each exported piece is snapshot work too.
const addPiece = SnapshotFieldBuilder.prototype.add;
SnapshotFieldBuilder.prototype.add = function (this: SnapshotFieldBuilder, hashes) {
  const t0 = now();
  addPiece.call(this, hashes);
  spans.record(SPAN.snapshot, t0, now());
};
// Over Redis, every command's synchronous part (ioredis encoding it, copying its arguments, writing the socket):
// XADDs (this replica's and the simulated peer's), XREADs, the snapshot's HSETs. (`publish` is then not timed
// separately: spans do not nest.)
if (args.transport === 'redis') {
  const send = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: Redis, ...a: Parameters<Redis['sendCommand']>) {
    const t0 = now();
    try {
      return send.apply(this, a);
    } finally {
      spans.record(SPAN.send, t0, now());
    }
  };
}
// Over Redis, every reply's decoding (ioredis' RESP decoder on each socket chunk, and the replies' dispatch to their
// commands — the XREAD replies with the peer's batches, every XADD's id): in "other" before session 10.
if (args.transport === 'redis') {
  const write = Decoder.prototype.write;
  Decoder.prototype.write = function (this: Decoder, chunk: Buffer) {
    const t0 = now();
    try {
      write.call(this, chunk);
    } finally {
      spans.record(SPAN.recv, t0, now());
    }
  };
}
/** The memory transport with `append` timed (what stands in for a Redis client's send). */
function timedAppend(t: SyncTransport): SyncTransport {
  const append = t.append.bind(t);
  t.append = spans.wrap(SPAN.publish, now, append);
  return t;
}
/**
 * The peer's batches, encoded once: what a peer replica appends to the log (5 placements per 5 ms batch =
 * 1,000 placements/s). The peer's own hashing and encoding are not this replica's cost, so no peer engine runs
 * in this process; the bench stamps each batch's seq and send time and appends it to the bus at the peer's pace.
 */
const PEER_ORIGIN = 'peer:0badcafe';
const peerBatches: Uint8Array[] = [];
for (let i = 0; i < 4096; i += 5) {
  const placements = Array.from({ length: 5 }, (_, k) => {
    const n = i + k;
    // 96 shared-prefix blocks from 256 groups + 32 unique ones, like workload G of the design note.
    const hashes = [...Array.from({ length: 96 }, (_, j) => BigInt((n % 256) * 1000 + j)), ...Array.from({ length: 32 }, (_, j) => BigInt(1e9 + n * 100 + j))];
    return { channel: 0, endpoint: n % 8, blockSizeTokens: local.currentBlockSizeTokens(), hashes };
  });
  peerBatches.push(encodeBatch({ origin: PEER_ORIGIN, seq: 0, sentAtMs: 0, flags: 0, channels: [{ name: 'prefix', fingerprint: local.replicationFingerprint() >>> 0 }], endpoints: endpoints.map((e) => e.metadata.name), placements, gauges: [] }));
}
const SEQ_OFFSET = 3 + PEER_ORIGIN.length;
function stamp(payload: Uint8Array, seq: number, sentAtMs: number): Uint8Array {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  v.setUint32(SEQ_OFFSET, seq, true);
  v.setFloat64(SEQ_OFFSET + 4, sentAtMs, true);
  return payload;
}
let peerSeq = 0;
const rnd = createRandomSource(7);
const groups = Array.from({ length: 256 }, (_, g) => `group ${g} `.padEnd(64 * 96, `system prompt ${g} `));
// Flat strings, as a JSON-parsed request body is: a concatenation is a rope that V8 flattens on first use and keeps
// flattened, so each prompt would put 8 KB into the old generation the first time it is routed, mid-measurement.
const flat = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');
const prompts = Array.from({ length: 1024 }, (_, i) => flat(`${groups[i % groups.length]}${`question ${i} `.padEnd(64 * 32, 'x')}`));
const promptText = (): string => prompts[Math.floor(rnd.next() * prompts.length)] as string;

/**
 * A request as the runtime builds it (director.ts): a `RoutedRequest` whose AbortSignal is created only if read.
 * Until session 11 the bench used the tests' `makeRequest`, which creates an `AbortController` per request: those
 * signals were ≈ 125 kB/s of the ≈ 150 kB/s the request path promoted into the old generation (V8's sampling heap
 * profiler), in both arms — a mark-compact due every ≈ 45 s that production's requests do not cause.
 */
function makeRoutedRequest(payload: Record<string, unknown>): RoutedRequest {
  return new RoutedRequest('req-1', 'm', 'm', { apiType: 'completions', payload, stream: false }, {}, 0, 'default-flow', '', JSON.stringify(payload).length, 0, new RequestAbort());
}

function route(p: ApproxPrefixCacheProducer): number {
  const request = makeRoutedRequest({ model: 'm', prompt: promptText() });
  const candidates = endpoints.map((e) => makeCandidate(e));
  const t0 = performance.now();
  p.prepareData(request, candidates);
  p.preRequest(request, makeSchedulingResult({ default: [candidates[Math.floor(rnd.next() * candidates.length)]!] }));
  const t1 = performance.now();
  spans.record(SPAN.route, t0, t1);
  return t1 - t0;
}

/**
 * Runs the round's load for `ms`: this replica routes RATE requests/s (each one's µs to `onRoute`) and, with
 * `peerAppend`, the peer publishes 1,000 placements/s (a batch of 5 every 5 ms); `onTick` sees the elapsed ms.
 */
async function drive(ms: number, peerAppend: ((payload: Uint8Array) => void) | undefined, onRoute: (us: number) => void, onTick?: (elapsedMs: number) => void): Promise<void> {
  const t0 = performance.now();
  let sentPeer = 0;
  let sentLocal = 0;
  while (performance.now() - t0 < ms) {
    const elapsed = performance.now() - t0;
    onTick?.(elapsed);
    for (let k = 0; peerAppend !== undefined && sentPeer * 5 < elapsed && k < 5; k++) {
      peerAppend(stamp(peerBatches[peerSeq % peerBatches.length]!, ++peerSeq, systemClock.now()));
      sentPeer++;
    }
    for (let k = 0; sentLocal < (elapsed * RATE) / 1000 && k < 5; k++) {
      onRoute(route(local));
      sentLocal++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

interface RoundResult {
  p50: number;
  p99: number;
  loopP99: number;
  loopMax: number;
  stalls: number;
  stallsWithGc: number;
  stallsBeyondGc: number;
  worstBeyondGcMs: number;
  /** Stalls by cause (NaN without schedstat): descheduled, GC, asleep, on-CPU; the worst on-CPU ms in a stall. */
  descheduled: number;
  gcCaused: number;
  asleep: number;
  onCpu: number;
  worstOnCpuMs: number;
  /** The main thread over the whole round (ms per s; NaN without schedstat): on the CPU, waiting on a run queue. */
  threadCpuMsPerS: number;
  threadWaitMsPerS: number;
  minorGcPerS: number;
  minorGcMs: number;
  /** The longest minor collection (scavenge) pause in the round, ms (0 when none). */
  minorGcMaxMs: number;
  majorGcPerS: number;
  applied: number;
  snapshots: number;
  /** Steal on all CPUs over the round (ms per s, from 10 ms ticks; NaN without /proc/stat). */
  stealMsPerS: number;
  /** Softirqs per s on all CPUs, and the main thread's page faults per s (NaN without the counters). */
  softirqsPerS: number;
  faultsPerS: number;
  /** kB of array buffers the process held after the round's snapshot write minus before (NaN: none written). */
  snapshotArrayBuffersKb: number;
  /**
   * What the round's second half left in the heap, kB per s, read just after scavenges (the first of the second
   * half and the last): the old generation's used bytes (what scavenges promoted and what was allocated there
   * directly) and the array buffers held. NaN when a mark-compact ran between them (it frees what it finds dead).
   */
  oldGrowthKbPerS: number;
  arrayBuffersGrowthKbPerS: number;
  /** Array buffers allocated over the round, kB per s (a lower bound: V8's external memory summed over its rises). */
  arrayBuffersAllocKbPerS: number;
}

/** Every stall over the threshold, with its evidence, per arm (printed after the tables). */
const stallLog = new Map<string, Array<{ round: number; e: StallEvidence }>>();
const roundsRun = new Map<string, number>();

/**
 * The log of one round: a fresh memory bus, or a fresh stream on the bench's redis-server (a new pool name per
 * round, so a replica never replays an earlier round's batches). `peerAppend` is the peer's XADD: over Redis its
 * client runs in this process (200 small appends/s), the one part of the peer's work that does.
 */
let roundNo = 0;
function roundLog(): { transport: () => SyncTransport; peerAppend: (payload: Uint8Array) => void; close: () => Promise<void> } {
  if (redis === undefined) {
    // 1 s of retention: the replica reads within milliseconds, and the log stands in for Redis, whose memory is
    // not this replica's (30 s of batches would be promoted into this heap and collected here).
    const bus = new MemoryBus({ clock: systemClock, timers: realTimers, retentionMs: 1000 });
    return { transport: () => timedAppend(new MemoryLink(bus, realTimers, createRandomSource(3))), peerAppend: (p) => bus.append(p), close: async () => {} };
  }
  const pool = `bench/round-${++roundNo}`;
  const url = redis.url;
  const mkTransport = (): RedisTransport => new RedisTransport({ url, keyPrefix: 'epp-bench', pool, retentionMs: 30_000, snapshotIntervalMs: 10_000, commandTimeoutMs: 1000, logger: silentLogger() });
  if (RAW_PEER) {
    const peer = rawPeer(redis.port, `epp-bench:{${pool}}:sync`);
    return { transport: mkTransport, peerAppend: peer.append, close: peer.close };
  }
  const peerLink = mkTransport();
  return { transport: mkTransport, peerAppend: (p) => void peerLink.append(p).catch(() => undefined), close: () => peerLink.close() };
}

/**
 * The peer's appends as bytes on a socket (--peer-client raw): `XADD <key> * b <batch>`, the framing built once per
 * batch length, the batch written as it is (corked, one writev per tick), replies off. No trimming: this replica's
 * own XADDs carry MINID.
 */
function rawPeer(port: number, streamKey: string): { append: (payload: Uint8Array) => void; close: () => Promise<void> } {
  const socket = netConnect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  socket.resume();
  socket.write('*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n');
  const heads = new Map<number, Buffer>();
  const crlf = Buffer.from('\r\n');
  const uncork = (): void => void socket.uncork();
  return {
    append: (p) => {
      let head = heads.get(p.byteLength);
      if (head === undefined) heads.set(p.byteLength, (head = Buffer.from(`*5\r\n$4\r\nXADD\r\n$${Buffer.byteLength(streamKey)}\r\n${streamKey}\r\n$1\r\n*\r\n$1\r\nb\r\n$${p.byteLength}\r\n`)));
      socket.cork();
      socket.write(head);
      socket.write(p);
      socket.write(crlf);
      process.nextTick(uncork);
    },
    close: () => new Promise<void>((resolve) => void socket.end(resolve)),
  };
}

/** The main thread's schedstat for whole-round figures (undefined where it does not exist). */
const schedstat = openSchedstat();
const roundStat = 'read' in schedstat ? schedstat : undefined;
let schedstatNote = '';
let machineNote = '';
/** With --profile-stalls: per arm and cause, the sampled stacks inside the stalls' windows. */
const PROFILE = args['profile-stalls'] as boolean;
const stallStacks = new Map<string, Map<string, number>>();
const profiledStalls = new Map<string, number>();

/** The array buffers the process held after the round's last snapshot write minus before it (NaN: none written). */
let snapshotArrayBuffers = Number.NaN;
function newEngine(log: ReturnType<typeof roundLog>, sliceMs: number | undefined, snapshotIntervalMs: number): SyncEngine {
  const a = new SyncEngine({ transport: log.transport(), origin: `local:${Math.random().toString(16).slice(2, 10)}`, indexes: [local], gauges: [], clock: systemClock, timers: realTimers, logger: silentLogger(), settings: { coalesceMs: COALESCE_MS, snapshotIntervalMs, ...(sliceMs !== undefined ? { applySliceMs: sliceMs } : {}) } });
  // The array buffers the process holds after the write minus before it (a collection during it lowers this).
  const write = a.writeSnapshot.bind(a);
  a.writeSnapshot = async () => {
    const before = process.memoryUsage().arrayBuffers;
    const ok = await write();
    if (ok) snapshotArrayBuffers = process.memoryUsage().arrayBuffers - before;
    return ok;
  };
  return a;
}
/** With --engine shared: the one engine, its log, and the placement sink it attached. */
interface SharedEngine {
  engine: SyncEngine;
  log: ReturnType<typeof roundLog>;
  sink: PlacementSink | undefined;
}
let shared: SharedEngine | undefined;
async function sharedEngine(): Promise<SharedEngine> {
  if (shared !== undefined) return shared;
  const log = roundLog();
  const engine = newEngine(log, SLICES[0], 1e9);
  const attach = local.attachPlacementSink.bind(local);
  const s: SharedEngine = { engine, log, sink: undefined };
  local.attachPlacementSink = (sink) => {
    if (sink !== undefined) s.sink = sink;
    attach(sink);
  };
  shared = s;
  await engine.start();
  return s;
}

async function round(sliceMs: number | undefined, pinned = false, armName?: string): Promise<RoundResult> {
  const syncOn = sliceMs !== undefined;
  if (pin !== undefined && 'pin' in pin) (pinned ? pin.pin : pin.unpin)();
  snapshotArrayBuffers = Number.NaN;
  const sh = SHARED ? await sharedEngine() : undefined;
  const log = sh?.log ?? roundLog();
  let a: SyncEngine | undefined;
  let snapshotTimer: NodeJS.Timeout | undefined;
  if (sh !== undefined) {
    a = syncOn ? sh.engine : undefined;
    local.attachPlacementSink(syncOn ? sh.sink : undefined);
    const engine = sh.engine;
    if (syncOn && SNAPSHOT_MS > 0) snapshotTimer = setInterval(() => void engine.writeSnapshot(), SNAPSHOT_MS);
  } else {
    a = syncOn ? newEngine(log, sliceMs, SNAPSHOT_MS > 0 ? SNAPSHOT_MS : 1e9) : undefined;
    await a?.start();
  }
  if (collectGarbage !== undefined) {
    // The round's load, unmeasured, then a full collection: a fresh engine grows its coalescing tables over its first
    // seconds (a replica's engine has long done so), and the previous rounds' engines are garbage.
    await drive(SETTLE_MS, syncOn ? log.peerAppend : undefined, () => undefined);
    collectGarbage();
    // Dead array buffers are freed by V8's sweeper after the collection, off the main thread: let it finish.
    await new Promise((r) => setTimeout(r, 50));
  }
  const profiler = PROFILE && armName !== undefined ? await startProfiler(200) : undefined;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const gc = startGcRecorder();
  const sampler = startStallSampler(STALL_MS);
  schedstatNote = sampler.schedstat;
  machineNote = sampler.machine;
  spans.clear();
  const times: number[] = [];
  const stat0 = new Float64Array(3);
  const stat1 = new Float64Array(3);
  const timed = roundStat?.read(stat0) ?? false;
  // What the settle (--collect on) applied and wrote is not the measured window's.
  const applied0 = a?.stats.appliedPlacements ?? 0;
  const snapshots0 = a?.stats.snapshotsWritten ?? 0;
  const t0 = performance.now();
  // The heap just after each scavenge: the old generation read in the observer's callback (a few ms later), the
  // array buffers 50 ms later — V8 frees the dead young ones off the main thread after the scavenge and lowers its
  // count only when that is done (read in the callback, sessions ≤ 10 counted 2–3 MB of freed buffers by chance).
  // Young array buffers are freed at every scavenge, so a reading at an arbitrary moment would count 0–2.5 MB of
  // them by the phase alone.
  const afterScavenge: Array<{ t: number; old: number; buffers: number }> = [];
  const scavenges = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
        const x = { t: e.startTime, old: oldSpaceUsed(), buffers: Number.NaN };
        afterScavenge.push(x);
        setTimeout(() => (x.buffers = externalMemory()), 50);
      }
    }
  });
  scavenges.observe({ entryTypes: ['gc'] });
  // Array buffers allocated: V8's external memory summed over its rises between 100 ms readings (a reading across a
  // scavenge falls and is not counted, so this is a lower bound). Until the next scavenge frees them, V8 counts them
  // against the old generation's limit like promoted bytes.
  let buffersPrev = externalMemory();
  let buffersRises = 0;
  const buffersTimer = setInterval(() => {
    const v = externalMemory();
    if (v > buffersPrev) buffersRises += v - buffersPrev;
    buffersPrev = v;
  }, 100);
  await drive(ROUND_MS, syncOn ? log.peerAppend : undefined, (us) => times.push(us));
  scavenges.disconnect();
  clearInterval(buffersTimer);
  const seconds = (performance.now() - t0) / 1000;
  // Growth between the first scavenge of the round's second half and its last.
  const from = afterScavenge.find((x) => x.t >= t0 + ROUND_MS / 2 && Number.isFinite(x.buffers));
  const to = afterScavenge.findLast((x) => Number.isFinite(x.buffers));
  const threadTimes = timed && (roundStat?.read(stat1) ?? false);
  const stalls = sampler.stop();
  const machine = sampler.totals();
  const gcs = gc.stop().filter((g) => g.start >= t0);
  loop.disable();
  const samples = profiler === undefined ? undefined : await profiler.stop();
  if (armName !== undefined) {
    const n = (roundsRun.get(armName) ?? 0) + 1;
    roundsRun.set(armName, n);
    const armStalls = stallLog.get(armName) ?? [];
    for (const s of stalls) {
      const top = samples === undefined ? undefined : stacksIn(samples, [[s.start - 1, s.end]], 3)[0];
      armStalls.push({ round: n, e: describeStall(s, t0, stallCause(s, gcInStall(s, gcs).windowMs, STALL_MS, 1), gcs, spans, 1, top === undefined ? undefined : `${top.stack} (${top.samples} samples)`) });
    }
    stallLog.set(armName, armStalls);
  }
  if (samples !== undefined) {
    const byCause = new Map<StallCause | 'unknown', Array<[number, number]>>();
    for (const s of stalls) {
      const cause = stallCause(s, gcInStall(s, gcs).windowMs, STALL_MS, 1) ?? 'unknown';
      byCause.set(cause, [...(byCause.get(cause) ?? []), [s.start - 1, s.end]]);
    }
    for (const [cause, windows] of byCause) {
      const key = `${armName} · ${cause}`;
      profiledStalls.set(key, (profiledStalls.get(key) ?? 0) + windows.length);
      const m = stallStacks.get(key) ?? new Map<string, number>();
      for (const { stack, samples: n } of stacksIn(samples, windows)) m.set(stack, (m.get(stack) ?? 0) + n);
      stallStacks.set(key, m);
    }
  }
  const applied = (a?.stats.appliedPlacements ?? 0) - applied0;
  const snapshots = (a?.stats.snapshotsWritten ?? 0) - snapshots0;
  if (snapshotTimer !== undefined) clearInterval(snapshotTimer);
  if (sh === undefined) {
    await a?.stop();
    await log.close();
  }
  const q = quantiles(times.slice(Math.floor(times.length / 10)));
  const c = classifyStalls(stalls, gcs, STALL_MS);
  const minor = gcs.filter((g) => g.kind === 'minor');
  const grew = from !== undefined && to !== undefined && to.t > from.t && !gcs.some((g) => (g.kind === 'major' || g.kind === 'incremental') && g.start + g.durationMs >= from.t && g.start <= to.t);
  return {
    p50: q.p50 * 1000,
    p99: q.p99 * 1000,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
    stalls: c.stalls,
    stallsWithGc: c.withGc,
    stallsBeyondGc: c.beyondGc,
    worstBeyondGcMs: c.worstBeyondGcMs,
    descheduled: c.causes?.descheduled ?? Number.NaN,
    gcCaused: c.causes?.gc ?? Number.NaN,
    asleep: c.causes?.asleep ?? Number.NaN,
    onCpu: c.causes?.onCpu ?? Number.NaN,
    worstOnCpuMs: c.causes?.worstOnCpuMs ?? Number.NaN,
    threadCpuMsPerS: threadTimes ? ((stat1[0] as number) - (stat0[0] as number)) / 1e6 / seconds : Number.NaN,
    threadWaitMsPerS: threadTimes ? ((stat1[1] as number) - (stat0[1] as number)) / 1e6 / seconds : Number.NaN,
    minorGcPerS: minor.length / seconds,
    minorGcMs: minor.reduce((t, g) => t + g.durationMs, 0) / seconds,
    minorGcMaxMs: minor.reduce((t, g) => Math.max(t, g.durationMs), 0),
    majorGcPerS: gcs.filter((g) => g.kind === 'major').length / seconds,
    applied: (applied * 1000) / ROUND_MS,
    snapshots,
    stealMsPerS: machine === undefined ? Number.NaN : (machine.stealTicks.reduce((a, b) => a + b, 0) * 10) / machine.seconds,
    softirqsPerS: machine === undefined ? Number.NaN : machine.softirqs.reduce((a, b) => a + b, 0) / machine.seconds,
    faultsPerS: machine === undefined ? Number.NaN : (machine.minorFaults + machine.majorFaults) / machine.seconds,
    snapshotArrayBuffersKb: snapshotArrayBuffers / 1024,
    oldGrowthKbPerS: grew ? (to.old - from.old) / 1024 / ((to.t - from.t) / 1000) : Number.NaN,
    arrayBuffersGrowthKbPerS: grew ? (to.buffers - from.buffers) / 1024 / ((to.t - from.t) / 1000) : Number.NaN,
    arrayBuffersAllocKbPerS: buffersRises / 1024 / seconds,
  };
}

/**
 * Every stall with its evidence, one line each, per arm; then per arm and cause how many stalls had steal on
 * the main thread's CPU in their window and, for on-CPU stalls, which activity took the most of the window.
 */
function stallReport(armNames: readonly string[]): string[] {
  const out = [
    `Every stall over ${STALL_MS} ms (bench/support/stall-evidence.ts): its time in the round, how late the tick was, its cause, and its window (the late part plus the 1 ms interval) split into the main thread's on-CPU time — by the bench's activities (route = this replica's requests, apply = the index applying peers' placements, snapshot = export/import pieces and their encoding, publish = handing a batch to the memory transport, send = every Redis command's synchronous part — encoding, argument copies, socket write — the peer's XADDs and the snapshot's HSETs included; recv = every Redis reply decoded by ioredis and dispatched to its command; "other" is what none covers: timers, the engine's read loop between replies, V8's own work, kernel time on the thread's behalf such as page faults and other processes' softirqs) — the collections in it, run-queue wait and unaccounted time (neither running nor runnable: on this kernel, with paravirt steal accounting, time the hypervisor stole from a running thread lands here); then the machine's steal ticks per CPU (10 ms each; * = the thread's CPU), softirqs on the thread's CPU and the thread's page faults in the same window. ${machineNote}.`,
    '',
  ];
  const summary: string[] = [];
  for (const name of armNames) {
    const log = stallLog.get(name) ?? [];
    out.push(`${name}: ${log.length} stalls in ${roundsRun.get(name) ?? 0} rounds`);
    for (const { round: r, e } of log) out.push(`    round ${r}, ${formatStall(e)}`);
    const byCause = new Map<string, { n: number; stolen: number; dominant: Map<string, number> }>();
    for (const { e } of log) {
      const c = byCause.get(e.cause ?? 'unknown') ?? { n: 0, stolen: 0, dominant: new Map<string, number>() };
      c.n++;
      if (e.machine !== undefined && (e.machine.stealTicks[e.machine.cpu] ?? 0) > 0) c.stolen++;
      if (e.cause === 'on-cpu') {
        const parts = [...e.spans.map((x) => [x.kind, x.ms] as const), ['other', e.otherMs ?? 0] as const];
        const top = parts.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
        c.dominant.set(top, (c.dominant.get(top) ?? 0) + 1);
      }
      byCause.set(e.cause ?? 'unknown', c);
    }
    const causes = [...byCause].map(([cause, c]) => `${cause} ${c.n} (${c.stolen} with steal on the thread's CPU${c.dominant.size > 0 ? `; most of the window: ${[...c.dominant].map(([k, v]) => `${k} ${v}`).join(', ')}` : ''})`);
    summary.push(`- ${name}: ${causes.length === 0 ? 'no stalls' : causes.join('; ')}`);
  }
  return [...out, '', 'Stalls by cause, with steal evidence:', ...summary];
}

const pinNote = pin === undefined ? 'not pinned (--pin on|both to isolate the measured thread)' : 'unavailable' in pin ? `not pinned: ${pin.unavailable}` : `${args.pin === 'both' ? 'pinned and unpinned rounds alternate' : 'pinned'}: ${pin.description}`;
const info = printRunInfo('bench:replicas-path', [
  `transport: ${redis === undefined ? 'memory' : `redis-server on loopback (port ${redis.port})`}; ${RATE} req/s local, 1,000 placements/s from the peer, ${ROUNDS} rounds of ${ROUND_MS} ms, stall = a 1 ms timer > ${STALL_MS} ms late; coalesceMs ${COALESCE_MS}`,
  `cores: ${pinNote}`,
]);
interface Arm {
  readonly name: string;
  readonly sliceMs: number | undefined;
  readonly pinned: boolean;
}
const arms: Arm[] = [];
for (const pinned of pinModes) {
  const suffix = pinNote.startsWith('pinned') || args.pin === 'both' ? (pinned ? ', pinned' : ', unpinned') : '';
  arms.push({ name: `sync off${suffix}`, sliceMs: undefined, pinned });
  for (const s of SLICES) arms.push({ name: `sync on, slice ${s} ms${suffix}`, sliceMs: s, pinned });
}
const armNamed = new Map(arms.map((a) => [a.name, a]));
// Warm-up: compile the routing and apply paths, and fill the index until its size stops moving — a filling index
// grows its tables (one-off doublings, each a pause proportional to the index) that a replica in steady state
// does not pay again; measuring during the fill would charge them to whichever arm was running.
await round(undefined);
const warm = await warmUntilSteady(async () => (await round(SLICES[0]), local.index.size), { minRounds: 2, tolerance: 0.01, stableRounds: 1, maxRounds: 15 });
const sizeBefore = local.index.size;
const results = await repetitions(
  arms.map((a) => a.name),
  { repetitions: ROUNDS, seed: Number(args.seed) },
  (name) => {
    const arm = armNamed.get(name) as Arm;
    return round(arm.sliceMs, arm.pinned, arm.name);
  },
);
if (pin !== undefined && 'unpin' in pin) pin.unpin();
if (shared !== undefined) {
  await shared.engine.stop();
  await shared.log.close();
}
const cell = (rs: readonly RoundResult[], f: (r: RoundResult) => number, digits: number): string => formatSpread(spread(rs.map(f)), digits);
const med = (arm: string, f: (r: RoundResult) => number): number => spread((results.get(arm) as RoundResult[]).map(f)).median;
const timed = schedstatNote.startsWith('main thread');
const lines = [
  '',
  `Index warm-up: ${describeWarmUp(warm, 0)}; ${sizeBefore} (endpoint, block) entries before the measured rounds, ${local.index.size} after.`,
  '',
  `Request-path cost of sync: ${RATE} local requests/s (128-block prompts, 8 endpoints) while a peer's 1,000 placements/s are applied (sync on) or not (off); ${ROUNDS} rounds of ${ROUND_MS} ms per arm, arms shuffled per round; median [min–max] over rounds.`,
  '',
  '| arm | prepareData+preRequest p50 µs | p99 µs | loop delay p99 ms | loop max ms | minor GCs/s | minor GC ms/s | longest minor GC ms | major GCs/s | applied/s | snapshots written | array buffers held after − before a snapshot write, kB |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const arm of arms) {
  const rs = results.get(arm.name) as RoundResult[];
  lines.push(
    `| ${arm.name} | ${cell(rs, (r) => r.p50, 0)} | ${cell(rs, (r) => r.p99, 0)} | ${cell(rs, (r) => r.loopP99, 2)} | ${cell(rs, (r) => r.loopMax, 1)} | ${cell(rs, (r) => r.minorGcPerS, 1)} | ${cell(rs, (r) => r.minorGcMs, 1)} | ${cell(rs, (r) => r.minorGcMaxMs, 2)} | ${cell(rs, (r) => r.majorGcPerS, 2)} | ${cell(rs, (r) => r.applied, 0)} | ${cell(rs, (r) => r.snapshots, 0)} | ${rs.some((r) => Number.isFinite(r.snapshotArrayBuffersKb)) ? cell(rs.filter((r) => Number.isFinite(r.snapshotArrayBuffersKb)), (r) => r.snapshotArrayBuffersKb, 0) : '—'} |`,
  );
}
lines.push('', `Stalls > ${STALL_MS} ms per round by cause (bench/support/stalls.ts: the run-queue wait, then the collections, then sleep beyond the interval are taken away in turn; "on-CPU" is a stall still over ${STALL_MS} ms after all three — the process's own code). Thread times: ${schedstatNote}.`, '');
if (timed) {
  lines.push(
    '| arm | stalls > 2 ms: total | descheduled | GC | asleep or stolen | on-CPU | worst on-CPU ms in a stall | main thread on-CPU ms/s | run-queue wait ms/s | steal ms/s (all CPUs) | softirqs/s | page faults/s |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const arm of arms) {
    const rs = results.get(arm.name) as RoundResult[];
    lines.push(
      `| ${arm.name} | ${cell(rs, (r) => r.stalls, 0)} | ${cell(rs, (r) => r.descheduled, 0)} | ${cell(rs, (r) => r.gcCaused, 0)} | ${cell(rs, (r) => r.asleep, 0)} | **${cell(rs, (r) => r.onCpu, 0)}** | ${cell(rs, (r) => r.worstOnCpuMs, 2)} | ${cell(rs, (r) => r.threadCpuMsPerS, 0)} | ${cell(rs, (r) => r.threadWaitMsPerS, 1)} | ${cell(rs, (r) => r.stealMsPerS, 1)} | ${cell(rs, (r) => r.softirqsPerS, 0)} | ${cell(rs, (r) => r.faultsPerS, 0)} |`,
    );
  }
} else {
  lines.push('| arm | stalls > 2 ms: total | of which a GC overlapped | beyond GC | worst beyond-GC ms |', '|---|---|---|---|---|');
  for (const arm of arms) {
    const rs = results.get(arm.name) as RoundResult[];
    lines.push(`| ${arm.name} | ${cell(rs, (r) => r.stalls, 0)} | ${cell(rs, (r) => r.stallsWithGc, 0)} | ${cell(rs, (r) => r.stallsBeyondGc, 0)} | ${cell(rs, (r) => r.worstBeyondGcMs, 2)} |`);
  }
}
lines.push(
  '',
  `What each round's heap took (${COLLECT ? "before each round, outside the measured window: 3 s of the round's load, then a full collection" : 'no collection between rounds (--collect off)'}). Growth: from the first scavenge of the round's second half to its last, halves in which a mark-compact ran left out (it frees what it finds dead); the old generation read just after each scavenge, the array buffers (V8's external memory) 50 ms after it, once V8 has freed the dead young ones. Allocated: every array buffer, short-lived ones included (a lower bound, from 100 ms readings). V8 starts a mark-compact when the old generation plus the external memory added since the last one come within one young generation (16 MB) of its limit, and it counts a young array buffer there until the scavenge that frees it: with a scavenge every T s, allocating A kB/s of array buffers takes up to A × T kB of the headroom at each scavenge's eve, and the growth g kB/s (old generation + array buffers) takes the rest — in session 10's runs the limit was 45 MB at 22 MB live, ≈ 7 MB of headroom, so a mark-compact every ≈ (7,000 − A × T) / g s.`,
  '',
  '| arm | rounds counted | old generation growth kB/s | array buffers growth kB/s | array buffers allocated kB/s | scavenges/s |',
  '|---|---|---|---|---|---|',
);
for (const arm of arms) {
  const all = results.get(arm.name) as RoundResult[];
  const rs = all.filter((r) => Number.isFinite(r.oldGrowthKbPerS));
  lines.push(`| ${arm.name} | ${rs.length} of ${all.length} | ${rs.length > 0 ? cell(rs, (r) => r.oldGrowthKbPerS, 0) : '—'} | ${rs.length > 0 ? cell(rs, (r) => r.arrayBuffersGrowthKbPerS, 0) : '—'} | ${cell(all, (r) => r.arrayBuffersAllocKbPerS, 0)} | ${cell(all, (r) => r.minorGcPerS, 1)} |`);
}
lines.push('');
for (const arm of arms.filter((a) => a.sliceMs !== undefined)) {
  const off = (arms.find((a) => a.sliceMs === undefined && a.pinned === arm.pinned) as Arm).name;
  const cmp = (f: (r: RoundResult) => number): string => `${med(arm.name, f)} vs ${med(off, f)}`;
  lines.push(
    `${arm.name} vs ${off}: ${RATE > 0 ? `p99 ${(med(arm.name, (r) => r.p99) - med(off, (r) => r.p99)).toFixed(0)} µs (×${(med(arm.name, (r) => r.p99) / med(off, (r) => r.p99)).toFixed(2)})` : 'no routed requests (--rate 0)'}; loop delay p99 ×${(med(arm.name, (r) => r.loopP99) / med(off, (r) => r.loopP99)).toFixed(2)}; stalls/round ${cmp((r) => r.stalls)}${timed ? `, on-CPU ${cmp((r) => r.onCpu)}` : `, beyond GC ${cmp((r) => r.stallsBeyondGc)}`}.`,
  );
}
lines.push('', ...stallReport(arms.map((a) => a.name)));
if (PROFILE) {
  lines.push('', 'Profiled stalls (--profile-stalls: V8 sampling every 200 µs during every measured round, which slows the process, so these rounds are not the figures above\'s equal): the stacks sampled inside each cause\'s stall windows, innermost frame first, top 6 per arm and cause.', '');
  for (const [key, m] of [...stallStacks].sort()) {
    lines.push(`${key}: ${profiledStalls.get(key)} stalls`);
    for (const [stack, n] of [...m].sort((a, b) => b[1] - a[1]).slice(0, 6)) lines.push(`    ${(n * 0.2).toFixed(1)} ms  ${stack}`);
  }
}
lines.push(`# load average at end: ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' / ')} (at start ${info.loadAverage.map((x) => x.toFixed(2)).join(' / ')})`);
process.stdout.write(lines.join('\n') + '\n');
await redis?.kill();
