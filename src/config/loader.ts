/**
 * Reads an `EndpointPickerConfig` into a plan, phase 1 of upstream's two (epp-spec §4.2): parse (YAML/JSON) →
 * strict schema → static defaults (plugin name = type, parser and saturation detector refs) → feature gates →
 * the cross-replica fields reconciled. The plan is data only: no plugin or runtime object is built here. The
 * runtime compiles it (phase 2, src/runtime/compile-config.ts): plugins instantiated in list order, system
 * defaults, cross-reference checks, profiles, auto-created data producers, hook phases.
 * Every error names the source (file or --config-text), the field and the fix.
 */
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { EppConfigError } from '../framework/errors.ts';
import { parseGoDuration } from '../util/duration.ts';
import { DEFAULT_CONFIG_TEXT, KNOWN_FEATURE_GATES, endpointPickerConfigSchema, type EndpointPickerConfig } from './schema.ts';

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

/** Throws the config error of `origin`'s `field`: `<origin>: <field>: <problem>`, with the fix. */
export function fail(origin: string, field: string, problem: string, fix: string): never {
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

/** One plugin instance to build: `plugins[i]` of the document, its name defaulted to its type. */
export interface PluginPlan {
  /** The field errors name, e.g. `plugins[2]`. */
  readonly field: string;
  readonly type: string;
  readonly name: string;
  /** The raw `parameters` value; the plugin's factory validates it. */
  readonly parameters: unknown;
}

export interface CrossReplicaPlan {
  /** The syncer plugin's name, and the field that named it. */
  readonly ref: string;
  readonly refField: string;
  /** Gauge cadence and heartbeat, ms (`crossReplicaSyncInterval`, default 50 ms). */
  readonly syncIntervalMs: number;
}

/** A validated configuration, as data: what the runtime compiles into plugin instances and profiles. */
export interface ConfigPlan {
  /** Where the config came from: a file path, `--config-text`, or `built-in default`. */
  readonly origin: string;
  /** The validated document (after static defaults). */
  readonly document: EndpointPickerConfig;
  readonly featureGates: ReadonlySet<string>;
  /** The configured plugins, in document order. */
  readonly plugins: readonly PluginPlan[];
  /** `parser.pluginRef` (default `openai-parser`). */
  readonly parserRef: string;
  /** `saturationDetector.pluginRef` (default `utilization-detector`). */
  readonly saturationDetectorRef: string;
  /** The cross-replica syncer reference, when the document sets one. */
  readonly crossReplica: CrossReplicaPlan | undefined;
}

/** Phase 1: parse and validate the document into a plan. */
export function planConfig(source: ConfigSource): ConfigPlan {
  const document = parseConfig(source);
  const origin = source.origin;
  return {
    origin,
    document,
    featureGates: new Set(document.featureGates ?? []),
    plugins: (document.plugins ?? []).map((spec, i) => ({ field: `plugins[${i}]`, type: spec.type, name: spec.name ?? spec.type, parameters: spec.parameters })),
    parserRef: document.parser?.pluginRef || 'openai-parser',
    saturationDetectorRef: document.saturationDetector?.pluginRef || 'utilization-detector',
    crossReplica: planCrossReplica(document, origin),
  };
}

function planCrossReplica(config: EndpointPickerConfig, origin: string): CrossReplicaPlan | undefined {
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
  let syncIntervalMs = DEFAULT_CROSS_REPLICA_SYNC_INTERVAL_MS;
  if (interval !== undefined) {
    try {
      syncIntervalMs = parseGoDuration(interval);
    } catch (err) {
      fail(origin, intervalField, (err as Error).message, 'use a Go duration such as 50ms or 200ms');
    }
    if (syncIntervalMs < 5 || syncIntervalMs > 10_000) fail(origin, intervalField, `${interval} is outside [5ms, 10s]`, 'use a value such as 50ms (fresher load) or 200ms (llm-d default)');
  }
  return { ref, refField, syncIntervalMs };
}
