/**
 * The plugin types this process knows: the built-ins (registered on an empty registry), then the types each
 * `--plugin-module` registers. Startup (./bootstrap.ts) calls these before it compiles the config.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EppConfigError } from '../framework/errors.ts';
import {
  METRICS_DATA_SOURCE_TYPE,
  metricsDataSourceFactoryWithDefaults,
  type MetricsDataSourceDefaults,
} from '../plugins/datalayer/source/metrics-data-source/index.ts';
import { registerBuiltins } from '../plugins/register.ts';
import { PluginRegistry } from '../runtime/plugin-registry.ts';

/**
 * What `--plugin-module X` imports: a file when X names an existing path (`./my-plugins.js`, `/opt/p.js`,
 * `plugins.js`), else X as a package specifier (`@acme/epp-plugins`, `epp-plugin-x/sub`), resolved like an
 * import from this package, i.e. from the node_modules the EPP is installed in.
 */
export function pluginModuleSpecifier(arg: string): string {
  const path = resolve(arg);
  if (existsSync(path) || /^(\.{1,2}[\\/]|[\\/]|[A-Za-z]:)/.test(arg) || !/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(\/.*)?$/i.test(arg)) return pathToFileURL(path).href;
  return arg;
}

export async function loadPluginModules(registry: PluginRegistry, files: readonly string[]): Promise<void> {
  for (const file of files) {
    const specifier = pluginModuleSpecifier(file);
    let mod: { default?: unknown; register?: unknown };
    try {
      mod = (await import(specifier)) as typeof mod;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND' || !(err as Error).message.includes(specifier.startsWith('file:') ? resolve(file) : `'${file.split('/').slice(0, file.startsWith('@') ? 2 : 1).join('/')}'`)) throw err;
      throw new EppConfigError(
        `--plugin-module ${file}: no such file, and no installed package of that name`,
        'pass a path to the module (./my-plugins.js) or the name of a package installed next to the EPP (npm install <package>)',
      );
    }
    const register = typeof mod.register === 'function' ? mod.register : mod.default;
    if (typeof register !== 'function') {
      throw new EppConfigError(`--plugin-module ${file}: exports no register function`, 'export `register(registry)` (or a default function) that calls registry.register(type, factory)');
    }
    await (register as (r: PluginRegistry) => unknown)(registry);
  }
}

/** The built-in plugin types; `metrics-data-source` with the flag defaults when any are given. */
export function builtinRegistry(metricsDefaults: MetricsDataSourceDefaults | undefined): PluginRegistry {
  const registry = new PluginRegistry();
  registerBuiltins(registry);
  if (metricsDefaults !== undefined && Object.values(metricsDefaults).some((v) => v !== undefined)) {
    registry.replace(METRICS_DATA_SOURCE_TYPE, metricsDataSourceFactoryWithDefaults(metricsDefaults));
  }
  return registry;
}
