/**
 * Plugin contracts shared by every extension point.
 *
 * A plugin is an object created once at startup by a factory registered under a kebab-case type string
 * (identical to the upstream EPP's, so existing `EndpointPickerConfig` files load unchanged). A plugin joins
 * every extension point whose method it implements; the runtime detects those capabilities once, at boot,
 * and never checks them on the hot path. Plugins are third-party code: they receive narrow views
 * (`PluginHandle`, `InferenceRequest`, `ResponseInfo`) and never runtime internals.
 */
import type { Endpoint } from './datalayer.ts';
import type { InFlightRequests } from './inflight.ts';
import type { PluginMetrics } from './plugin-metrics.ts';

/** Identity of a configured plugin instance. Its string form is `<name>/<type>` (upstream convention). */
export interface TypedName {
  /** Registered type string, e.g. `queue-scorer`. */
  readonly type: string;
  /** Instance name from the config (`plugins[].name`, defaulting to the type). Unique per config. */
  readonly name: string;
}

export function typedNameString(tn: TypedName): string {
  return `${tn.name}/${tn.type}`;
}

/** Every plugin carries its identity. Everything else is optional capability (see scheduling.ts, requestcontrol.ts). */
export interface Plugin {
  readonly typedName: TypedName;
}

/** A structured logger (a subset of pino's API). Every method is cheap when its level is disabled. */
export interface Logger {
  error(obj: object, msg?: string): void;
  error(msg: string): void;
  warn(obj: object, msg?: string): void;
  warn(msg: string): void;
  info(obj: object, msg?: string): void;
  info(msg: string): void;
  debug(obj: object, msg?: string): void;
  debug(msg: string): void;
  trace(obj: object, msg?: string): void;
  trace(msg: string): void;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: 'error' | 'warn' | 'info' | 'debug' | 'trace'): boolean;
}

/** Time source. Injected everywhere time matters so tests control it. */
export interface Clock {
  /** Milliseconds since the Unix epoch (may be fractional). Monotonic enough for durations in practice. */
  now(): number;
}

/** Random source. Injected and seedable, so tie-breaks and sampling are reproducible in tests. */
export interface RandomSource {
  /** A uniformly distributed float in [0, 1). */
  next(): number;
}

/** What a factory may use while building a plugin, and what the plugin may keep for later. */
export interface PluginHandle {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: RandomSource;
  /**
   * Another configured plugin instance by name, or undefined. Only plugins listed before this one in the
   * config are visible during construction; all are visible after startup.
   */
  plugin(name: string): Plugin | undefined;
  /** The current endpoints of the pool (an immutable snapshot; never cache it across requests). */
  endpoints(): readonly Endpoint[];
  /** This replica's one in-flight tracker, owned by the runtime (contract: ./inflight.ts). */
  readonly inflight: InFlightRequests;
  /** Where the plugin exposes its metrics, at construction (contract: ./plugin-metrics.ts). */
  readonly metrics: PluginMetrics;
}

/**
 * Builds one plugin instance. Called once per configured instance at startup.
 * `parameters` is the raw `plugins[].parameters` value (undefined when absent): the factory must validate it
 * strictly (see `parsePluginParameters`) and throw an error naming the field and the fix when it is wrong.
 * Throwing aborts startup; a factory never silently falls back to a default.
 */
export type PluginFactory = (name: string, parameters: unknown, handle: PluginHandle) => Plugin;

/**
 * What a `--plugin-module` receives: its exported `register(registry)` (or default function) is called once,
 * before startup, and registers each of its plugin types. Type strings are kebab-case and unique across the
 * built-ins and every module; registering after startup, a duplicate or a bad name throws (startup error).
 */
export interface PluginTypeRegistry {
  register(type: string, factory: PluginFactory): void;
}

/** The shape of a plugin module's `register` export. It may be async (awaited before startup). */
export type RegisterPlugins = (registry: PluginTypeRegistry) => void | Promise<void>;
