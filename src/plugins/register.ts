/**
 * The single list of built-in plugin types. Each entry maps an upstream type string to its factory.
 * Keep one line per type, grouped by area; the registry rejects duplicates at startup.
 */
import type { PluginFactory } from '../framework/plugin.ts';

export interface PluginTypeRegistration {
  readonly type: string;
  readonly factory: PluginFactory;
}

export const BUILTIN_PLUGINS: readonly PluginTypeRegistration[] = [
  // --- request control
  // --- parsers
  // --- scheduling: profile handlers, pickers, scorers, filters
  // --- data layer: sources, extractors
];

/**
 * Producers created automatically (with default parameters, name = type) when a configured plugin consumes a
 * key that no configured plugin produces (upstream runner behaviour, epp-spec §2.3).
 */
export const DEFAULT_PRODUCERS: Readonly<Record<string, string>> = {
  // 'PrefixCacheMatchInfoKey': 'approx-prefix-cache-producer',
};
