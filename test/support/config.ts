/** Test helper: a configuration source planned (src/config) and compiled by the runtime, as startup does. */
import { planConfig, type ConfigSource } from '../../src/config/loader.ts';
import { compileConfig, type CompileOptions, type LoadedConfig } from '../../src/runtime/compile-config.ts';

export function loadConfig(source: ConfigSource, options: CompileOptions): LoadedConfig {
  return compileConfig(planConfig(source), options);
}
