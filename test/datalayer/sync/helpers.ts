/** A small fleet of sync engines over the memory transport, on manual time (no sleeps). */
import type { Logger } from '../../../src/framework/plugin.ts';
import { fromHalves, type BlockHashHalves, type EndpointGauge, type IndexSnapshotEntry, type PlacementSink, type ReplicatedGauges, type ReplicatedIndex } from '../../../src/framework/replication.ts';
import { SyncEngine, type SyncMetricsSink, type SyncSettings } from '../../../src/datalayer/sync/engine.ts';
import { MemoryBus, MemoryLink, type LinkFaults } from '../../../src/datalayer/sync/memory-transport.ts';
import { PrefixIndex } from '../../../src/plugins/requestcontrol/approx-prefix-cache-producer/prefix-index.ts';
import { createRandomSource } from '../../../src/util/random.ts';
import { ManualTime } from '../../flowcontrol/helpers.ts';
import { RecordingLogger } from '../../support/doubles.ts';

/** A replicated index over the real PrefixIndex; `route` is what preRequest does. */
export class TestIndex implements ReplicatedIndex {
  readonly typedName = { type: 'test-index', name: 'prefix' };
  readonly index = new PrefixIndex();
  sink: PlacementSink | undefined;
  blockSizeTokens = 16;
  fingerprint = 42;
  constructor(readonly capacity = 1000) {}
  route(endpoint: string, hashes: bigint[]): void {
    this.index.add(endpoint, this.capacity, hashes);
    this.sink?.enqueuePlacement(endpoint, this.blockSizeTokens, hashes);
  }
  replicationFingerprint(): number {
    return this.fingerprint;
  }
  attachPlacementSink(sink: PlacementSink | undefined): void {
    this.sink = sink;
  }
  currentBlockSizeTokens(): number {
    return this.blockSizeTokens;
  }
  applyRemotePlacement(endpoint: string, blockSizeTokens: number, hashes: BlockHashHalves): boolean {
    if (blockSizeTokens !== this.blockSizeTokens) return false;
    this.index.addHalves(endpoint, this.capacity, hashes.hi, hashes.lo, hashes.n);
    return true;
  }
  /** Blocks per snapshot piece: small, so the syncer's joining of an endpoint's pieces is always exercised. */
  snapshotPieceBlocks = 4;
  /** Blocks exported / imported so far (the tests charge virtual CPU per block through these). */
  onExport: (blocks: number) => void = () => undefined;
  onImport: (blocks: number) => void = () => undefined;
  /** Every piece in the same arrays, as the prefix producer does (the syncer must encode each as it comes). */
  *exportSnapshot(): Generator<IndexSnapshotEntry> {
    const into = { hi: new Uint32Array(this.snapshotPieceBlocks), lo: new Uint32Array(this.snapshotPieceBlocks) };
    for (const endpoint of [...this.index.endpoints()]) {
      for (const hashes of this.index.walkHalves(endpoint, this.snapshotPieceBlocks, into)) {
        this.onExport(hashes.n);
        yield { endpoint, capacityBlocks: this.capacity, hashes, endpointBlocks: this.index.blocksOf(endpoint) };
      }
    }
  }
  importSnapshot(entries: readonly IndexSnapshotEntry[]): void {
    for (const e of entries) {
      this.onImport(e.hashes.n);
      this.index.add(e.endpoint, e.capacityBlocks, fromHalves(e.hashes).reverse());
    }
  }
  /** Every (endpoint, hash) pair, sorted: equal sets mean converged indexes. */
  pairs(): string[] {
    const out: string[] = [];
    for (const e of this.index.endpoints()) for (const h of this.index.hashesOf(e)) out.push(`${e}|${h}`);
    return out.sort();
  }
}

