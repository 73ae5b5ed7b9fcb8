/**
 * Child process of bench/response-path.bench.ts: an EPP ext_proc server with the micro-benchmarks' default plugins
 * (`approx-322`, bench/support/default-plugins.ts, or the preset named by argv[3]) and one chunk-hook plugin, configured by argv[2]:
 * none | io-async | io-inline | cpu-async. Forked once per run and kept alive while the scenarios alternate (bench/support/child.ts).
 */
import type { Plugin } from '../src/framework/plugin.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { startEpp } from '../src/server/bootstrap.ts';
import { fixedStore } from '../test/support/epp.ts';
import { announce } from './support/child.ts';
import { BENCH_DEFAULT_PLUGINS, benchConfigText } from './support/default-plugins.ts';

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

const presetName = process.argv[3] ?? BENCH_DEFAULT_PLUGINS;
const preset = benchConfigText(presetName);
const epp = await startEpp({
  grpcPort: 0,
  grpcHealthPort: -1,
  host: '127.0.0.1',
  secureServing: false,
  store: fixedStore(['127.0.0.11:8000', '127.0.0.12:8000', '127.0.0.13:8000', '127.0.0.14:8000']), // routing only: nothing is sent there
  logger: silentLogger(),
  registerPlugins: (r) => r.register('bench-hook', (name) => hook(name)),
  responsePath: { chunkHookMode: mode === 'io-inline' ? 'inline' : 'async', hookTimeoutMs: 5000 },
  config: {
    origin: `bench: ${presetName} preset + bench-hook`,
    // The preset's plugins plus the hook (a response-path plugin needs no place in a scheduling profile).
    text: preset.replace(/^plugins:\n/m, 'plugins:\n- type: bench-hook\n'),
  },
});
announce(epp.grpcPort, () => epp.close());
