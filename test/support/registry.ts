/** A plugin registry with every built-in type, as startup builds it (tests that load configs without a server). */
import { registerBuiltins } from '../../src/plugins/register.ts';
import { PluginRegistry } from '../../src/runtime/plugin-registry.ts';

export function builtinRegistry(): PluginRegistry {
  const registry = new PluginRegistry();
  registerBuiltins(registry);
  return registry;
}
