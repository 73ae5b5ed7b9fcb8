/**
 * `precise-prefix-cache-scorer` (llm-d's combined type): the precise producer and the prefix scorer in one plugin,
 * configured with llm-d's parameters, so an llm-d `EndpointPickerConfig` that uses it loads and routes unchanged.
 *
 * - As a data producer it is `precise-prefix-cache-producer` (KV events → index → `PrefixCacheMatchInfo` per
 *   candidate, speculative entries, DESYNCED → approximate fallback); as a scorer it is `prefix-cache-scorer`
 *   (matchBlocks / totalBlocks). Token ids come from `token-producer` (added automatically: `render` on the
 *   engine), which replaces llm-d's tokenizer pool.
 * - Event transport, as llm-d: `kvEventsConfig.discoverPods: false` with `zmqEndpoint` (e.g. `tcp://*:5557`)
 *   binds one SUB socket that every engine connects to, streams told apart by topic `kv@<ip>:<port>@<model>`;
 *   otherwise the EPP dials every pool endpoint at `podDiscoveryConfig.socketPort` (default 5557).
 * - llm-d fields with no counterpart here (hash seed and algorithm: engine hashes are opaque ids in our dual-key
 *   index; external index backends; tokenizer pool settings) are accepted, and named in one warning.
 * - Any parameter of `precise-prefix-cache-producer` (`tierWeights`, `events`, `desync`, …) may be given as well.
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { Logger, PluginFactory, PluginHandle } from '../../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { Candidate, CycleState, Scorer } from '../../../../framework/scheduling.ts';
import { parseGoDuration } from '../../../../util/duration.ts';
import { BoundSubscriber } from '../../../requestcontrol/precise-prefix-cache-producer/bound-subscriber.ts';
import {
  PrecisePrefixCacheProducer,
  precisePrefixParametersSchema,
  type PrecisePrefixCacheConfig,
} from '../../../requestcontrol/precise-prefix-cache-producer/index.ts';
import { PrefixCacheScorer } from '../prefix-cache-scorer/index.ts';

export const PRECISE_PREFIX_CACHE_SCORER_TYPE = 'precise-prefix-cache-scorer';

const positiveInt = z.number({ error: 'expected a positive integer' }).int('expected a positive integer').positive('expected a positive integer');
const port = z.number({ error: 'expected a TCP port (1-65535)' }).int('expected a TCP port (1-65535)').min(1, 'expected a TCP port (1-65535)').max(65535, 'expected a TCP port (1-65535)');
const anyObject = z.record(z.string(), z.unknown(), { error: 'expected an object' });
const tokenProcessor = z.strictObject({
  blockSize: positiveInt.optional(),
  hashSeed: z.string({ error: 'expected a string' }).optional(),
  hashAlgo: z.string({ error: 'expected a string' }).optional(),
});
/** Go's `time.Duration` in JSON is nanoseconds; llm-d docs also write `2s`. */
const duration = z.union([z.number().nonnegative(), z.string()], { error: 'expected a duration (nanoseconds, or a string such as "2s")' });

const llmdFields = {
  tokenProcessorConfig: tokenProcessor.optional(),
  indexerConfig: z
    .strictObject({
      tokenProcessorConfig: tokenProcessor.optional(),
      tokenizersPoolConfig: anyObject.optional(),
      kvBlockIndexConfig: anyObject.optional(),
      prefixStoreConfig: anyObject.optional(),
      speculativeIndexing: z.boolean({ error: 'expected a boolean' }).optional(),
    })
    .optional(),
  kvEventsConfig: z
    .strictObject({
      zmqEndpoint: z.string({ error: 'expected a ZeroMQ address such as tcp://*:5557' }).optional(),
      topicFilter: z.string({ error: 'expected a string' }).optional(),
      concurrency: positiveInt.optional(),
      discoverPods: z.boolean({ error: 'expected a boolean' }).optional(),
      podDiscoveryConfig: z
        .strictObject({ socketPort: port.optional(), podLabelSelector: z.string().optional(), podNamespace: z.string().optional() })
        .optional(),
    })
    .optional(),
  speculativeIndexing: z.boolean({ error: 'expected a boolean' }).optional(),
  speculativeTTL: duration.optional(),
};
/** llm-d's fields, plus the producer's own parameters passed through (validated by the producer's schema). */
const parametersSchema = z.strictObject({
  ...llmdFields,
  ...Object.fromEntries(Object.keys(precisePrefixParametersSchema.shape).map((k) => [k, z.unknown().optional()])),
});

export interface PrecisePrefixCacheScorerSettings {
  readonly producer: PrecisePrefixCacheConfig;
  /** The address the shared SUB socket binds (global socket mode), or undefined (dial every endpoint). */
  readonly bindAddress: string | undefined;
  /** llm-d fields accepted without effect here. */
  readonly ignored: readonly string[];
}

