/**
 * Child process of bench/gateway.bench.ts: the embedded gateway with the micro-benchmarks' default plugins
 * (`approx-322`, bench/support/default-plugins.ts) routing to one upstream (argv[2] = its port).
 */
import { silentLogger } from '../src/observability/logger.ts';
import { startEpp } from '../src/server/bootstrap.ts';
import { fixedStore } from '../test/support/epp.ts';
import { announce } from './support/child.ts';
import { BENCH_DEFAULT_PLUGINS, benchConfigText } from './support/default-plugins.ts';

const upstreamPort = Number(process.argv[2]);
const epp = await startEpp({
  extProc: false,
  grpcPort: 0,
  grpcHealthPort: -1,
  secureServing: false,
  gateway: { port: 0 },
  store: fixedStore([`127.0.0.1:${upstreamPort}`]),
  logger: silentLogger(),
  config: { origin: `bench: ${BENCH_DEFAULT_PLUGINS}`, text: benchConfigText(BENCH_DEFAULT_PLUGINS) },
});
announce(epp.gatewayPort as number, () => epp.close());
