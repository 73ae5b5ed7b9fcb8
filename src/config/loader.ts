/**
 * Loads an `EndpointPickerConfig` in two phases, as upstream (epp-spec §4.2):
 *   1. parse (YAML/JSON) → strict schema → static defaults (plugin name = type) → feature gates;
 *   2. instantiate plugins in list order → system defaults (profile, profile handler, picker, parser, data
 *      layer) → cross-reference checks → profiles built → auto-created data producers → hook phases.
 * Every error names the source (file or --config-text), the field and the fix.
 */
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { EppConfigError } from '../framework/errors.ts';
import { collectParameterWarnings } from '../framework/params.ts';
import type { Parser } from '../framework/parser.ts';
import { isParser } from '../framework/parser.ts';
import type { Plugin, PluginHandle } from '../framework/plugin.ts';
import { consumedKeys, isDataProducer } from '../framework/requestcontrol.ts';
import type { Filter, Picker, ProfileHandler, Scorer } from '../framework/scheduling.ts';
import { isSaturationDetector, type SaturationDetector } from '../framework/flowcontrol.ts';
import {
  buildFlowControlConfig,
  DEFAULT_FAIRNESS_POLICY,
  DEFAULT_ORDERING_POLICY,
  DEFAULT_USAGE_LIMIT_POLICY,
} from '../runtime/flowcontrol/config.ts';
import type { FlowControlConfig } from '../runtime/flowcontrol/controller.ts';
import { isFilter, isPicker, isProfileHandler, isScorer } from '../framework/scheduling.ts';
import { DEFAULT_PRODUCERS } from '../plugins/register.ts';
import { isCrossReplicaSyncer, type CrossReplicaSyncer } from '../framework/replication.ts';
import { parseGoDuration } from '../util/duration.ts';
import { compileHooks, orderDataProducers, type CompiledHooks } from '../runtime/hooks.ts';
import type { PluginRegistry } from '../runtime/plugin-registry.ts';
import type { ProfileDefinition, WeightedScorer } from '../runtime/scheduler.ts';
import { DEFAULT_CONFIG_TEXT, KNOWN_FEATURE_GATES, endpointPickerConfigSchema, type EndpointPickerConfig } from './schema.ts';

export interface DataLayerSourceConfig {
  readonly source: Plugin;
  readonly extractors: readonly Plugin[];
}

export interface LoadedConfig {
  /** Where the config came from: a file path, `--config-text`, or `built-in default`. */
  readonly origin: string;
  readonly featureGates: ReadonlySet<string>;
  /** Every plugin instance, in config order, followed by the ones defaults added. */
  readonly plugins: readonly Plugin[];
  readonly profiles: readonly ProfileDefinition[];
  readonly profileHandler: ProfileHandler;
  readonly parser: Parser;
  /** Data-layer sources and their extractors (the default pair when the config has no dataLayer). */
  readonly dataLayer: readonly DataLayerSourceConfig[];
  readonly hooks: CompiledHooks;
  /** `saturationDetector.pluginRef` (default `utilization-detector`). */
  readonly saturationDetector: SaturationDetector;
  /** The flow controller's settings when the `flowControl` gate is on, else undefined. */
  readonly flowControl: FlowControlConfig | undefined;
  /** The validated document (after static defaults). */
  readonly document: EndpointPickerConfig;
  /** `dataLayer.crossReplicaSyncerPluginRef` (or `dataLayer.crossReplica.syncerPluginRef`), when set. */
  readonly crossReplica: CrossReplicaConfig | undefined;
  /**
   * Values accepted leniently, as upstream accepts them (unknown parameter keys, ≤ 0 values upstream replaces
   * by their default): one entry per field, `<origin>: <field>: <what was done>`; each was logged as a warning.
   */
  readonly warnings: readonly string[];
}

export interface CrossReplicaConfig {
  readonly syncer: CrossReplicaSyncer;
  /** Gauge cadence and heartbeat, ms (`crossReplicaSyncInterval`, default 50 ms). */
  readonly syncIntervalMs: number;
}

/** Gauge cadence when `crossReplicaSyncInterval` is not set (llm-d defaults to 200ms; see docs/replicas.md). */
export const DEFAULT_CROSS_REPLICA_SYNC_INTERVAL_MS = 50;

export interface ConfigSource {
  readonly text: string;
  /** Names the source in errors: a file path, `--config-text`, or `built-in default`. */
  readonly origin: string;
}

export function defaultConfigSource(): ConfigSource {
  return { text: DEFAULT_CONFIG_TEXT, origin: 'built-in default' };
}