/** Maps llm-d's parameters onto the producer's (exported for tests). */
export function precisePrefixScorerSettings(name: string, parameters: unknown): PrecisePrefixCacheScorerSettings {
  const typedName = { type: PRECISE_PREFIX_CACHE_SCORER_TYPE, name };
  const p = parsePluginParameters(typedName, parametersSchema, parameters) as z.infer<z.ZodObject<typeof llmdFields>> & Record<string, unknown>;
  const fail = (field: string, message: string): never => {
    parsePluginParameters(typedName, z.strictObject({ [field]: z.never({ error: message }) }), { [field]: null });
    throw new Error(message);
  };
  const own = Object.fromEntries(Object.keys(precisePrefixParametersSchema.shape).filter((k) => p[k] !== undefined).map((k) => [k, p[k]])) as Record<string, unknown>;
  const ignored: string[] = [];

  const sizes = [
    ['tokenProcessorConfig.blockSize', p.tokenProcessorConfig?.blockSize],
    ['indexerConfig.tokenProcessorConfig.blockSize', p.indexerConfig?.tokenProcessorConfig?.blockSize],
    ['blockSize', own.blockSize],
  ].filter((e): e is [string, number] => e[1] !== undefined);
  if (new Set(sizes.map((e) => e[1])).size > 1) fail('blockSize', `conflicting block sizes (${sizes.map(([f, v]) => `${f}: ${v}`).join(', ')}); give one, equal to vLLM's --block-size`);
  if (sizes.length > 0) own.blockSize = sizes[0]![1];
  for (const tp of ['tokenProcessorConfig', 'indexerConfig.tokenProcessorConfig'] as const) {
    const v = tp === 'tokenProcessorConfig' ? p.tokenProcessorConfig : p.indexerConfig?.tokenProcessorConfig;
    if (v?.hashSeed !== undefined) ignored.push(`${tp}.hashSeed`);
    if (v?.hashAlgo !== undefined) ignored.push(`${tp}.hashAlgo`);
  }
  for (const f of ['tokenizersPoolConfig', 'kvBlockIndexConfig', 'prefixStoreConfig'] as const) if (p.indexerConfig?.[f] !== undefined) ignored.push(`indexerConfig.${f}`);

  const specOn = p.speculativeIndexing ?? p.indexerConfig?.speculativeIndexing;
  if (specOn !== undefined || p.speculativeTTL !== undefined) {
    const spec = { ...((own.speculative as Record<string, unknown> | undefined) ?? {}) };
    if (specOn !== undefined) spec.enabled = specOn;
    if (p.speculativeTTL !== undefined) {
      let ms: number;
      try {
        ms = typeof p.speculativeTTL === 'number' ? p.speculativeTTL / 1e6 : parseGoDuration(p.speculativeTTL);
      } catch (err) {
        return fail('speculativeTTL', (err as Error).message);
      }
      // llm-d: zero means its default.
      if (ms > 0) spec.ttlMs = ms;
    }
    own.speculative = spec;
  }

  const ev = p.kvEventsConfig;
  const events = { ...((own.events as Record<string, unknown> | undefined) ?? {}) };
  if (ev?.topicFilter !== undefined) events.topicFilter = ev.topicFilter;
  if (ev?.podDiscoveryConfig?.socketPort !== undefined) events.socketPort = ev.podDiscoveryConfig.socketPort;
  if (ev?.concurrency !== undefined) ignored.push('kvEventsConfig.concurrency');
  if (ev?.podDiscoveryConfig?.podLabelSelector !== undefined) ignored.push('kvEventsConfig.podDiscoveryConfig.podLabelSelector');
  if (ev?.podDiscoveryConfig?.podNamespace !== undefined) ignored.push('kvEventsConfig.podDiscoveryConfig.podNamespace');
  let bindAddress: string | undefined;
  if (ev?.zmqEndpoint !== undefined && ev.discoverPods !== true) {
    if (!/^(tcp|ipc):\/\/./.test(ev.zmqEndpoint)) fail('kvEventsConfig', `zmqEndpoint '${ev.zmqEndpoint}' is not a ZeroMQ address; use e.g. tcp://*:5557`);
    bindAddress = ev.zmqEndpoint;
  } else if (ev?.zmqEndpoint !== undefined) {
    ignored.push('kvEventsConfig.zmqEndpoint (discoverPods: true dials every endpoint instead)');
  }
  if (Object.keys(events).length > 0) own.events = events;
  const producer = parsePluginParameters(typedName, precisePrefixParametersSchema, own);
  return { producer, bindAddress, ignored };
}

export class PrecisePrefixCacheScorer extends PrecisePrefixCacheProducer implements Scorer {
  readonly category = 'affinity' as const;
  readonly bound: BoundSubscriber | undefined;
  readonly #scorer: PrefixCacheScorer;

  constructor(name: string, settings: PrecisePrefixCacheScorerSettings, handle: PluginHandle) {
    const logger: Logger = handle.logger;
    const bound =
      settings.bindAddress === undefined
        ? undefined
        : new BoundSubscriber(settings.bindAddress, settings.producer.events.topicFilter, (message) =>
            logger.error({ plugin: name }, `plugin '${name}' (type: ${PRECISE_PREFIX_CACHE_SCORER_TYPE}): ${message}; no KV events are received, every endpoint is scored by the approximate fallback`),
          );
    super(name, settings.producer, handle, {
      type: PRECISE_PREFIX_CACHE_SCORER_TYPE,
      ...(bound === undefined ? {} : { transportFor: (e) => bound.transportFor(e.hostPort), onClose: () => bound.close() }),
    });
    this.bound = bound;
    this.#scorer = new PrefixCacheScorer(name, logger);
  }

  score(cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): Float64Array {
    return this.#scorer.score(cycle, request, candidates);
  }
}

export const precisePrefixCacheScorerFactory: PluginFactory = (name, parameters, handle) => {
  const settings = precisePrefixScorerSettings(name, parameters);
  if (settings.ignored.length > 0) {
    handle.logger.warn(
      { plugin: name, type: PRECISE_PREFIX_CACHE_SCORER_TYPE, parameters: settings.ignored },
      `plugin '${name}' (type: ${PRECISE_PREFIX_CACHE_SCORER_TYPE}): ${settings.ignored.join(', ')} accepted for llm-d compatibility and ` +
        'without effect here (engine hashes are opaque ids; token ids come from token-producer; the index is in memory)',
    );
  }
  const scorer = new PrecisePrefixCacheScorer(name, settings, handle);
  handle.metrics.precisePrefix(scorer.metricsSource());
  return scorer;
};
