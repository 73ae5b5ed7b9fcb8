/**
 * Plugin types known to this process. It starts empty: startup registers the built-ins (`registerBuiltins` in
 * plugins/register.ts) and whatever `--plugin-module` files register.
 * Registration closes when the EPP starts (`freeze()`): the set of types and hooks never changes afterwards.
 */
import type { PluginFactory } from '../framework/plugin.ts';

const TYPE_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export class PluginRegistry {
  readonly #factories = new Map<string, PluginFactory>();
  /** Data key → the plugin type the config compiler adds when a consumer needs the key and nobody produces it. */
  readonly #defaultProducers = new Map<string, string>();
  #frozen = false;

  /** Registers a plugin type. Type strings are kebab-case and unique. Throws after `freeze()`. */
  register(type: string, factory: PluginFactory): void {
    if (this.#frozen) throw new Error(`cannot register plugin type '${type}': the plugin registry is closed (registration happens before startup)`);
    if (!TYPE_NAME.test(type)) throw new Error(`invalid plugin type '${type}': use kebab-case (lower-case letters, digits and '-')`);
    if (typeof factory !== 'function') throw new Error(`plugin type '${type}': factory must be a function (name, parameters, handle) => plugin`);
    if (this.#factories.has(type)) throw new Error(`plugin type '${type}' is already registered`);
    this.#factories.set(type, factory);
  }

  /**
   * Replaces the factory of an already registered type (e.g. the process wiring built-in defaults from
   * deprecated flags into a plugin). Throws after `freeze()` or for an unknown type.
   */
  replace(type: string, factory: PluginFactory): void {
    if (this.#frozen) throw new Error(`cannot replace plugin type '${type}': the plugin registry is closed`);
    if (!this.#factories.has(type)) throw new Error(`cannot replace plugin type '${type}': it is not registered`);
    this.#factories.set(type, factory);
  }

  /**
   * Names the plugin type that produces `key` by default (epp-spec §2.3): when a configured plugin consumes `key`
   * and none produces it, the config compiler adds an instance of `type`. Throws after `freeze()`.
   */
  setDefaultProducer(key: string, type: string): void {
    if (this.#frozen) throw new Error(`cannot set the default producer of '${key}': the plugin registry is closed`);
    this.#defaultProducers.set(key, type);
  }

  defaultProducerOf(key: string): string | undefined {
    return this.#defaultProducers.get(key);
  }

  get(type: string): PluginFactory | undefined {
    return this.#factories.get(type);
  }

  has(type: string): boolean {
    return this.#factories.has(type);
  }

  types(): string[] {
    return [...this.#factories.keys()].sort();
  }

  freeze(): void {
    this.#frozen = true;
  }
}

