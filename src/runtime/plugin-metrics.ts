/**
 * The metric sources plugins exposed through `PluginHandle.metrics` (contract: src/framework/plugin-metrics.ts),
 * in the order they were exposed (config order). Startup creates one per EPP, before the plugins; the admin
 * wiring reads it to register the metrics.
 */
import type { PluginMetrics, PrecisePrefixMetricsSource, PrefixIndexMetricsSource, TokenSourceMetricsSource } from '../framework/plugin-metrics.ts';

export class PluginMetricSources implements PluginMetrics {
  readonly prefixIndexes: PrefixIndexMetricsSource[] = [];
  readonly precisePrefixes: PrecisePrefixMetricsSource[] = [];
  readonly tokenSources: TokenSourceMetricsSource[] = [];

  prefixIndex(source: PrefixIndexMetricsSource): void {
    this.prefixIndexes.push(source);
  }

  precisePrefix(source: PrecisePrefixMetricsSource): void {
    this.precisePrefixes.push(source);
  }

  tokenSource(source: TokenSourceMetricsSource): void {
    this.tokenSources.push(source);
  }
}
