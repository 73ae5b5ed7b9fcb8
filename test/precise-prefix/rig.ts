/**
 * A simulated fleet publishing KV events over ZeroMQ (ephemeral loopback ports), a precise producer subscribed
 * to every server, and a router loop that scores with the producer, picks, and sends the request to the chosen
 * simulator for real — the path a vLLM deployment uses.
 */
import { startFleet, type Fleet, type FleetServer } from '../../src/sim/index.ts';
import type { SimServerOptions } from '../../src/sim/index.ts';
import { wireHash } from '../../src/sim/kv-publisher.ts';
import { prefixCacheMatchInfoOf } from '../../src/framework/attributes.ts';
import { kvEventsLabels, type Endpoint } from '../../src/framework/datalayer.ts';
import type { ApiType } from '../../src/framework/request.ts';
import type { Candidate } from '../../src/framework/scheduling.ts';
import {
  PrecisePrefixCacheProducer,
  precisePrefixCacheProducerFactory,
} from '../../src/plugins/requestcontrol/precise-prefix-cache-producer/index.ts';
import { TokenProducer, tokenProducerFactory } from '../../src/plugins/requestcontrol/token-producer/index.ts';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult, type TestHandle } from '../support/plugin-fixtures.ts';
import { waitUntil } from '../support/wait.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEpp } from '../../src/server/bootstrap.ts';
import { Xoshiro128StarStar } from '../../src/util/random.ts';

/** The EPP's embedded gateway (no ext_proc) on loopback with `configText`, endpoints from an endpoints file. */
export function startGatewayEpp(o: { configText: string; origin: string; endpointsFile: string; seed: number }) {
  return startEpp({
    grpcPort: 0, extProc: false, grpcHealthPort: -1, host: '127.0.0.1', secureServing: false,
    gateway: { port: 0 }, metricsPort: 0,
    discovery: { endpointsFile: o.endpointsFile, refreshIntervalMs: 20 },
    config: { text: o.configText, origin: o.origin },
    logger: silentLogger(), shutdownGraceMs: 200,
    random: new Xoshiro128StarStar(o.seed), // random draws (exploration, tie-breaks) are reproducible
  });
}

export const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

/** Fast simulated servers: tiny step costs, no jitter, a small cache so evictions happen. */
export const FAST: Partial<SimServerOptions> = {
  stepOverheadMs: 1,
  decodeTimePerSeqMs: 0.01,
  prefillTimePerTokenMs: 0.0005,
  kvReadTimePer1kTokensMs: 0,
  stepJitter: 0,
  kvCacheSize: 48,
  maxModelLen: 512,
  kvEventsEndpoint: 'tcp://127.0.0.1:*',
  loras: { 'lora-a': '/adapters/a' },
  maxLoras: 2,
};

export interface Rig {
  readonly fleet: Fleet;
  readonly endpoints: Endpoint[];
  readonly handle: TestHandle;
  readonly producer: PrecisePrefixCacheProducer;
  readonly tokens: TokenProducer;
  /** Scores, picks (most matched blocks, ties round-robin), routes for real; returns what happened. */
  route(api: ApiType, body: Record<string, unknown>, pick?: (c: readonly Candidate[]) => Candidate): Promise<Routed>;
  /** Waits until every server's last published batch is applied and no recovery is running. */
  quiesce(): Promise<void>;
  close(): Promise<void>;
}

export interface Routed {
  readonly endpoint: string;
  readonly predictedTokens: number;
  readonly cachedTokens: number;
  readonly promptTokens: number;
  readonly candidates: readonly Candidate[];
}

