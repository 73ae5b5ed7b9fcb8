/**
 * `core-metrics-extractor`: maps an engine's Prometheus families onto `EndpointMetrics` (epp-spec §5.3).
 * See README.md for behaviour and parameters.
 */
import { z } from 'zod';
import {
  PROMETHEUS_FAMILIES,
  type ExtractOutcome,
  type Extractor,
  type MetricsDraft,
  type PrometheusFamilies,
  type PrometheusSample,
} from '../../../../framework/datasource.ts';
import type { EndpointMetadata } from '../../../../framework/datalayer.ts';
import { EppConfigError } from '../../../../framework/errors.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { Logger, PluginFactory, PluginHandle, TypedName } from '../../../../framework/plugin.ts';
import {
  BUILTIN_ENGINES,
  DEFAULT_CACHE_BLOCK_SIZE_LABEL,
  DEFAULT_CACHE_NUM_BLOCKS_LABEL,
  DEFAULT_ENGINE,
  DEFAULT_ENGINE_LABEL_KEY,
  RESERVED_ENGINE_NAME,
  type EngineConfig,
} from './engines.ts';
import { largestValueSample, latestSample, parseMetricSpec, type MetricSpec } from './metric-spec.ts';

export const CORE_METRICS_EXTRACTOR_TYPE = 'core-metrics-extractor';

export { BUILTIN_ENGINES, DEFAULT_ENGINE, DEFAULT_ENGINE_LABEL_KEY, type EngineConfig } from './engines.ts';

const LORA_RUNNING_LABEL = 'running_lora_adapters';
const LORA_WAITING_LABEL = 'waiting_lora_adapters';
const LORA_MAX_LABEL = 'max_lora';

const engineConfigSchema = z.strictObject({
  name: z.string(),
  queuedRequestsSpec: z.string().optional(),
  runningRequestsSpec: z.string().optional(),
  kvUsageSpec: z.string().optional(),
  loraSpec: z.string().optional(),
  cacheInfoSpec: z.string().optional(),
  cacheBlockSizeLabelName: z.string().optional(),
  cacheNumBlocksLabelName: z.string().optional(),
  cacheBlockSizeSpec: z.string().optional(),
  cacheNumBlocksSpec: z.string().optional(),
});

const paramsSchema = z.strictObject({
  engineLabelKey: z.string().min(1).default(DEFAULT_ENGINE_LABEL_KEY),
  defaultEngine: z.string().min(1).default(DEFAULT_ENGINE),
  engineConfigs: z.array(engineConfigSchema).default([]),
});

/** Compiled mapping of one engine. */
export interface EngineMapping {
  readonly engine: string;
  readonly queued: MetricSpec | undefined;
  readonly running: MetricSpec | undefined;
  readonly kvUsage: MetricSpec | undefined;
  readonly lora: MetricSpec | undefined;
  readonly cacheInfo: MetricSpec | undefined;
  readonly cacheBlockSizeLabel: string;
  readonly cacheNumBlocksLabel: string;
  readonly cacheBlockSize: MetricSpec | undefined;
  readonly cacheNumBlocks: MetricSpec | undefined;
  /** Family names this mapping reads. */
  readonly families: ReadonlySet<string>;
}

const NO_ERRORS: readonly Error[] = Object.freeze([]);
const INT_RE = /^[+-]?\d+$/;

function compile(cfg: EngineConfig): EngineMapping {
  const spec = (field: keyof EngineConfig): MetricSpec | undefined => {
    const raw = cfg[field];
    try {
      return raw === undefined ? undefined : parseMetricSpec(raw);
    } catch (err) {
      throw new Error(`engine "${cfg.name}": ${field}: ${(err as Error).message}`);
    }
  };
  const specs = {
    queued: spec('queuedRequestsSpec'),
    running: spec('runningRequestsSpec'),
    kvUsage: spec('kvUsageSpec'),
    lora: spec('loraSpec'),
    cacheInfo: spec('cacheInfoSpec'),
    cacheBlockSize: spec('cacheBlockSizeSpec'),
    cacheNumBlocks: spec('cacheNumBlocksSpec'),
  };
  const families = new Set<string>();
  for (const sp of Object.values(specs)) if (sp !== undefined) families.add(sp.name);
  const mapping: EngineMapping = {
    engine: cfg.name,
    families,
    ...specs,
    cacheBlockSizeLabel: cfg.cacheBlockSizeLabelName || DEFAULT_CACHE_BLOCK_SIZE_LABEL,
    cacheNumBlocksLabel: cfg.cacheNumBlocksLabelName || DEFAULT_CACHE_NUM_BLOCKS_LABEL,
  };
  if (mapping.cacheInfo !== undefined && (mapping.cacheBlockSize !== undefined || mapping.cacheNumBlocks !== undefined)) {
    throw new Error(`engine "${cfg.name}": set either cacheInfoSpec or cacheBlockSizeSpec/cacheNumBlocksSpec, not both`);
  }
  return mapping;
}

