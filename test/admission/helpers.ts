/**
 * Drives one EPP in either data plane with the same calls, for the client-visible table of epp-spec §6.5:
 * ext_proc through the Envoy-like client, the embedded gateway over HTTP in front of fake model servers that
 * hold each request until the test releases it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Datastore, parseStaticEndpoints } from '../../src/datalayer/index.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { startEpp } from '../../src/server/bootstrap.ts';
import type { EppOptions, RunningEpp } from '../../src/server/bootstrap-options.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { FakeEnvoy, setHeaders, type EnvoyStream } from '../support/fake-envoy.ts';
import { waitUntil } from '../support/wait.ts';

export type Mode = 'ext_proc' | 'gateway';
export const MODES: readonly Mode[] = ['ext_proc', 'gateway'];

export interface Reply {
  /** 200 = routed (ext_proc: a request-headers reply; gateway: the upstream's answer). */
  readonly status: number;
  readonly body: string;
  /** ext_proc: the destination header; gateway: the upstream that answered. */
  readonly destination: string;
}

export interface Sent {
  /** Settles once the EPP answered (routed or refused). */
  readonly reply: Promise<Reply>;
  /** Ends the request: the client goes away (ext_proc cancel / HTTP abort); a routed request completes. */
  cancel(): void;
}

const CHAT = JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hello' }] });

/** A fake model server: answers every POST when released (FIFO), 404 elsewhere. */
class HoldingUpstream {
  readonly server: Server;
  readonly held: ServerResponse[] = [];
  constructor() {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== 'POST') return void res.writeHead(404).end();
      req.resume();
      req.on('end', () => this.held.push(res));
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }
  releaseAll(): void {
    for (const res of this.held.splice(0)) {
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"model":"m1","choices":[]}');
    }
  }
  close(): Promise<void> {
    this.releaseAll();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface Rig {
  readonly epp: RunningEpp;
  readonly mode: Mode;
  /** Addresses in the pool (`ip:port`). */
  readonly pool: readonly string[];
  send(headers?: Record<string, string>, subset?: string[]): Sent;
  /**
   * Gateway mode: waits until the fake model servers hold `expected` requests (the gateway forwards after
   * routing, asynchronously), then answers them all. No-op for ext_proc.
   */
  releaseUpstreams(expected: number): Promise<void>;
  close(): Promise<void>;
}

export function resourcesFile(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'epp-resources-'));
  const file = join(dir, 'resources.yaml');
  writeFileSync(file, yaml);
  return file;
}

export const OBJECTIVES_YAML = `apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec: {priority: -1, poolRef: {name: any-pool}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: critical}
spec: {priority: 10, poolRef: {name: any-pool}}
`;

export function config(o: { flowControl?: string; detector?: string; filterAll?: boolean } = {}): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [${o.flowControl !== undefined ? 'flowControl' : ''}]
plugins:
- type: random-picker
- type: concurrency-detector
  parameters: {maxConcurrency: 1}
${o.filterAll ? '- type: header-based-testing-filter\n' : ''}schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
${o.filterAll ? '  - pluginRef: header-based-testing-filter\n' : ''}${o.detector ? `saturationDetector: {pluginRef: ${o.detector}}\n` : ''}${o.flowControl !== undefined ? `flowControl:\n${o.flowControl}` : ''}
`;
}

export async function startRig(
  mode: Mode,
  o: { configText: string; endpoints?: number; resources?: string; admission?: EppOptions['admission'] },
): Promise<Rig> {
  const upstreams: HoldingUpstream[] = [];
  const n = o.endpoints ?? 1;
  let pool: string[];
  if (mode === 'gateway') {
    for (let i = 0; i < n; i++) upstreams.push(new HoldingUpstream());
    pool = await Promise.all(upstreams.map(async (u) => `127.0.0.1:${await u.listen()}`));
  } else {
    pool = Array.from({ length: n }, (_, i) => `127.0.0.${11 + i}:8000`);
  }
  const store = new Datastore();
  if (pool.length > 0) store.replaceAll(parseStaticEndpoints(pool, 'default'));
  store.setPoolKnown(true);
  const epp = await startEpp({
    grpcPort: 0,
    grpcHealthPort: -1,
    host: '127.0.0.1',
    secureServing: false,
    extProc: mode === 'ext_proc',
    ...(mode === 'gateway' ? { gateway: { port: 0 } } : {}),
    store,
    logger: silentLogger(),
    random: createRandomSource(42),
    shutdownGraceMs: 200,
    config: { text: o.configText, origin: 'test' },
    admission: { ...(o.resources ? { resourcesFile: resourcesFile(o.resources) } : {}), ...o.admission },
  });
  const envoy = mode === 'ext_proc' ? new FakeEnvoy(epp.grpcPort) : undefined;
  const streams: EnvoyStream[] = [];
  const aborts: AbortController[] = [];
  return {
    epp,
    mode,
    pool,
    send(headers = {}, subset) {
      if (envoy) {
        const s = envoy.open();
        streams.push(s);
        const md = subset ? { metadataContext: { filterMetadata: { 'envoy.lb.subset_hint': { 'x-gateway-destination-endpoint-subset': subset } } } } : {};
        const h = { ':path': '/v1/chat/completions', ':method': 'POST', 'content-type': 'application/json', ...headers };
        s.send({ request: { case: 'requestHeaders', value: { headers: { headers: Object.entries(h).map(([key, v]) => ({ key, rawValue: new TextEncoder().encode(v) })) }, endOfStream: false } }, ...md });
        s.send({ request: { case: 'requestBody', value: { body: new TextEncoder().encode(CHAT), endOfStream: true } }, ...md });
        const reply = s.next().then((r): Reply => {
          if (r.response.case === 'immediateResponse') {
            const v = r.response.value;
            return { status: v.status?.code ?? 0, body: new TextDecoder().decode(v.body), destination: '' };
          }
          return { status: 200, body: '', destination: setHeaders(r)[0]?.[1] ?? '' };
        });
        return { reply, cancel: () => s.cancel() };
      }
      const ac = new AbortController();
      aborts.push(ac);
      const reply = fetch(`http://127.0.0.1:${epp.gatewayPort}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: CHAT,
        signal: ac.signal,
      }).then(async (res): Promise<Reply> => ({ status: res.status, body: await res.text(), destination: '' }));
      reply.catch(() => {});
      return { reply, cancel: () => ac.abort() };
    },
    async releaseUpstreams(expected) {
      if (upstreams.length === 0) return;
      await waitUntil(() => upstreams.reduce((n, u) => n + u.held.length, 0) >= expected, `${expected} requests at the model servers`);
      for (const u of upstreams) u.releaseAll();
    },
    async close() {
      for (const s of streams) s.cancel();
      for (const a of aborts) a.abort();
      envoy?.close();
      await epp.close();
      await Promise.all(upstreams.map((u) => u.close()));
    },
  };
}

/** Resolves when the EPP holds `n` requests in flight (admitted and not released). */
export function inFlight(rig: Rig): number {
  return rig.epp.admission.tracker.total;
}