function fail(origin: string, field: string, problem: string, fix: string): never {
  throw new EppConfigError(`${origin}: ${field}: ${problem}`, fix);
}

function issuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || '(document)';
}

function fixFor(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return 'remove the field or correct its spelling (see the config reference in README.md)';
  if (issue.code === 'invalid_type') return `use a value of type ${issue.expected}`;
  return 'correct the value (see the config reference in README.md)';
}

/** Phase 1: parse and validate the document. */
export function parseConfig(source: ConfigSource): EndpointPickerConfig {
  const doc = parseDocument(source.text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    fail(source.origin, 'document', `failed to decode configuration JSON/YAML: ${e?.message ?? 'invalid YAML'}`, 'fix the YAML syntax at the position shown');
  }
  const raw: unknown = doc.toJS();
  const parsed = endpointPickerConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const keys = issue.code === 'unrecognized_keys' ? ` ${issue.keys.map((k) => `'${k}'`).join(', ')}` : '';
    const message = issue.code === 'unrecognized_keys' ? `unknown field${keys}` : issue.message;
    fail(source.origin, issuePath(issue.path), message, fixFor(issue));
  }
  const config = parsed.data;
  for (const [i, g] of (config.featureGates ?? []).entries()) {
    if (!(KNOWN_FEATURE_GATES as readonly string[]).includes(g)) {
      fail(source.origin, `featureGates[${i}]`, `feature gate '${g}' is unknown or unregistered`, `use one of: ${KNOWN_FEATURE_GATES.join(', ')}`);
    }
  }
  return config;
}

interface LoadOptions {
  readonly registry: PluginRegistry;
  /** Builds the handle each plugin factory receives; `lookup` sees plugins instantiated so far. */
  readonly handle: (lookup: (name: string) => Plugin | undefined) => PluginHandle;
}