export async function startRig(o: {
  servers?: number;
  serverOptions?: Partial<SimServerOptions>;
  perServer?: (i: number) => Partial<SimServerOptions>;
  replay?: boolean;
  producer?: Record<string, unknown>;
  tokenProducer?: Record<string, unknown>;
}): Promise<Rig> {
  const fleet = await startFleet({
    servers: o.servers ?? 3,
    basePort: 0,
    serverOptions: { ...FAST, ...(o.replay === true ? { kvEventsReplayEndpoint: 'tcp://127.0.0.1:*' } : {}), ...o.serverOptions },
    perServerOptions: o.perServer,
  });
  const endpoints = fleet.servers.map((s) =>
    makeEndpoint(s.name, {}, {
      address: '127.0.0.1',
      port: s.port,
      labels: kvEventsLabels(s),
    }),
  );
  const handle = makeHandle({ endpoints });
  const producer = precisePrefixCacheProducerFactory('precise', { ...o.producer }, handle) as PrecisePrefixCacheProducer;
  const tokens = tokenProducerFactory('tokens', o.tokenProducer ?? { backend: 'sim' }, handle) as TokenProducer;
  producer.reconcile();
  // ZeroMQ's slow joiner: batches published before the subscription reaches the PUB are lost. Wait for it.
  await waitUntil(() => fleet.servers.every((s) => s.kvEventsSubscriptions() > 0), 'every simulator to see the subscription');
  let rr = 0;
  const server = (name: string): FleetServer => fleet.servers.find((s) => s.name === name) as FleetServer;
  const rig: Rig = {
    fleet,
    endpoints,
    handle,
    producer,
    tokens,
    async route(api, body, pick) {
      const request = makeRequest({ apiType: api, payload: body, targetModel: String(body.model) });
      const candidates = endpoints.map((e) => makeCandidate(e));
      const signal = new AbortController().signal;
      await tokens.prepareData(request, candidates, signal);
      await producer.prepareData(request, candidates);
      const match = (c: Candidate) => prefixCacheMatchInfoOf(c.attributes)?.matchBlocks ?? 0;
      const best = Math.max(...candidates.map(match));
      const tied = candidates.filter((c) => match(c) === best);
      const chosen = pick?.(candidates) ?? (tied[rr++ % tied.length] as Candidate);
      await producer.preRequest(request, makeSchedulingResult({ default: [chosen] }), signal);
      const name = chosen.endpoint.metadata.name;
      const path = api === 'chat-completions' ? '/v1/chat/completions' : '/v1/completions';
      const res = await fetch(`${server(name).url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ max_tokens: 4, ...body }),
      });
      const json = (await res.json()) as { usage?: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens: number } } };
      if (!res.ok || json.usage === undefined) throw new Error(`request to ${name} failed: ${res.status} ${JSON.stringify(json)}`);
      const usage = { promptTokens: json.usage.prompt_tokens, completionTokens: 0, totalTokens: 0, cachedTokens: json.usage.prompt_tokens_details?.cached_tokens ?? 0 };
      const B = producer.config.blockSize;
      const predictedBlocks = Math.min(match(chosen), Math.floor((usage.promptTokens - 1) / B));
      await producer.onResponseComplete(
        { request, targetEndpoint: chosen.endpoint, status: 200, headers: {}, streaming: false, usage, proxyMetadata: {}, dynamicMetadata: {} },
        { kind: 'success', usage },
      );
      return { endpoint: name, predictedTokens: predictedBlocks * B, cachedTokens: usage.cachedTokens, promptTokens: usage.promptTokens, candidates };
    },
    async quiesce() {
      const caughtUp = (s: FleetServer): boolean => {
        const st = s.state();
        const sync = producer.syncOf(s.name);
        return st.running + st.waiting === 0 && sync !== undefined && sync.phase !== 'REPLAYING' &&
          (s.sim.kvEvents.lastSeq < 0 || sync.lastSeq === BigInt(s.sim.kvEvents.lastSeq));
      };
      const state = () => fleet.servers.map((s) => `${s.name}: ${producer.phaseOf(s.name)} seq ${producer.syncOf(s.name)?.lastSeq} / ${s.sim.kvEvents.lastSeq}, ${JSON.stringify(s.state())}`).join('; ');
      await waitUntil(() => fleet.servers.every(caughtUp), 'the index to catch up with every simulator', 10_000).catch((err: Error) => {
        throw new Error(`${err.message} (${state()})`);
      });
      for (const s of fleet.servers) await producer.syncOf(s.name)?.idle;
    },
    async close() {
      producer.close();
      await fleet.close();
    },
  };
  return rig;
}

/** What a simulator really caches, from its `/kv_state` dump: engine keys (wire form) → copies, and our request keys. */
export async function simCache(rig: Rig, s: FleetServer): Promise<{ engine: Map<string, number>; requestKeys: Set<string> }> {
  const dump = (await (await fetch(`${s.url}/kv_state`)).json()) as {
    blocks: { hash: string; parent: string | null; token_ids: number[]; lora_name: string | null; extra_keys: string[] | null; copies: number }[];
  };
  const engine = new Map<string, number>();
  const rk = new Map<string, [number, number]>();
  const keyer = rig.producer.keyer;
  const t = new Uint32Array(2);
  const { extraWords } = await import('../../src/plugins/requestcontrol/precise-prefix-cache-producer/request-keys.ts');
  const { stripLora } = await import('../../src/plugins/requestcontrol/precise-prefix-cache-producer/ingest.ts');
  for (const b of dump.blocks) {
    engine.set(b.hash, b.copies);
    const parent = b.parent === null ? keyer.root(b.lora_name ?? '') : rk.get(b.parent);
    if (parent === undefined) continue; // orphaned in the sim too: its parent was evicted first
    keyer.next(parent[0] as number, parent[1] as number, b.token_ids, 0, extraWords(stripLora(b.extra_keys, b.lora_name)), t);
    rk.set(b.hash, [t[0] as number, t[1] as number]);
  }
  return { engine, requestKeys: new Set([...rk.values()].map(([h, l]) => `${h}:${l}`)) };
}

export { wireHash };