/** Builds the engine table: user entries first (each fully replacing a built-in of the same name), then the rest. */
function resolveEngineConfigs(user: readonly EngineConfig[]): EngineConfig[] {
  const named = new Set(user.map((e) => e.name));
  return [...user, ...BUILTIN_ENGINES.filter((e) => !named.has(e.name))];
}

export class CoreMetricsExtractor implements Extractor<PrometheusFamilies> {
  readonly typedName: TypedName;
  readonly inputType = PROMETHEUS_FAMILIES;
  readonly engineLabelKey: string;
  readonly #engines: ReadonlyMap<string, EngineMapping>;
  readonly #default: EngineMapping;
  readonly #logger: Logger | undefined;
  readonly #warnedEngines = new Set<string>();

  /** Throws Error naming the engine and field on invalid input. */
  constructor(
    name: string,
    options: { engineLabelKey: string; defaultEngine: string; engineConfigs: readonly EngineConfig[] },
    logger?: Logger,
  ) {
    this.typedName = { type: CORE_METRICS_EXTRACTOR_TYPE, name };
    this.engineLabelKey = options.engineLabelKey;
    this.#logger = logger;
    const engines = new Map<string, EngineMapping>();
    for (const cfg of resolveEngineConfigs(options.engineConfigs)) {
      if (cfg.name === '') throw new Error('engine config name cannot be empty');
      if (cfg.name === RESERVED_ENGINE_NAME) throw new Error(`engine config name cannot be "${RESERVED_ENGINE_NAME}" (reserved)`);
      if (engines.has(cfg.name)) throw new Error(`engine config "${cfg.name}" is defined twice`);
      engines.set(cfg.name, compile(cfg));
    }
    const def = engines.get(options.defaultEngine);
    if (def === undefined) throw new Error(`defaultEngine "${options.defaultEngine}" not found in engineConfigs`);
    this.#engines = engines;
    this.#default = def;
  }

  /** The families of the endpoint's engine mapping. */
  inputKeysFor(endpoint: EndpointMetadata): ReadonlySet<string> {
    return this.mappingFor(endpoint).families;
  }

  /** The mapping used for an endpoint: its engine label's entry, else the default engine's. */
  mappingFor(endpoint: EndpointMetadata): EngineMapping {
    const engine = endpoint.labels[this.engineLabelKey];
    if (engine === undefined || engine === '') return this.#default;
    const m = this.#engines.get(engine);
    if (m !== undefined) return m;
    if (!this.#warnedEngines.has(engine)) {
      this.#warnedEngines.add(engine);
      this.#logger?.warn(
        { engine, labelKey: this.engineLabelKey, defaultEngine: this.#default.engine, endpoint: endpoint.name },
        'unknown engine type on endpoint; using the default engine mapping (add it to engineConfigs)',
      );
    }
    return this.#default;
  }

