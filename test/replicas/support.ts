/** Replicas of the embedded gateway sharing state over a real Redis, for the failure drills. */
import type { Plugin } from '../../src/framework/plugin.ts';
import type { ResponseCompleteHook, ResponseInfo } from '../../src/framework/requestcontrol.ts';
import { createLogger, silentLogger } from '../../src/observability/logger.ts';
import { ApproxPrefixCacheProducer } from '../../src/plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { InFlightLoadProducer } from '../../src/plugins/requestcontrol/inflight-load-producer/index.ts';
import { startEpp } from '../../src/server/bootstrap.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';

export const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

/** Counts completion hooks per request id, across every replica of a test. */
export class CompletionCounter {
  readonly counts = new Map<string, number>();
  plugin(name: string): Plugin & ResponseCompleteHook {
    return {
      typedName: { type: 'completion-counter', name },
      onResponseComplete: (response: ResponseInfo) => {
        const id = response.request.requestId;
        this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
      },
    };
  }
  /** Ids whose hooks ran other than exactly once. */
  notExactlyOnce(): string[] {
    return [...this.counts].filter(([, n]) => n !== 1).map(([id, n]) => `${id}×${n}`);
  }
}

/**
 * A replica's config. `prefixParameters`: YAML flow mapping for the approximate producer's parameters, e.g.
 * `{autoTune: false, blockSizeTokens: 32}` for a peer that hashes other blocks than the rest.
 */
export function replicaConfig(redisUrl: string, withCounter = true, prefixParameters?: string): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
${prefixParameters === undefined ? '' : `  parameters: ${prefixParameters}\n`}- type: inflight-load-producer
- type: prefix-cache-scorer
- type: queue-scorer
- type: token-load-scorer
${withCounter ? '- type: completion-counter\n' : ''}- type: metrics-data-source
- type: core-metrics-extractor
- name: ha
  type: redis-cross-replica-syncer
  parameters:
    url: ${redisUrl}
    snapshotIntervalSeconds: 1
    readBlockMs: 200
    commandTimeoutMs: 300
    retentionSeconds: 30
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: queue-scorer
    weight: 1
  - pluginRef: token-load-scorer
    weight: 1
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
  crossReplica:
    syncerPluginRef: ha
    syncInterval: 50ms
`;
}

export async function startReplica(
  redisUrl: string,
  endpoints: readonly string[],
  counter: CompletionCounter,
  name: string,
  prefixParameters?: string,
): Promise<RunningEpp> {
  return startEpp({
    grpcPort: 0,
    extProc: false,
    grpcHealthPort: -1,
    secureServing: false,
    host: '127.0.0.1',
    gateway: { port: 0, host: '127.0.0.1' },
    config: { text: replicaConfig(redisUrl, true, prefixParameters), origin: `replica ${name}` },
    discovery: { endpoints, refreshIntervalMs: 50 },
    registerPlugins: (r) => r.register('completion-counter', (n) => counter.plugin(n)),
    logger: process.env.EPP_TEST_LOG === name ? createLogger({ verbosity: 4 }) : silentLogger(),
    shutdownGraceMs: 1000,
    // Faster failure detection than production defaults, so the drills stay short.
    crossReplica: { settings: { watchdogMs: 500, backoffMaxMs: 300 } },
  });
}

export function prefixProducer(epp: RunningEpp): ApproxPrefixCacheProducer {
  return epp.config.plugins.find((p): p is ApproxPrefixCacheProducer => p instanceof ApproxPrefixCacheProducer) as ApproxPrefixCacheProducer;
}

export function loadProducer(epp: RunningEpp): InFlightLoadProducer {
  return epp.config.plugins.find((p): p is InFlightLoadProducer => p instanceof InFlightLoadProducer) as InFlightLoadProducer;
}

/** Every (endpoint, hash) pair of a replica's prefix index. */
export function pairs(epp: RunningEpp): Set<string> {
  const ix = prefixProducer(epp).index;
  const out = new Set<string>();
  for (const e of ix.endpoints()) for (const h of ix.hashesOf(e)) out.add(`${e}|${h}`);
  return out;
}

export interface Completion {
  readonly status: number;
  readonly pod: string | null;
  readonly ms: number;
}

/** One non-streaming completion through a replica's gateway. */
export async function complete(port: number, prompt: string, maxTokens = 4): Promise<Completion> {
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: maxTokens }),
  });
  await res.arrayBuffer();
  return { status: res.status, pod: res.headers.get('x-inference-pod'), ms: performance.now() - started };
}

/** A prompt of ~`blocks` 64-character blocks, distinct per `key`. */
export function prompt(key: string, blocks = 8): string {
  return `${key}: ${'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod '.repeat(blocks)}`.slice(0, 64 * blocks);
}

/** Completions sent through replicas, every result kept for a drill's final "no request failed" check. */
export class RequestLog {
  readonly results: Completion[] = [];
  async send(epp: RunningEpp, prompt: string): Promise<Completion> {
    const r = await complete(epp.gatewayPort as number, prompt);
    this.results.push(r);
    return r;
  }
}
