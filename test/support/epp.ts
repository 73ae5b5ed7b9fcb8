/** Starts an EPP on loopback (plaintext, ephemeral ports) with test plugins and a fixed pool. */
import type { Endpoint, EndpointStore } from '../../src/framework/datalayer.ts';
import type { PluginRegistry } from '../../src/runtime/plugin-registry.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEpp, staticEndpoints, type EppOptions, type RunningEpp } from '../../src/server/epp.ts';
import { createRandomSource } from '../../src/util/random.ts';

export const POOL = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000'];

export class TestStore implements EndpointStore {
  constructor(public list: Endpoint[]) {}
  endpoints(): readonly Endpoint[] {
    return this.list;
  }
  poolKnown(): boolean {
    return true;
  }
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
    store: new TestStore(staticEndpoints(POOL)),
    logger: silentLogger(),
    random: createRandomSource(42),
    shutdownGraceMs: 1000,
    config: { text: options.configText ?? configText(), origin: 'test' },
    registerPlugins: options.register,
    ...options,
  });
}