/** Phases 1 and 2: a fully built, validated configuration. */
export function loadConfig(source: ConfigSource, options: LoadOptions): LoadedConfig {
  const config = parseConfig(source);
  const origin = source.origin;
  const registry = options.registry;
  const gates = new Set(config.featureGates ?? []);
  const byName = new Map<string, Plugin>();
  const plugins: Plugin[] = [];
  const handle = options.handle((name) => byName.get(name));
  const warnings: string[] = [];

  const instantiate = (field: string, type: string, name: string, parameters: unknown): Plugin => {
    if (byName.has(name)) fail(origin, `${field}.name`, `duplicate plugin name '${name}'`, 'give every plugin instance a unique name');
    const factory = registry.get(type);
    if (!factory) {
      fail(origin, `${field}.type`, `plugin type '${type}' is not registered`, `use one of: ${registry.types().join(', ')}; or load a module that registers it with --plugin-module`);
    }
    let plugin: Plugin;
    try {
      plugin = collectParameterWarnings(
        (f, message) => {
          const where = `${field}.parameters.${f}`;
          warnings.push(`${origin}: ${where}: ${message}`);
          handle.logger.warn({ config: origin, field: where, plugin: name, type }, `config: ${message}`);
        },
        () => factory(name, parameters, handle),
      );
    } catch (err) {
      const e = err as Error;
      throw new EppConfigError(`${origin}: ${field}: failed to create plugin '${name}' (type: ${type}): ${e.message}`, '');
    }
    byName.set(name, plugin);
    plugins.push(plugin);
    return plugin;
  };
  const addDefault = (type: string): Plugin => instantiate(`(default plugin '${type}')`, type, type, undefined);

  for (const [i, spec] of (config.plugins ?? []).entries()) {
    instantiate(`plugins[${i}]`, spec.type, spec.name ?? spec.type, spec.parameters);
  }

  // --- system defaults
  const profilesSpec = config.schedulingProfiles && config.schedulingProfiles.length > 0
    ? config.schedulingProfiles
    : [{ name: 'default', plugins: plugins.filter((p) => isFilter(p) || isScorer(p) || isPicker(p)).map((p) => ({ pluginRef: p.typedName.name, weight: undefined })) }];
  if (profilesSpec.length === 1 && !plugins.some(isProfileHandler)) addDefault('single-profile-handler');
  let firstPicker = plugins.find(isPicker);
  if (!firstPicker) firstPicker = addDefault('max-score-picker') as Picker;
  const parserRef = config.parser?.pluginRef || 'openai-parser';
  if (!byName.has(parserRef) && parserRef === 'openai-parser') addDefault('openai-parser');

  // Admission and flow control (epp-spec §4.2): the default policies always exist; the saturation detector
  // defaults to utilization-detector.
  for (const t of [DEFAULT_ORDERING_POLICY, DEFAULT_FAIRNESS_POLICY, DEFAULT_USAGE_LIMIT_POLICY]) if (!byName.has(t)) addDefault(t);
  const saturationRef = config.saturationDetector?.pluginRef || 'utilization-detector';
  if (!byName.has(saturationRef) && saturationRef === 'utilization-detector') addDefault('utilization-detector');

  // Without a dataLayer section, scrape metrics with the default source and extractor. Upstream's legacy path
  // (gate enableLegacyMetrics) scraped vLLM names only: the extractor's default engine (vllm) does the same,
  // so the gate changes nothing here.
  let dataLayerSpec = config.dataLayer;
  if (!dataLayerSpec) {
    if (!byName.has('metrics-data-source')) addDefault('metrics-data-source');
    if (!byName.has('core-metrics-extractor')) addDefault('core-metrics-extractor');
    dataLayerSpec = { sources: [{ pluginRef: 'metrics-data-source', extractors: [{ pluginRef: 'core-metrics-extractor' }] }] };
  }

  // --- cross references and profiles
  const seen = new Set<string>();
  const profiles: ProfileDefinition[] = [];
  for (const [i, p] of profilesSpec.entries()) {
    if (seen.has(p.name)) fail(origin, `schedulingProfiles[${i}].name`, `duplicate name '${p.name}'`, 'give every profile a unique name');
    seen.add(p.name);
    const filters: Filter[] = [];
    const scorers: WeightedScorer[] = [];
    let picker: Picker | undefined;
    for (const [j, ref] of p.plugins.entries()) {
      const plugin = byName.get(ref.pluginRef);
      const field = `schedulingProfiles[${p.name}].plugins[${j}].pluginRef`;
      if (!plugin) fail(origin, field, `references undefined plugin '${ref.pluginRef}'`, `define it under plugins[] or use one of: ${[...byName.keys()].join(', ')}`);
      if (isFilter(plugin)) filters.push(plugin);
      if (isScorer(plugin)) scorers.push({ scorer: plugin as Scorer, weight: ref.weight ?? 1 });
      if (isPicker(plugin)) {
        if (picker) fail(origin, field, `failed to set '${ref.pluginRef}' as picker, already have a registered picker plugin '${picker.typedName.name}'`, 'keep one picker per profile');
        picker = plugin;
      }
      // Plugins that are not filters, scorers or pickers (e.g. a parser) are accepted and ignored, as upstream.
    }
    profiles.push({ name: p.name, filters, scorers, picker: picker ?? firstPicker });
  }
  const handlers = plugins.filter(isProfileHandler);
  if (handlers.length === 0) fail(origin, 'plugins', 'no profile handler configured', "add a plugin of type 'single-profile-handler'");
  if (handlers.length > 1) {
    fail(origin, 'plugins', `multiple profile handlers found ('${handlers[0]?.typedName.name}', '${handlers[1]?.typedName.name}'); only one is allowed`, 'keep one profile handler');
  }
  const profileHandler = handlers[0] as ProfileHandler;
  if (profileHandler.typedName.type === 'single-profile-handler' && profiles.length > 1) {
    fail(origin, 'schedulingProfiles', 'SingleProfileHandler cannot support multiple scheduling profiles', 'use one profile, or a profile handler that supports several');
  }

  const dataLayer: DataLayerSourceConfig[] = dataLayerSpec.sources.map((s, i) => {
    const source = byName.get(s.pluginRef);
    if (!source) fail(origin, `dataLayer.sources[${i}].pluginRef`, `references undefined plugin '${s.pluginRef}'`, 'define it under plugins[]');
    const extractors = s.extractors.map((e, j) => {
      const x = byName.get(e.pluginRef);
      if (!x) fail(origin, `dataLayer.sources[${i}].extractors[${j}].pluginRef`, `references undefined plugin '${e.pluginRef}'`, 'define it under plugins[]');
      return x;
    });
    return { source, extractors };
  });

  const parser = byName.get(parserRef);
  if (!parser) fail(origin, 'parser.pluginRef', `the configured parser '${parserRef}' is not loaded`, 'define the parser under plugins[] or remove parser.pluginRef to use openai-parser');
  if (!isParser(parser)) fail(origin, 'parser.pluginRef', `plugin '${parserRef}' is not a parser plugin`, "reference a parser, e.g. 'openai-parser'");

  const saturationDetector = byName.get(saturationRef);
  if (!saturationDetector) fail(origin, 'saturationDetector.pluginRef', `saturation detector references undefined plugin '${saturationRef}'`, 'define it under plugins[] (e.g. type concurrency-detector)');
  if (!isSaturationDetector(saturationDetector)) fail(origin, 'saturationDetector.pluginRef', `plugin '${saturationRef}' is not a fwkflowcontrol.SaturationDetector`, 'reference utilization-detector or concurrency-detector');
  const flowControl = gates.has('flowControl') ? buildFlowControlConfig(config.flowControl, (n) => byName.get(n), origin) : undefined;

  // --- auto-created data producers for consumed keys nobody produces (epp-spec §2.3)
  for (;;) {
    const produced = new Set(plugins.filter(isDataProducer).flatMap((p) => p.produces));
    const missing = plugins.flatMap(consumedKeys).find((k) => !produced.has(k) && DEFAULT_PRODUCERS[k] !== undefined);
    if (missing === undefined) break;
    const type = DEFAULT_PRODUCERS[missing] as string;
    if (plugins.some((p) => p.typedName.type === type)) break;
    addDefault(type);
  }

  const crossReplica = resolveCrossReplica(config, origin, (n) => byName.get(n));

  let producers;
  try {
    producers = orderDataProducers(plugins);
  } catch (err) {
    fail(origin, 'plugins', (err as Error).message, 'change the produces/consumes declarations of the plugins named');
  }
  return {
    origin,
    featureGates: gates,
    plugins,
    profiles,
    profileHandler,
    parser,
    dataLayer,
    hooks: compileHooks(plugins, producers),
    saturationDetector,
    flowControl,
    document: config,
    crossReplica,
    warnings,
  };
}

