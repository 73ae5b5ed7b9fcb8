/**
 * Response-path overhead: per-chunk round-trip time through the real ext_proc server.
 *
 * One op = one response-body message sent by an Envoy-like client and its reply received (ping-pong, as Envoy
 * in FULL_DUPLEX_STREAMED mode). Each stream: request headers + body, response headers, 50 SSE chunks (the
 * last with end_of_stream). `STREAMS` streams run concurrently over 2 HTTP/2 connections. The server runs in
 * its own process (so a CPU-burning hook costs the server, not the client), once per scenario:
 *   (a) none       no response hooks                       — the baseline
 *   (b) io-async   a chunk hook awaiting 2 ms of "I/O"      — default async mode
 *   (c) io-inline  the same hook, awaited inline            — what upstream did before c6d3ad1
 *   (d) cpu-async  a chunk hook burning 0.2 ms of CPU       — its reply leaves before it runs
 * Prints per-chunk RTT p50/p99 (µs) and the ratios b/a, c/a, d/a. Final-chunk RTTs are excluded (the final
 * reply waits for the queue by design). Usage: npm run bench:response-path [-- --streams 16 --rounds 20]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { FakeEnvoy } from '../test/support/fake-envoy.ts';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const STREAMS = arg('streams', 16);
const ROUNDS = arg('rounds', 20);
const CHUNKS = 50;
const BODY = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hello '.repeat(300) }] });
const CHUNK = 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"delta":{"content":"tok tok tok"}}]}\n\n';

async function oneStream(envoy: FakeEnvoy, rtts: number[]): Promise<void> {
  const s = envoy.open();
  s.requestHeaders({ ':path': '/v1/chat/completions', 'content-type': 'application/json' });
  s.requestBody(BODY, true);
  await s.nextN(2);
  s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
  await s.next();
  for (let i = 0; i < CHUNKS; i++) {
    const last = i === CHUNKS - 1;
    const t = performance.now();
    s.responseBody(CHUNK, last);
    await s.next();
    if (!last) rtts.push((performance.now() - t) * 1000);
  }
  s.end();
  await s.ended;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

async function scenario(mode: string): Promise<{ p50: number; p99: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./response-path-server.ts', import.meta.url).pathname, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, EPP_LOG_LEVEL: 'silent' },
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const clients = [new FakeEnvoy(port, undefined, { 'grpc.use_local_subchannel_pool': 1 }), new FakeEnvoy(port, undefined, { 'grpc.use_local_subchannel_pool': 1 })];
  const rtts: number[] = [];
  // warm-up
  await Promise.all(Array.from({ length: STREAMS }, (_, i) => oneStream(clients[i % 2] as FakeEnvoy, [])));
  for (let r = 0; r < ROUNDS; r++) {
    await Promise.all(Array.from({ length: STREAMS }, (_, i) => oneStream(clients[i % 2] as FakeEnvoy, rtts)));
  }
  for (const c of clients) c.close();
  child.kill('SIGTERM');
  await once(child, 'exit');
  return { p50: pct(rtts, 50), p99: pct(rtts, 99) };
}

const results: Record<string, { p50: number; p99: number }> = {};
for (const mode of ['none', 'io-async', 'io-inline', 'cpu-async']) results[mode] = await scenario(mode);
const a = results.none as { p50: number; p99: number };
console.log(`response path: ${STREAMS} concurrent streams × ${CHUNKS} chunks × ${ROUNDS} rounds, node ${process.version}`);
console.log('scenario                         p50 µs    p99 µs   p50/a  p99/a');
const label: Record<string, string> = {
  none: '(a) no hooks',
  'io-async': '(b) 2 ms I/O hook, async',
  'io-inline': '(c) 2 ms I/O hook, inline',
  'cpu-async': '(d) 0.2 ms CPU hook, async',
};
for (const [mode, r] of Object.entries(results)) {
  console.log(`${(label[mode] ?? mode).padEnd(30)} ${r.p50.toFixed(0).padStart(8)} ${r.p99.toFixed(0).padStart(9)} ${(r.p50 / a.p50).toFixed(2).padStart(7)} ${(r.p99 / a.p99).toFixed(2).padStart(6)}`);
}
