/**
 * Compiles a configuration plan (src/config/loader.ts, phase 1) into the runtime's objects, phase 2 of upstream's
 * two (epp-spec §4.2): plugins instantiated in list order through the registry → system defaults (profile,
 * profile handler, picker, parser, flow-control policies, saturation detector, data layer) → cross-reference
 * checks → profiles built → auto-created data producers → hook phases. Every error names the source (file or
 * --config-text), the field and the fix, as phase 1's do.
 */
import { fail, type ConfigPlan, type CrossReplicaPlan } from '../config/loader.ts';
import type { EndpointPickerConfig } from '../config/schema.ts';
import { EppConfigError } from '../framework/errors.ts';
import { isSaturationDetector, type SaturationDetector } from '../framework/flowcontrol.ts';
import { collectParameterWarnings } from '../framework/params.ts';
import { isParser, type Parser } from '../framework/parser.ts';
import type { Plugin, PluginHandle } from '../framework/plugin.ts';
import { isCrossReplicaSyncer, type CrossReplicaSyncer } from '../framework/replication.ts';
import { consumedKeys, isDataProducer } from '../framework/requestcontrol.ts';
import { isFilter, isPicker, isProfileHandler, isScorer, type Filter, type Picker, type ProfileHandler, type Scorer } from '../framework/scheduling.ts';
import { buildFlowControlConfig, DEFAULT_FAIRNESS_POLICY, DEFAULT_ORDERING_POLICY, DEFAULT_USAGE_LIMIT_POLICY } from './flowcontrol/config.ts';
import type { FlowControlConfig } from './flowcontrol/controller.ts';
import { compileHooks, orderDataProducers, type CompiledHooks } from './hooks.ts';
import type { PluginRegistry } from './plugin-registry.ts';
import type { ProfileDefinition, WeightedScorer } from './scheduler.ts';

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

export interface CompileOptions {
  readonly registry: PluginRegistry;
  /** Builds the handle each plugin factory receives; `lookup` sees plugins instantiated so far. */
  readonly handle: (lookup: (name: string) => Plugin | undefined) => PluginHandle;
}

/** Phase 2: builds the plan's plugins, adds the system defaults, resolves every reference, compiles the hooks. */
export function compileConfig(plan: ConfigPlan, options: CompileOptions): LoadedConfig {
  const config = plan.document;
  const origin = plan.origin;
  const registry = options.registry;
  const gates = plan.featureGates;
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

  for (const p of plan.plugins) instantiate(p.field, p.type, p.name, p.parameters);

  // --- system defaults
  const profilesSpec = config.schedulingProfiles && config.schedulingProfiles.length > 0
    ? config.schedulingProfiles
    : [{ name: 'default', plugins: plugins.filter((p) => isFilter(p) || isScorer(p) || isPicker(p)).map((p) => ({ pluginRef: p.typedName.name, weight: undefined })) }];
  if (profilesSpec.length === 1 && !plugins.some(isProfileHandler)) addDefault('single-profile-handler');
  let firstPicker = plugins.find(isPicker);
  if (!firstPicker) firstPicker = addDefault('max-score-picker') as Picker;
  const parserRef = plan.parserRef;
  if (!byName.has(parserRef) && parserRef === 'openai-parser') addDefault('openai-parser');

  // Admission and flow control (epp-spec §4.2): the default policies always exist; the saturation detector
  // defaults to utilization-detector.
  for (const t of [DEFAULT_ORDERING_POLICY, DEFAULT_FAIRNESS_POLICY, DEFAULT_USAGE_LIMIT_POLICY]) if (!byName.has(t)) addDefault(t);
  const saturationRef = plan.saturationDetectorRef;
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
    const missing = plugins.flatMap(consumedKeys).find((k) => !produced.has(k) && registry.defaultProducerOf(k) !== undefined);
    if (missing === undefined) break;
    const type = registry.defaultProducerOf(missing) as string;
    if (plugins.some((p) => p.typedName.type === type)) break;
    addDefault(type);
  }

  const crossReplica = resolveCrossReplica(plan.crossReplica, origin, (n) => byName.get(n));

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


function resolveCrossReplica(plan: CrossReplicaPlan | undefined, origin: string, lookup: (name: string) => Plugin | undefined): CrossReplicaConfig | undefined {
  if (plan === undefined) return undefined;
  const { ref, refField, syncIntervalMs } = plan;
  const syncer = lookup(ref);
  if (!syncer) fail(origin, refField, `references undefined plugin '${ref}'`, "define it under plugins[] (e.g. type: redis-cross-replica-syncer)");
  if (!isCrossReplicaSyncer(syncer)) fail(origin, refField, `plugin '${ref}' (type: ${syncer.typedName.type}) is not a cross-replica syncer`, 'reference a plugin of type redis-cross-replica-syncer');
  return { syncer, syncIntervalMs };
}