export class TestGauges implements ReplicatedGauges {
  readonly typedName = { type: 'test-gauges', name: 'load' };
  local: EndpointGauge[] = [];
  readonly remote = new Map<string, { gauges: readonly EndpointGauge[]; expiresAtMs: number }>();
  constructor(readonly now: () => number) {}
  localGauges(): EndpointGauge[] {
    return this.local;
  }
  setRemoteGauges(origin: string, gauges: readonly EndpointGauge[], expiresAtMs: number): void {
    this.remote.set(origin, { gauges, expiresAtMs });
  }
  dropRemoteGauges(origin: string): void {
    this.remote.delete(origin);
  }
  /** Σ of fresh remote requests on `endpoint`. */
  remoteRequests(endpoint: string): number {
    let n = 0;
    for (const r of this.remote.values()) if (r.expiresAtMs > this.now()) for (const g of r.gauges) if (g.endpoint === endpoint) n += g.requests;
    return n;
  }
}

export interface Replica {
  readonly name: string;
  readonly index: TestIndex;
  readonly gauges: TestGauges;
  readonly link: MemoryLink;
  readonly engine: SyncEngine;
  readonly logger: RecordingLogger;
  readonly events: string[];
}

export class Fleet {
  readonly time = new ManualTime(1_700_000_000_000);
  readonly bus: MemoryBus;
  readonly replicas: Replica[] = [];
  readonly random = createRandomSource(7);
  cpu = 0;
  /** The virtual CPU clock at every yield to the loop, of any replica (the longest stretch between two is a stall). */
  readonly cpuAtYield: number[] = [];

  constructor(retentionMs = 30_000) {
    this.bus = new MemoryBus({ clock: this.time, timers: this.time, retentionMs });
  }

  add(name: string, o: { settings?: Partial<SyncSettings>; faults?: Partial<LinkFaults>; capacity?: number; withIndex?: boolean; setup?: (index: TestIndex) => void } = {}): Replica {
    const index = new TestIndex(o.capacity ?? 1000);
    o.setup?.(index);
    const gauges = new TestGauges(() => this.time.now());
    const link = new MemoryLink(this.bus, this.time, createRandomSource(this.replicas.length + 11), o.faults);
    const logger = new RecordingLogger();
    const events: string[] = [];
    const metrics: SyncMetricsSink = {
      up: (up) => events.push(`up=${up}`),
      warm: (w) => events.push(`warm=${w}`),
    };
    const engine = new SyncEngine({
      transport: link,
      origin: `${name}:00000001`,
      indexes: o.withIndex === false ? [] : [index],
      gauges: [gauges],
      settings: { snapshotIntervalMs: 10_000, ...o.settings },
      clock: this.time,
      timers: this.time,
      logger: logger as unknown as Logger,
      metrics,
      // Each CPU reading advances 0.1 ms: a slice of 0.5 ms holds a handful of placement checks.
      cpuNow: () => (this.cpu += 0.1),
      yieldToLoop: (fn) => {
        this.cpuAtYield.push(this.cpu);
        queueMicrotask(fn);
      },
    });
    const r = { name, index, gauges, link, engine, logger, events };
    this.replicas.push(r);
    return r;
  }

  /** Advances manual time in `stepMs` steps, letting promise chains settle after each step. */
  async run(ms: number, stepMs = 1): Promise<void> {
    for (let t = 0; t < ms; t += stepMs) {
      this.time.advance(stepMs);
      await settle();
    }
  }

  async stopAll(): Promise<void> {
    const stops = this.replicas.map((r) => r.engine.stop());
    await this.run(1500, 50);
    await Promise.all(stops);
  }
}

/** Lets every queued promise continuation run (one real macrotask turn; no time passes on the manual clock). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The longest virtual CPU time between two consecutive yields recorded from `from` on (ms). */
export function longestStretch(fleet: Fleet, from: number): number {
  let worst = 0;
  for (let i = from + 1; i < fleet.cpuAtYield.length; i++) worst = Math.max(worst, (fleet.cpuAtYield[i] as number) - (fleet.cpuAtYield[i - 1] as number));
  return worst;
}

export function hashes(seed: number, n: number): bigint[] {
  return Array.from({ length: n }, (_, i) => BigInt(seed) * 1_000_003n + BigInt(i));
}