function resolveCrossReplica(config: EndpointPickerConfig, origin: string, lookup: (name: string) => Plugin | undefined): CrossReplicaConfig | undefined {
  const dl = config.dataLayer;
  if (!dl) return undefined;
  const legacyRef = dl.crossReplicaSyncerPluginRef;
  const newRef = dl.crossReplica?.syncerPluginRef;
  if (legacyRef !== undefined && newRef !== undefined && legacyRef !== newRef) {
    fail(origin, 'dataLayer.crossReplica.syncerPluginRef', `conflicts with dataLayer.crossReplicaSyncerPluginRef ('${newRef}' vs '${legacyRef}')`, 'set only one of the two spellings');
  }
  const legacyInterval = dl.crossReplicaSyncInterval;
  const newInterval = dl.crossReplica?.syncInterval;
  if (legacyInterval !== undefined && newInterval !== undefined && legacyInterval !== newInterval) {
    fail(origin, 'dataLayer.crossReplica.syncInterval', `conflicts with dataLayer.crossReplicaSyncInterval ('${newInterval}' vs '${legacyInterval}')`, 'set only one of the two spellings');
  }
  const ref = newRef ?? legacyRef;
  const refField = newRef !== undefined ? 'dataLayer.crossReplica.syncerPluginRef' : 'dataLayer.crossReplicaSyncerPluginRef';
  const interval = newInterval ?? legacyInterval;
  const intervalField = newInterval !== undefined ? 'dataLayer.crossReplica.syncInterval' : 'dataLayer.crossReplicaSyncInterval';
  if (ref === undefined) {
    if (interval !== undefined) fail(origin, intervalField, 'is set but no cross-replica syncer is referenced', 'also set dataLayer.crossReplica.syncerPluginRef (or crossReplicaSyncerPluginRef), or remove the interval');
    return undefined;
  }
  const syncer = lookup(ref);
  if (!syncer) fail(origin, refField, `references undefined plugin '${ref}'`, "define it under plugins[] (e.g. type: redis-cross-replica-syncer)");
  if (!isCrossReplicaSyncer(syncer)) fail(origin, refField, `plugin '${ref}' (type: ${syncer.typedName.type}) is not a cross-replica syncer`, 'reference a plugin of type redis-cross-replica-syncer');
  let syncIntervalMs = DEFAULT_CROSS_REPLICA_SYNC_INTERVAL_MS;
  if (interval !== undefined) {
    try {
      syncIntervalMs = parseGoDuration(interval);
    } catch (err) {
      fail(origin, intervalField, (err as Error).message, 'use a Go duration such as 50ms or 200ms');
    }
    if (syncIntervalMs < 5 || syncIntervalMs > 10_000) fail(origin, intervalField, `${interval} is outside [5ms, 10s]`, 'use a value such as 50ms (fresher load) or 200ms (llm-d default)');
  }
  return { syncer, syncIntervalMs };
}
