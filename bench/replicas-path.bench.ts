/**
 * `npm run bench:replicas -- --path` companion: the request-path cost of sync, isolated. One replica's prefix
 * producer (8 endpoints, 128-block prompts) routes requests at a steady rate while a peer publishes 1,000
 * placements/s (128 hashes each) that this replica applies through the real sync engine (memory transport, real
 * timers) — "sync on" — or nothing — "sync off". Rounds alternate on/off in the same process; reported: the
 * per-request time of prepareData + preRequest (the request-path work the index does) p50/p99, and event-loop
 * delay p99/max, medians over rounds.
 *
 *   node --import tsx bench/replicas-path.bench.ts [--rounds 6] [--round-ms 2000] [--rate 500]
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { SyncEngine } from '../src/datalayer/sync/engine.ts';
import { MemoryBus, MemoryLink } from '../src/datalayer/sync/memory-transport.ts';
import type { Endpoint } from '../src/framework/datalayer.ts';
import type { IndexSnapshotEntry, PlacementSink, ReplicatedIndex } from '../src/framework/replication.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { approxPrefixCacheProducerFactory, type ApproxPrefixCacheProducer } from '../src/plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { realTimers } from '../src/util/timers.ts';
import { systemClock } from '../src/util/clock.ts';
import { createRandomSource } from '../src/util/random.ts';
import { makeCandidate, makeEndpoint, makeRequest, makeSchedulingResult } from '../test/support/plugin-fixtures.ts';
import { quantiles } from './routing/stats.ts';
import { InFlightTracker } from '../src/runtime/inflight.ts';
import { PluginMetricSources } from '../src/runtime/plugin-metrics.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '6' }, 'round-ms': { type: 'string', default: '2000' }, rate: { type: 'string', default: '200' } } });
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args['round-ms']);
const RATE = Number(args.rate);

const endpoints: Endpoint[] = Array.from({ length: 8 }, (_, i) => makeEndpoint(`ep${i}`));
const handle = { logger: silentLogger(), clock: systemClock, random: createRandomSource(1), plugin: () => undefined, endpoints: () => endpoints, inflight: new InFlightTracker(), metrics: new PluginMetricSources() };
const local = approxPrefixCacheProducerFactory('prefix', { autoTune: false, lruCapacityPerServer: 31_250 }, handle) as ApproxPrefixCacheProducer;
/** The peer: a replicated index whose placements are precomputed (its own hashing is not this replica's cost). */
class PeerIndex implements ReplicatedIndex {
  readonly typedName = { type: 'approx-prefix-cache-producer', name: 'prefix' };
  sink: PlacementSink | undefined;
  replicationFingerprint(): number {
    return local.replicationFingerprint();
  }
  currentBlockSizeTokens(): number {
    return local.currentBlockSizeTokens();
  }
  attachPlacementSink(sink: PlacementSink | undefined): void {
    this.sink = sink;
  }
  applyRemotePlacement(): boolean {
    return true;
  }
  exportSnapshot(): IndexSnapshotEntry[] {
    return [];
  }
  importSnapshot(): void {}
}
const peer = new PeerIndex();
const peerPlacements = Array.from({ length: 4096 }, (_, i) => ({
  endpoint: `ep${i % 8}`,
  // 96 shared-prefix blocks from 256 groups + 32 unique ones, like workload G of the design note.
  hashes: [...Array.from({ length: 96 }, (_, j) => BigInt((i % 256) * 1000 + j)), ...Array.from({ length: 32 }, (_, j) => BigInt(1e9 + i * 100 + j))],
}));
const rnd = createRandomSource(7);
const groups = Array.from({ length: 256 }, (_, g) => `group ${g} `.padEnd(64 * 96, `system prompt ${g} `));
const prompts = Array.from({ length: 1024 }, (_, i) => `${groups[i % groups.length]}${`question ${i} `.padEnd(64 * 32, 'x')}`);
const promptText = (): string => prompts[Math.floor(rnd.next() * prompts.length)] as string;

