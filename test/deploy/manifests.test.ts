/**
 * deploy/kubernetes renders and is valid: every kustomization renders with `kubectl kustomize`; every object
 * validates against its schema (Kubernetes and Gateway API models from npm, the InferencePool CRD's own
 * openAPIV3Schema and CEL rules); every EPP container's args parse with the real CLI; ports, probes and Services
 * agree; the config the ConfigMap mounts loads; the dashboard queries only metrics that exist.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv, type AnySchema } from 'ajv';
import { celEnv, isCelError, parse as parseCel, plan } from '@bufbuild/cel';
import { parse as parseYaml } from 'yaml';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { buildProgram, discoveryFromFlags, normalizeGoFlags } from '../../src/cli/main.ts';
import { loadConfig } from '../support/config.ts';
import { EppMetrics } from '../../src/observability/metrics.ts';
import { flowControlMetricsOf } from '../../src/observability/flow-control-metrics.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startFleet } from '../../src/sim/index.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { EPP_KUSTOMIZATIONS, KUSTOMIZATIONS, KUSTOMIZE_ROOT, REPO, eppArgv, find, needsKubectl, podSpec, render, type Container, type KubeObject, type Probe } from './kustomize.ts';
import { builtinRegistry } from '../support/registry.ts';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { PluginMetricSources } from '../../src/runtime/plugin-metrics.ts';

const NAMESPACE = 'llm';
const IMAGE_UID = Number(/^USER\s+(\d+)/m.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))?.[1]);

// --- schemas ------------------------------------------------------------------------------------------------

interface Validatable {
  validate(): void;
}
const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'gateway.networking.k8s.io/v1/Gateway': Gateway,
  'gateway.networking.k8s.io/v1/HTTPRoute': HTTPRoute,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

interface CrdSchema {
  [k: string]: unknown;
  properties?: Record<string, CrdSchema>;
  items?: CrdSchema;
  'x-kubernetes-validations'?: Array<{ rule: string; message: string }>;
}

/** A validator from a CRD's own openAPIV3Schema: JSON Schema keywords by ajv (defaults applied), CEL rules by @bufbuild/cel. */
function crdValidator(file: string): (obj: unknown) => string[] {
  const crd = parseYaml(readFileSync(join(import.meta.dirname, '../fixtures/crds', file), 'utf8')) as { spec: { versions: Array<{ schema: { openAPIV3Schema: CrdSchema } }> } };
  const schema = crd.spec.versions[0]?.schema.openAPIV3Schema as CrdSchema;
  const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  const validate = ajv.compile(schema as AnySchema);
  const celErrors = (s: CrdSchema, value: unknown, path: string, out: string[]): void => {
    for (const v of s['x-kubernetes-validations'] ?? []) {
      const result = plan(celEnv(), parseCel(v.rule))({ self: value as never });
      if (isCelError(result) || result !== true) out.push(`${path}: ${v.message} (${v.rule})`);
    }
    if (s.properties && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, sub] of Object.entries(s.properties)) if (k in value) celErrors(sub, (value as Record<string, unknown>)[k], `${path}.${k}`, out);
    }
    if (s.items && Array.isArray(value)) value.forEach((item, i) => celErrors(s.items as CrdSchema, item, `${path}[${i}]`, out));
  };
  return (obj) => {
    const copy = structuredClone(obj);
    const errors = validate(copy) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
    if (errors.length === 0) celErrors(schema, copy, '', errors);
    return errors;
  };
}
const validateInferencePool = crdValidator('inference.networking.k8s.io_inferencepools.yaml');

