/**
 * Hostile soak: the probes of test/hardening at scale, against a child EPP (`epp serve` with ext_proc, the embedded
 * gateway and the admin server; default limits except the timeouts, shortened so the run stays short) in front of
 * scriptable fake model servers in this process. After each phase it reports the EPP's RSS (current and peak),
 * open fds and the /metrics series count, and checks the issue's bounds:
 *
 *   - 6 concurrent maximum-size bodies (default --max-request-body-bytes): peak RSS ≤ 1 GiB
 *   - a client that never reads a streamed response: ≤ 16 MiB more RSS
 *   - thousands of distinct model names (gateway and ext_proc): series count bounded
 *   - hung and stalled model servers: every client answered within its configured timeout
 *   - silent and slow clients, idle ext_proc streams: closed; fds back to where they were
 *
 *   npm run soak:hostile                  # 2,000 names per data plane, 2,000 silent clients, 2,000 idle streams, 50 hung
 *   npm run soak:hostile -- --names 20000 --silent 5000
 *
 * Loopback only; every wait is bounded. Exit code 1 when a bound is exceeded.
 */
import { spawn } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.ts';
import { FakeEnvoy } from '../test/support/fake-envoy.ts';
import { DEFAULT_MAX_REQUEST_BODY_BYTES as MAX_BODY } from '../src/server/defaults.ts';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '2000' },
    silent: { type: 'string', default: '2000' },
    'idle-streams': { type: 'string', default: '2000' },
    hung: { type: 'string', default: '50' },
  },
});
const NAMES = Number(values.names);
const SILENT = Number(values.silent);
const IDLE_STREAMS = Number(values['idle-streams']);
const HUNG = Number(values.hung);
const TIMEOUT_MS = 2000; // headers, body idle, upstream headers / idle, ext_proc idle (shortened for the run)
const MiB = 1024 * 1024;

// ------------------------------------------------------------------ fake model servers

/** Behaviour chosen per request by the `x-soak` header (forwarded by the gateway). */
function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') return void res.writeHead(404).end(); // no /v1/models: every name is accepted
  const mode = String(req.headers['x-soak'] ?? 'ok');
  req.resume();
  req.on('end', () => {
    if (mode === 'hang') return; // accepts, never answers
    if (mode === 'stall') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"x"}}]}\n\n');
      return; // then nothing
    }
    if (mode === 'firehose') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = (): void => {
        while (sent < 1024 * MiB) {
          sent += chunk.length;
          firehoseSent = sent;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (firehoseClosed = true));
      return pump();
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}');
  });
}
let firehoseSent = 0;
let firehoseClosed = false;

const upstreams = await Promise.all(
  [0, 1].map(async () => {
    const s = http.createServer(upstreamHandler);
    s.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return s;
  }),
);
const endpoints = upstreams.map((s) => `127.0.0.1:${(s.address() as AddressInfo).port}`).join(',');

// ------------------------------------------------------------------ the EPP under test

const [grpcPort, gatewayPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
const dur = `${TIMEOUT_MS}ms`;
const child = spawn(
  process.execPath,
  [
    'bin/epp.js',
    'serve',
    `--endpoints=${endpoints}`,
    '--secure-serving=false',
    `--grpc-port=${grpcPort}`,
    '--grpc-health-port=0',
    `--metrics-port=${metricsPort}`,
    `--gateway-port=${gatewayPort}`,
    '--refresh-metrics-interval=1h',
    `--gateway-headers-timeout=${dur}`,
    `--gateway-body-idle-timeout=${dur}`,
    `--upstream-headers-timeout=${dur}`,
    `--upstream-idle-timeout=${dur}`,
    `--ext-proc-idle-timeout=${dur}`,
  ],
  { env: { ...process.env, EPP_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'], cwd: new URL('..', import.meta.url).pathname },
);
const pid = child.pid as number;
// Never leave the EPP behind, whatever ends this script.
process.on('exit', () => child.kill('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

function status(field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
const rss = (): number => status('VmRSS');
const fds = (): number => readdirSync(`/proc/${pid}/fd`).length;

function request(port: number, path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c.length < 4096 ? c : c.slice(0, 4096)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', () => resolve({ status: -1, text: 'cut' }));
    });
    req.on('error', (e) => resolve({ status: -1, text: e.message }));
    req.end(init.body);
  });
}

async function seriesCount(): Promise<number> {
  return (await fullMetrics()).split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
}
function fullMetrics(): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    }).on('error', reject);
  });
}

