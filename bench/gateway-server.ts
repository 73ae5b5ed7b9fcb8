/** Child process of bench/gateway.bench.ts: the embedded gateway routing to one upstream (argv[2] = port). */
import { silentLogger } from '../src/observability/logger.ts';
import { startEpp } from '../src/server/epp.ts';
import { fixedStore } from '../test/support/epp.ts';

const upstreamPort = Number(process.argv[2]);
const epp = await startEpp({
  extProc: false,
  grpcPort: 0,
  grpcHealthPort: -1,
  secureServing: false,
  gateway: { port: 0 },
  store: fixedStore([`127.0.0.1:${upstreamPort}`]),
  logger: silentLogger(),
  config: {
    origin: 'bench',
    text: `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
`,
  },
});
process.stdout.write(`${epp.gatewayPort}\n`);
process.on('SIGTERM', () => void epp.close().then(() => process.exit(0)));