/** Schema errors of one object ([] = valid); an object of a kind we have no schema for is an error. */
function schemaErrors(o: KubeObject): string[] {
  const key = `${o.apiVersion}/${o.kind}`;
  if (key === 'inference.networking.k8s.io/v1/InferencePool') return validateInferencePool(o);
  const Model = MODELS[key];
  if (Model === undefined) return [`no schema for ${key}: add its model to MODELS`];
  try {
    new Model(o as never).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

test('every kustomization renders, and every object validates against its schema', { skip: needsKubectl }, () => {
  for (const dir of KUSTOMIZATIONS) {
    const objects = render(dir);
    assert.ok(objects.length > 0, `${dir} renders no objects`);
    for (const o of objects) assert.deepEqual(schemaErrors(o), [], `${dir}: ${o.kind}/${o.metadata.name}`);
  }
  // The validators do reject: a container port that is not a number, an InferencePool without targetPorts or
  // whose endpointPickerRef names a Service without a port (a CEL rule of the CRD).
  const deployment = find(render('base'), 'Deployment')[0] as KubeObject;
  (podSpec(deployment).containers[0]?.ports?.[0] as { containerPort: unknown }).containerPort = 'grpc';
  assert.match(schemaErrors(deployment).join(), /containerPort must be integer/);
  const pool = find(render('overlays/inferencepool'), 'InferencePool')[0] as KubeObject & { spec: Record<string, unknown> };
  assert.deepEqual(schemaErrors(pool), []);
  assert.match(schemaErrors({ ...pool, spec: { ...pool.spec, targetPorts: [] } }).join(), /targetPorts must NOT have fewer than 1 items/);
  assert.match(schemaErrors({ ...pool, spec: { ...pool.spec, endpointPickerRef: { name: 'epp' } } }).join(), /port is required when kind is 'Service'/);
});

// --- the EPP's containers -----------------------------------------------------------------------------------

interface ParsedArgs {
  command: string;
  opts: Record<string, unknown>;
}

/** Parses an argv with the real `epp` program (no action runs): unknown flags and bad values throw. */
function parseEppArgs(argv: readonly string[]): ParsedArgs {
  const [command, ...args] = argv;
  const cmd = buildProgram().commands.find((c) => c.name() === command);
  assert.ok(cmd, `unknown epp subcommand '${command}'`);
  const { operands, unknown } = cmd.parseOptions(normalizeGoFlags(args));
  assert.deepEqual(unknown, [], `unknown flags for epp ${command}`);
  assert.deepEqual(operands, [], `stray arguments for epp ${command}`);
  return { command: command as string, opts: cmd.opts() };
}

function probePort(p: Probe | undefined): number | string | undefined {
  return p?.grpc?.port ?? p?.httpGet?.port ?? p?.tcpSocket?.port;
}

function containerPort(c: Container, ref: number | string | undefined): number | undefined {
  const port = c.ports?.find((p) => p.containerPort === ref || p.name === ref);
  return port?.containerPort;
}

test('every EPP container: args parse with the real CLI; ports, probes, Services, security context and mounted config agree', { skip: needsKubectl }, () => {
  let checked = 0;
  for (const dir of [...EPP_KUSTOMIZATIONS, 'model-servers/sim']) {
    const objects = render(dir);
    for (const d of find(objects, 'Deployment')) {
      const spec = podSpec(d);
      const labels = (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
      for (const c of spec.containers) {
        const argv = eppArgv(c, NAMESPACE);
        if (argv === undefined) continue;
        checked++;
        const where = `${dir}: ${d.metadata.name}/${c.name}`;
        const { command, opts } = parseEppArgs(argv);
        const expectPort = (flag: string, port: number | undefined, name: string) => {
          assert.ok(port !== undefined, `${where}: ${flag} not set`);
          assert.equal(containerPort(c, name), port, `${where}: container port '${name}' must be ${flag}=${port}`);
        };
        // Runs as the image's user, with nothing writable but the /tmp emptyDir the image points HOME/TMPDIR at.
        const pod = (d.spec as { template: { spec: { securityContext?: Record<string, unknown> } } }).template.spec.securityContext ?? {};
        assert.equal(pod.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.equal(pod.runAsUser, IMAGE_UID, `${where}: runAsUser is the Dockerfile's USER`);
        assert.deepEqual(
          (c as Container & { securityContext?: unknown }).securityContext,
          { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          `${where}: container securityContext`,
        );
        const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
        assert.ok(tmp && spec.volumes?.find((v) => v.name === tmp.name)?.emptyDir, `${where}: /tmp is an emptyDir (HOME and TMPDIR of the image)`);
        if (command === 'sim') {
          assert.equal(opts.servers, 1, `${where}: one simulated server per pod`);
          expectPort('--base-port', opts.basePort as number, 'http');
          assert.equal(opts.host, '0.0.0.0', `${where}: the simulator must listen on the pod IP`);
          assert.equal(containerPort(c, probePort(c.readinessProbe)), opts.basePort, `${where}: readiness probe port`);
          continue;
        }
        assert.equal(command, 'serve', where);
        const discovery = discoveryFromFlags(opts);
        assert.ok(discovery.kubernetes, `${where}: discovers endpoints in Kubernetes`);
        assert.equal(discovery.namespace, NAMESPACE, `${where}: pool namespace follows the pod's namespace`);
        expectPort('--grpc-port', opts.grpcPort as number, 'grpc');
        expectPort('--grpc-health-port', opts.grpcHealthPort as number, 'grpc-health');
        expectPort('--metrics-port', opts.metricsPort as number, 'metrics');
        if (opts.gatewayPort !== undefined) {
          expectPort('--gateway-port', opts.gatewayPort as number, 'http');
          assert.equal(opts.gatewayHost, '0.0.0.0', `${where}: the gateway must listen on the pod IP`);
        }
        assert.equal(c.readinessProbe?.grpc?.port, opts.grpcHealthPort, `${where}: readiness = gRPC health port`);
        assert.equal(c.livenessProbe?.httpGet?.path, '/healthz', `${where}: liveness = /healthz`);
        assert.equal(containerPort(c, c.livenessProbe?.httpGet?.port), opts.metricsPort, `${where}: liveness on the metrics port`);
        // Shutdown: the pod waits longer than the EPP's own grace period.
        const grace = (d.spec as { template: { spec: { terminationGracePeriodSeconds?: number } } }).template.spec.terminationGracePeriodSeconds ?? 30;
        const preStop = (c as Container & { lifecycle?: { preStop?: { exec?: { command: string[] } } } }).lifecycle?.preStop?.exec?.command;
        const preStopMs = preStop?.[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
        assert.ok(grace * 1000 > preStopMs + (opts.shutdownGracePeriod as number), `${where}: terminationGracePeriodSeconds ${grace}s must exceed preStop + --shutdown-grace-period`);
        // The config file is a key of a mounted ConfigMap, and loads.
        const file = opts.configFile as string;
        const mount = c.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
        assert.ok(mount, `${where}: --config-file ${file} is not under a volume mount`);
        const cmName = spec.volumes?.find((v) => v.name === mount.name)?.configMap?.name;
        const cm = find(objects, 'ConfigMap', cmName)[0] as (KubeObject & { data: Record<string, string> }) | undefined;
        const text = cm?.data[file.slice(mount.mountPath.length + 1)];
        assert.ok(text, `${where}: ConfigMap ${cmName} has no key for ${file}`);
        const loaded = loadConfig(
          { text, origin: `${dir}:${file}` },
          { registry: builtinRegistry(), handle: (lookup) => ({ logger: silentLogger(), clock: { now: () => 0 }, random: createRandomSource(1), plugin: lookup, endpoints: () => [], inflight: new InFlightTracker(), metrics: new PluginMetricSources() }) },
        );
        assert.equal(loaded.profiles.length, 1, `${where}: the mounted config has a profile`);
      }
      // Every Service selecting these pods targets a port the pods declare.
      for (const svc of find(objects, 'Service')) {
        const sel = (svc.spec as { selector: Record<string, string> }).selector;
        if (!Object.entries(sel).every(([k, v]) => labels[k] === v)) continue;
        for (const p of (svc.spec as { ports: Array<{ name: string; targetPort: number | string }> }).ports) {
          assert.ok(
            spec.containers.some((c) => containerPort(c, p.targetPort) !== undefined),
            `${dir}: Service ${svc.metadata.name} port ${p.name} targets '${p.targetPort}', which no container of ${d.metadata.name} declares`,
          );
        }
      }
    }
  }
  assert.equal(checked, 6, 'EPP containers in base, 4 overlays, and the simulated model servers');
});

test('the standalone overlay: Envoy runs deploy/standalone/envoy.yaml unchanged, pointed at the EPP in its pod', { skip: needsKubectl }, () => {
  const objects = render('overlays/standalone');
  const source = readFileSync(join(REPO, 'deploy/standalone/envoy.yaml'), 'utf8');
  assert.equal(readFileSync(join(KUSTOMIZE_ROOT, 'overlays/standalone/envoy.yaml'), 'utf8'), source, 'overlays/standalone/envoy.yaml must be a copy of deploy/standalone/envoy.yaml');
  const spec = podSpec(find(objects, 'Deployment', 'endpoint-picker')[0] as KubeObject);
  const envoy = spec.containers.find((c) => c.name === 'envoy') as Container;
  const epp = spec.containers.find((c) => c.name === 'epp') as Container;
  const { opts } = parseEppArgs(eppArgv(epp, NAMESPACE) as string[]);
  const cmName = spec.volumes?.find((v) => v.name === envoy.volumeMounts?.[0]?.name)?.configMap?.name;
  const envoyConfig = parseYaml((find(objects, 'ConfigMap', cmName)[0] as KubeObject & { data: Record<string, string> }).data['envoy.yaml'] as string) as {
    static_resources: { listeners: Array<{ address: { socket_address: { port_value: number } } }>; clusters: Array<{ name: string; load_assignment?: { endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: { socket_address: { address: string; port_value: number } } } }> }> }; health_checks?: unknown[] }> };
  };
  const eppCluster = envoyConfig.static_resources.clusters.find((c) => c.name === 'epp');
  const addr = eppCluster?.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint.address.socket_address;
  assert.deepEqual(addr, { address: '127.0.0.1', port_value: opts.grpcPort }, 'Envoy reaches ext_proc on the pod loopback at --grpc-port');
  assert.equal(opts.secureServing, true, 'envoy.yaml speaks TLS to the EPP');
  if (eppCluster?.health_checks) assert.equal(opts.healthChecking, true, 'envoy.yaml health-checks the ext_proc port: --health-checking');
  assert.equal(containerPort(envoy, 'http'), envoyConfig.static_resources.listeners[0]?.address.socket_address.port_value, 'the http port is Envoy\'s listener');
});

// --- the dashboard ------------------------------------------------------------------------------------------

test('every metric the Grafana dashboard queries exists: in the EPP registry, or (vllm:*) in a model server\'s /metrics', async () => {
  const dashboard = JSON.parse(readFileSync(join(KUSTOMIZE_ROOT, 'monitoring/endpoint-picker-dashboard.json'), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
  };
  const metrics = new EppMetrics();
  flowControlMetricsOf(metrics);
  const epp = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  const fleet = await startFleet({ servers: 1, basePort: 0 });
  let vllm: Set<string>;
  try {
    const text = await (await fetch(`${fleet.servers[0]?.url}/metrics`)).text();
    vllm = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] as string));
  } finally {
    await fleet.close();
  }
  const queried = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) {
      // Metric names: identifiers (with ':') followed by a selector or range, minus histogram suffixes.
      for (const m of t.expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)) queried.add((m[1] as string).replace(/_(bucket|sum|count)$/, ''));
    }
  }
  assert.ok(queried.size >= 15, `only ${queried.size} metrics found in the dashboard`);
  const missing = [...queried].filter((n) => !epp.has(n) && !vllm.has(n));
  assert.deepEqual(missing, [], 'dashboard metrics that neither the EPP nor a vLLM server exports');
  // The requested views are there.
  const titles = dashboard.panels.map((p) => p.title).join(' | ');
  for (const want of [/Request rate/, /latency/i, /first token/i, /Queue per endpoint/, /KV cache/, /Prefix cache hit ratio/, /Picks per endpoint/, /Queued requests/, /Response-hook errors/, /Response-hook timeouts/]) {
    assert.match(titles, want);
  }
});
