/** Starts an EPP on loopback (plaintext, ephemeral ports) with test plugins and a fixed pool. */
import { Datastore } from '../../src/datalayer/index.ts';
import { parseStaticEndpoints } from '../../src/datalayer/index.ts';
import type { PluginRegistry } from '../../src/runtime/plugin-registry.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEpp } from '../../src/server/bootstrap.ts';
import type { EppOptions, RunningEpp } from '../../src/server/bootstrap-options.ts';
import { createRandomSource } from '../../src/util/random.ts';

/** Loopback addresses: nothing is ever sent to them (tests inject this store, so no scraping either). */
export const POOL = ['127.0.0.11:8000', '127.0.0.12:8000', '127.0.0.13:8000'];

/** A fixed, known pool with empty (stale) metrics. */
export function fixedStore(list: readonly string[] = POOL): Datastore {
  const store = new Datastore();
  store.replaceAll(parseStaticEndpoints(list, 'default'));
  store.setPoolKnown(true);
  return store;
}

export function configText(pluginsYaml = '', profileRefs: string[] = []): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [enableLegacyMetrics]
plugins:
- type: random-picker
${pluginsYaml}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
${profileRefs.map((r) => `  - pluginRef: ${r}`).join('\n')}
`;
}

export async function startTestEpp(
  options: Partial<EppOptions> & { configText?: string; register?: (r: PluginRegistry) => void } = {},
): Promise<RunningEpp> {
  return startEpp({
    grpcPort: 0,
    grpcHealthPort: -1,
    host: '127.0.0.1',
    secureServing: false,
    store: fixedStore(),
    logger: silentLogger(),
    random: createRandomSource(42),
    shutdownGraceMs: 1000,
    config: { text: options.configText ?? configText(), origin: 'test' },
    registerPlugins: options.register,
    ...options,
  });
}