function route(p: ApproxPrefixCacheProducer): number {
  const request = makeRequest({ payload: { model: 'm', prompt: promptText() } });
  const candidates = endpoints.map((e) => makeCandidate(e));
  const t0 = performance.now();
  p.prepareData(request, candidates, new AbortController().signal);
  p.preRequest(request, makeSchedulingResult({ default: [candidates[Math.floor(rnd.next() * candidates.length)]!] }), new AbortController().signal);
  return performance.now() - t0;
}

async function round(syncOn: boolean): Promise<{ p50: number; p99: number; loopP99: number; loopMax: number; applied: number }> {
  const bus = new MemoryBus({ clock: systemClock, timers: realTimers });
  const mk = (p: ReplicatedIndex, name: string) =>
    new SyncEngine({ transport: new MemoryLink(bus, realTimers, createRandomSource(3)), origin: `${name}:${Math.random().toString(16).slice(2, 10)}`, indexes: [p], gauges: [], clock: systemClock, timers: realTimers, logger: silentLogger(), settings: { coalesceMs: 0 } });
  const a = syncOn ? mk(local, 'local') : undefined;
  const b = syncOn ? mk(peer, 'peer') : undefined;
  await Promise.all([a?.start(), b?.start()]);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const times: number[] = [];
  const t0 = performance.now();
  let sentPeer = 0;
  let sentLocal = 0;
  while (performance.now() - t0 < ROUND_MS) {
    const elapsed = performance.now() - t0;
    // The peer publishes 1,000 placements/s; this replica routes RATE requests/s.
    for (let k = 0; syncOn && sentPeer < elapsed && k < 5; k++) {
      const pl = peerPlacements[sentPeer % peerPlacements.length]!;
      peer.sink?.enqueuePlacement(pl.endpoint, 16, pl.hashes);
      sentPeer++;
    }
    for (let k = 0; sentLocal < (elapsed * RATE) / 1000 && k < 5; k++) {
      times.push(route(local));
      sentLocal++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  loop.disable();
  const applied = a?.stats.appliedPlacements ?? 0;
  await Promise.all([a?.stop(), b?.stop()]);
  const q = quantiles(times.slice(Math.floor(times.length / 10)));
  return { p50: q.p50 * 1000, p99: q.p99 * 1000, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6, applied };
}

const on: Awaited<ReturnType<typeof round>>[] = [];
const off: Awaited<ReturnType<typeof round>>[] = [];
await round(false); // warm-up
for (let i = 0; i < ROUNDS; i++) {
  off.push(await round(false));
  on.push(await round(true));
}
const med = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? (s[(s.length - 1) >> 1] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const row = (name: string, rs: typeof on): string =>
  `| ${name} | ${med(rs.map((r) => r.p50)).toFixed(1)} | ${med(rs.map((r) => r.p99)).toFixed(1)} | ${med(rs.map((r) => r.loopP99)).toFixed(2)} | ${Math.max(...rs.map((r) => r.loopMax)).toFixed(2)} | ${med(rs.map((r) => (r.applied * 1000) / ROUND_MS)).toFixed(0)} |`;
process.stdout.write(
  [
    `Request-path cost of sync: ${RATE} local requests/s (128-block prompts, 8 endpoints) while a peer's 1,000 placements/s are applied (sync on) or not (off); ${ROUNDS} alternated rounds of ${ROUND_MS} ms, medians.`,
    '',
    '| arm | prepareData+preRequest p50 µs | p99 µs | event-loop delay p99 ms | max ms (worst round) | applied placements/s |',
    '|---|---|---|---|---|---|',
    row('sync off', off),
    row('sync on', on),
    '',
    `p99 on − off: ${(med(on.map((r) => r.p99)) - med(off.map((r) => r.p99))).toFixed(1)} µs; ratio ${(med(on.map((r) => r.p99)) / med(off.map((r) => r.p99))).toFixed(2)}.`,
  ].join('\n') + '\n',
);