const failures: string[] = [];
function check(ok: boolean, what: string): void {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}
type Snapshot = { rss: number; hwm: number; fds: number; series: number };
async function snapshot(): Promise<Snapshot> {
  return { rss: rss(), hwm: status('VmHWM'), fds: fds(), series: await seriesCount() };
}
function report(phase: string, a: Snapshot, b: Snapshot, extra = ''): void {
  const f = (n: number): string => n.toFixed(1);
  console.log(`${phase.padEnd(34)} RSS ${f(a.rss)} → ${f(b.rss)} MiB (peak ${f(b.hwm)})  fds ${a.fds} → ${b.fds}  series ${a.series} → ${b.series}${extra ? `  ${extra}` : ''}`);
}
const chat = (model: string, stream = false): string => JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] });

try {
  await waitFor(async () => (await request(metricsPort, '/readyz')).status === 200, 'the EPP to become ready');
  for (let i = 0; i < 50; i++) await request(gatewayPort, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat('warm-up') });
  console.log(`EPP pid ${pid}; timeouts shortened to ${TIMEOUT_MS} ms; other limits at their defaults\n`);

  // 1. Distinct model names through the gateway and ext_proc.
  {
    const a = await snapshot();
    const half = Math.floor(NAMES / 2);
    const send = (from: number, to: number, prefix: string): Promise<unknown> =>
      Promise.all(Array.from({ length: to - from }, (_, j) => request(gatewayPort, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat(`${prefix}${from + j}`) })));
    for (let i = 0; i < half; i += 100) {
      await send(i, Math.min(half, i + 100), 'gw-model-');
    }
    const mid = await snapshot();
    for (let i = half; i < NAMES; i += 100) {
      await send(i, Math.min(NAMES, i + 100), 'gw-model-');
    }
    const afterGateway = await snapshot();
    const envoy = new FakeEnvoy(grpcPort);
    const xpOutcomes: Record<string, number> = {};
    for (let i = 0; i < NAMES; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, j) => {
          const s = envoy.open();
          s.requestHeaders({ ':path': '/v1/chat/completions', ':method': 'POST' });
          s.requestBody(chat(`xp-model-${i + j}`), true);
          let timer: NodeJS.Timeout | undefined;
          const first = await Promise.race([
            s.next().then((r) => String(r.response.case)),
            s.ended.then((e) => `ended ${e.code}`),
            new Promise<string>((r) => (timer = setTimeout(() => r('no reply in 10 s'), 10_000))),
          ]);
          clearTimeout(timer);
          if (first !== 'requestHeaders') xpOutcomes[first] = (xpOutcomes[first] ?? 0) + 1;
          // Half-close rather than cancel: thousands of RST_STREAMs on one connection trip Node's rapid-reset guard.
          s.end();
          await s.ended;
        }),
      );
    }
    envoy.close();
    const started = Date.now();
    const b = await snapshot();
    report(`${2 * NAMES} distinct model names`, a, b, `scrape ${Date.now() - started} ms`);
    // Bounded = a plateau: once the first names filled the label allowance, later names add no series.
    const late = afterGateway.series - mid.series + (b.series - afterGateway.series);
    console.log(`  series: +${mid.series - a.series} for the first ${half} gateway names, +${afterGateway.series - mid.series} for the next ${NAMES - half}, +${b.series - afterGateway.series} for ${NAMES} ext_proc names`);
    check(Object.keys(xpOutcomes).length === 0, `every ext_proc stream routed (others: ${JSON.stringify(xpOutcomes)})`);
    check(late <= 100 && b.series < 20_000, `series count bounded (${b.series} series after ${2 * NAMES} names)`);
  }

  // 2. Silent connections and slow-header clients.
  {
    const a = await snapshot();
    // Opened in paced batches: a burst of thousands overflows the listen backlog (511), and the kernel then
    // completes handshakes the server has not accepted yet, seconds later — the kernel's wait, not the gateway's.
    // Lifetime is measured from each socket's own connect.
    const sockets: net.Socket[] = [];
    const lifetimes: number[] = [];
    const closed: Array<Promise<void>> = [];
    for (let i = 0; i < SILENT; i++) {
      const s = net.connect(gatewayPort, '127.0.0.1');
      s.on('error', () => {});
      let connectedAt = 0;
      s.on('connect', () => {
        connectedAt = Date.now();
        if (i % 10 === 0) s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'); // then nothing more
      });
      closed.push(new Promise((r) => s.on('close', () => (connectedAt > 0 && lifetimes.push(Date.now() - connectedAt), r()))));
      sockets.push(s);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 30_000))]);
    const open = sockets.filter((s) => !s.destroyed && s.readyState !== 'closed').length;
    for (const s of sockets) s.destroy();
    await waitFor(() => fds() <= a.fds + 10, 'fds to return', 5000, 50).catch(() => {});
    const b = await snapshot();
    const longest = Math.max(...lifetimes);
    report(`${SILENT} silent/slow connections`, a, b, `closed by the server ${longest} ms after connect at most`);
    check(open === 0 && lifetimes.length === SILENT, `every silent or slow connection closed by the gateway (${open} left open)`);
    check(longest < TIMEOUT_MS + 1500, `each within the headers timeout (+ margin): ${longest} ms`);
    check(b.fds <= a.fds + 10, `fds back (${a.fds} → ${b.fds})`);
  }

  // 3. Idle ext_proc streams (request headers only).
  {
    const a = await snapshot();
    const envoy = new FakeEnvoy(grpcPort);
    const started = Date.now();
    const ends = await Promise.all(
      Array.from({ length: IDLE_STREAMS }, () => {
        const s = envoy.open();
        s.requestHeaders({ ':path': '/v1/chat/completions', ':method': 'POST' });
        return s.ended;
      }),
    );
    const elapsed = Date.now() - started;
    envoy.close();
    const b = await snapshot();
    report(`${IDLE_STREAMS} idle ext_proc streams`, a, b, `all ended in ${elapsed} ms`);
    check(ends.every((e) => e.code === 4) && elapsed < TIMEOUT_MS * 4, `every idle stream ended with DEADLINE_EXCEEDED within the idle timeout (+ margin): ${elapsed} ms`);
  }

  // 4. Hung and stalled model servers.
  {
    const a = await snapshot();
    const started = Date.now();
    const hung = await Promise.all(
      Array.from({ length: HUNG }, () => request(gatewayPort, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', 'x-soak': 'hang' }, body: chat('m') })),
    );
    const hungMs = Date.now() - started;
    const started2 = Date.now();
    const stalled = await Promise.all(
      Array.from({ length: HUNG }, () => request(gatewayPort, '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json', 'x-soak': 'stall' }, body: chat('m', true) })),
    );
    const stallMs = Date.now() - started2;
    const b = await snapshot();
    report(`${HUNG} hung + ${HUNG} stalled upstreams`, a, b, `504s after ${hungMs} ms, streams cut after ${stallMs} ms`);
    check(hung.every((r) => r.status === 504) && hungMs < TIMEOUT_MS + 1500, `every hung upstream answered 504 within the timeout (${hungMs} ms for ${TIMEOUT_MS} ms)`);
    check(stalled.every((r) => r.status === -1) && stallMs < TIMEOUT_MS + 1500, `every stalled stream ended within the idle timeout (${stallMs} ms)`);
    const m = await fullMetrics();
    check(/epp_active_streams\{data_plane="gateway"\} 0/.test(m), 'no gateway request left in flight');
  }

  // 5. A client that never reads a 1 GiB stream.
  {
    const a = await snapshot();
    const sock = net.connect(gatewayPort, '127.0.0.1');
    sock.on('error', () => {});
    const body = chat('m', true);
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Soak: firehose\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    sock.pause();
    let last = -1;
    for (let stable = 0; stable < 10 && firehoseSent < 1024 * MiB; ) {
      await new Promise((r) => setTimeout(r, 100));
      stable = firehoseSent === last ? stable + 1 : 0;
      last = firehoseSent;
    }
    const b = await snapshot();
    report('a client that never reads', a, b, `upstream could send ${(firehoseSent / MiB).toFixed(1)} MiB of 1024`);
    check(b.rss - a.rss <= 16, `non-reading client costs ≤ 16 MiB (${(b.rss - a.rss).toFixed(1)} MiB)`);
    sock.destroy();
    await waitFor(() => firehoseClosed, 'the upstream to be released', 5000, 50).catch(() => {});
  }

  // 6. Six concurrent maximum-size bodies (the default --max-request-body-bytes).
  {
    const a = await snapshot();
    const prompt = 'x'.repeat(MAX_BODY - 200);
    const big = Buffer.from(JSON.stringify({ model: 'm', prompt }));
    const results = await Promise.all(
      Array.from({ length: 6 }, () => request(gatewayPort, '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) }, body: big })),
    );
    const b = await snapshot();
    const counts = results.reduce<Record<number, number>>((acc, r) => ((acc[r.status] = (acc[r.status] ?? 0) + 1), acc), {});
    report(`6 concurrent ${MAX_BODY / MiB} MiB bodies`, a, b, `answers ${JSON.stringify(counts)}`);
    check(b.hwm <= 1024, `peak RSS ≤ 1 GiB (${b.hwm.toFixed(1)} MiB)`);
    check(results.every((r) => r.status === 200 || r.status === 429), 'each body served or refused with 429');
  }
} finally {
  child.kill('SIGTERM');
  for (const s of upstreams) {
    s.closeAllConnections();
    s.close();
  }
}
console.log(failures.length === 0 ? '\nall bounds held' : `\n${failures.length} bound(s) exceeded:\n - ${failures.join('\n - ')}`);
process.exit(failures.length === 0 ? 0 : 1);
