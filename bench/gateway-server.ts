/**
 * Child process of bench/gateway.bench.ts: the embedded gateway with the default plugins (the `epp-default`
 * preset, what `epp demo` runs) routing to one upstream (argv[2] = its port).
 */
import { CONFIG_PRESETS } from '../src/config/presets.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { startEpp } from '../src/server/bootstrap.ts';
import { fixedStore } from '../test/support/epp.ts';
import { announce } from './support/child.ts';

const upstreamPort = Number(process.argv[2]);
const epp = await startEpp({
  extProc: false,
  grpcPort: 0,
  grpcHealthPort: -1,
  secureServing: false,
  gateway: { port: 0 },
  store: fixedStore([`127.0.0.1:${upstreamPort}`]),
  logger: silentLogger(),
  config: { origin: 'bench: epp-default preset', text: CONFIG_PRESETS['epp-default'] as string },
});
announce(epp.gatewayPort as number, () => epp.close());
