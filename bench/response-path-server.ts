/**
 * Child process of bench/response-path.bench.ts: an EPP ext_proc server with one chunk-hook plugin,
 * configured by argv[2]: none | io-async | io-inline | cpu-async. Prints its port on stdout.
 */
import type { Plugin } from '../src/framework/plugin.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { startEpp } from '../src/server/epp.ts';
import { fixedStore } from '../test/support/epp.ts';

const mode = process.argv[2] ?? 'none';
const hook = (name: string): Plugin => ({
  typedName: { type: 'bench-hook', name },
  ...(mode === 'cpu-async'
    ? {
        onResponseChunk() {
          const end = performance.now() + 0.2;
          while (performance.now() < end);
        },
      }
    : mode === 'none'
      ? {}
      : {
          onResponseChunk() {
            // A timer standing in for a call to a metrics or prediction service.
            return new Promise<void>((resolve) => setTimeout(resolve, 2));
          },
        }),
});

const epp = await startEpp({
  grpcPort: 0,
  grpcHealthPort: -1,
  host: '127.0.0.1',
  secureServing: false,
  store: fixedStore(['127.0.0.11:8000', '127.0.0.12:8000']), // routing only: nothing is sent there
  logger: silentLogger(),
  registerPlugins: (r) => r.register('bench-hook', (name) => hook(name)),
  responsePath: { chunkHookMode: mode === 'io-inline' ? 'inline' : 'async', hookTimeoutMs: 5000 },
  config: {
    origin: 'bench',
    text: `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [enableLegacyMetrics]
plugins:
- type: random-picker
- type: bench-hook
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
`,
  },
});
process.stdout.write(`${epp.grpcPort}\n`);
process.on('SIGTERM', () => void epp.close().then(() => process.exit(0)));
