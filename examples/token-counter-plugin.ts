/**
 * An example user plugin: counts completion tokens per endpoint and reports the running total of the
 * endpoint that served the request as dynamic metadata on the final reply.
 *
 *   npx epp serve --plugin-module examples/token-counter-plugin.ts --config-file my-config.yaml
 *
 * with, in my-config.yaml:   plugins: [{ type: token-counter, name: tokens }]
 */
import type { Outcome, PluginFactory, PluginTypeRegistry, ResponseCompleteHook, ResponseInfo } from 'endpoint-picker';

class TokenCounter implements ResponseCompleteHook {
  readonly typedName;
  readonly #totals = new Map<string, number>();
  constructor(name: string) {
    this.typedName = { type: 'token-counter', name };
  }
  // Runs exactly once per scheduled request, whatever the outcome; only successes carry full usage.
  onResponseComplete(response: ResponseInfo, outcome: Outcome): void {
    if (outcome.kind !== 'success' || !outcome.usage || !response.targetEndpoint) return;
    const key = response.targetEndpoint.hostPort;
    const total = (this.#totals.get(key) ?? 0) + outcome.usage.completionTokens;
    this.#totals.set(key, total);
    (response.dynamicMetadata['example.token-counter'] ??= {}).endpointTotal = total;
  }
}

const factory: PluginFactory = (name, parameters) => {
  if (parameters !== undefined && parameters !== null) throw new Error('token-counter takes no parameters');
  return new TokenCounter(name);
};

export function register(registry: PluginTypeRegistry): void {
  registry.register('token-counter', factory);
}