  extract(families: PrometheusFamilies, draft: MetricsDraft, endpoint: EndpointMetadata): ExtractOutcome {
    const m = this.mappingFor(endpoint);
    // One array per call rather than a closure: closures created per scrape are costly under tsx (keepNames).
    const errs: Error[] = [];
    const fail = errs;
    let updated = false;

    if (m.queued !== undefined) {
      const s = latestSample(m.queued, families);
      if (s instanceof Error) fail.push(s);
      else {
        const v = toInt(s.value, m.queued.name);
        if (v instanceof Error) fail.push(v);
        else {
          draft.waitingQueueSize = v;
          updated = true;
        }
      }
    }
    if (m.running !== undefined) {
      const s = latestSample(m.running, families);
      if (s instanceof Error) fail.push(s);
      else {
        const v = toInt(s.value, m.running.name);
        if (v instanceof Error) fail.push(v);
        else {
          draft.runningRequestsSize = v;
          updated = true;
        }
      }
    }
    if (m.kvUsage !== undefined) {
      const s = latestSample(m.kvUsage, families);
      if (s instanceof Error) fail.push(s);
      else if (Number.isNaN(s.value)) fail.push(new Error(`metric "${m.kvUsage.name}" is NaN`));
      else {
        draft.kvCacheUsagePercent = s.value;
        updated = true;
      }
    }
    if (m.lora !== undefined) {
      const s = largestValueSample(m.lora, families);
      if (s instanceof Error) fail.push(s);
      else {
        applyLora(draft, s, fail);
        updated = true;
      }
    }
    if (m.cacheInfo !== undefined) {
      const s = latestSample(m.cacheInfo, families);
      if (s instanceof Error) fail.push(s);
      else {
        draft.cacheBlockSize = labelInt(s, m.cacheBlockSizeLabel, fail);
        draft.cacheNumBlocks = labelInt(s, m.cacheNumBlocksLabel, fail);
        updated = true;
      }
    }
    if (m.cacheBlockSize !== undefined) {
      const s = latestSample(m.cacheBlockSize, families);
      const v = s instanceof Error ? s : toInt(s.value, m.cacheBlockSize.name);
      if (v instanceof Error) fail.push(v);
      else {
        draft.cacheBlockSize = v;
        updated = true;
      }
    }
    if (m.cacheNumBlocks !== undefined) {
      const s = latestSample(m.cacheNumBlocks, families);
      const v = s instanceof Error ? s : toInt(s.value, m.cacheNumBlocks.name);
      if (v instanceof Error) fail.push(v);
      else {
        draft.cacheNumBlocks = v;
        updated = true;
      }
    }
    return { updated, errors: errs.length === 0 ? NO_ERRORS : errs };
  }
}

/** Go's `int(float64)` truncation, but refusing NaN/±Inf instead of producing garbage. */
function toInt(v: number, metric: string): number | Error {
  if (!Number.isFinite(v)) return new Error(`metric "${metric}" has non-finite value ${v}`);
  return Math.trunc(v);
}

function labelInt(s: PrometheusSample, label: string, fail: Error[]): number {
  const raw = s.labels[label];
  if (raw === undefined || raw === '') return 0;
  if (!INT_RE.test(raw)) {
    fail.push(new Error(`label ${label}="${raw}" of "${s.name}" is not an integer`));
    return 0;
  }
  return Number.parseInt(raw, 10);
}

function adapters(csv: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  if (csv === undefined || csv === '') return m;
  for (const part of csv.split(',')) {
    const name = part.trim();
    if (name !== '') m.set(name, 0);
  }
  return m;
}

/**
 * Adapter maps built per LoRA-info sample. The source hands out the same sample object while its line is
 * unchanged (metrics-data-source's per-family memo), so an idle LoRA set costs a lookup instead of two maps
 * per scrape. Sharing the maps across snapshots is safe: nobody mutates them (they are replaced, see below).
 */
const loraMaps = new WeakMap<PrometheusSample, { readonly active: ReadonlyMap<string, number>; readonly waiting: ReadonlyMap<string, number> }>();

function applyLora(draft: MetricsDraft, s: PrometheusSample, fail: Error[]): void {
  // Replace (never mutate) the maps: the previous ones belong to the published snapshot.
  let maps = loraMaps.get(s);
  if (maps === undefined) {
    maps = { active: adapters(s.labels[LORA_RUNNING_LABEL]), waiting: adapters(s.labels[LORA_WAITING_LABEL]) };
    loraMaps.set(s, maps);
  }
  draft.activeModels = maps.active;
  draft.waitingModels = maps.waiting;
  const max = s.labels[LORA_MAX_LABEL];
  if (max !== undefined && max !== '') {
    if (INT_RE.test(max)) draft.maxActiveModels = Number.parseInt(max, 10);
    else fail.push(new Error(`label ${LORA_MAX_LABEL}="${max}" of "${s.name}" is not an integer`));
  }
}

export const coreMetricsExtractorFactory: PluginFactory = (name: string, parameters: unknown, handle: PluginHandle) => {
  const typedName = { type: CORE_METRICS_EXTRACTOR_TYPE, name };
  const params = parsePluginParameters(typedName, paramsSchema, parameters);
  try {
    return new CoreMetricsExtractor(name, params, handle.logger);
  } catch (err) {
    throw new EppConfigError(
      `plugin '${name}' (type: ${CORE_METRICS_EXTRACTOR_TYPE}) has invalid parameters: ${(err as Error).message}`,
      'fix parameters.engineConfigs / parameters.defaultEngine; see src/plugins/datalayer/extractor/core-metrics-extractor/README.md',
    );
  }
};
