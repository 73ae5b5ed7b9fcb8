/**
 * Per-chunk latency the embedded gateway adds to a streamed response, against a direct connection.
 *
 * One op = one SSE chunk: a fake upstream (in this process) writes an event carrying its send time every
 * `INTERVAL_MS` per stream; the client (this process, same clock) records receive − send. Scenarios run
 * back to back in one process: direct to the upstream, then through the gateway (its own process), at 1
 * and `STREAMS` concurrent streams. The model server is deliberately fake (no token generation cost), so
 * the figure is the proxy's own cost. Prints p50/p99 µs and the added p50 (via − direct).
 * Usage: npm run bench:gateway [-- --streams 16 --chunks 200]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const STREAMS = arg('streams', 16);
const CHUNKS = arg('chunks', 200);
const INTERVAL_MS = 2;
const now = () => performance.timeOrigin + performance.now();

const upstream = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    let i = 0;
    const t = setInterval(() => {
      res.write(`data: {"object":"chat.completion.chunk","t":${now()},"choices":[{"delta":{"content":"tok"}}]}\n\n`);
      if (++i === CHUNKS) {
        clearInterval(t);
        res.end('data: [DONE]\n\n');
      }
    }, INTERVAL_MS);
  });
});
upstream.listen(0, '127.0.0.1');
await once(upstream, 'listening');
const upstreamPort = (upstream.address() as AddressInfo).port;

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const BODY = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hello' }] });

function stream(port: number, out: number[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/v1/chat/completions', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let carry = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        const at = now();
        carry += d;
        let nl;
        while ((nl = carry.indexOf('\n\n')) >= 0) {
          const ev = carry.slice(0, nl);
          carry = carry.slice(nl + 2);
          const m = /"t":([0-9.]+)/.exec(ev);
          if (m) out.push((at - Number(m[1])) * 1000);
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(BODY);
  });
}

async function measure(port: number, streams: number): Promise<{ p50: number; p99: number }> {
  await Promise.all(Array.from({ length: streams }, () => stream(port, []))); // warm-up
  const xs: number[] = [];
  for (let r = 0; r < 3; r++) await Promise.all(Array.from({ length: streams }, () => stream(port, xs)));
  xs.sort((a, b) => a - b);
  return { p50: xs[Math.floor(xs.length * 0.5)] as number, p99: xs[Math.floor(xs.length * 0.99)] as number };
}

const child = spawn(process.execPath, ['--import', 'tsx', new URL('./gateway-server.ts', import.meta.url).pathname, String(upstreamPort)], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, EPP_LOG_LEVEL: 'silent' },
});
const [line] = (await once(child.stdout, 'data')) as [Buffer];
const gatewayPort = Number(line.toString().trim());

console.log(`gateway per-chunk latency: ${CHUNKS} chunks/stream every ${INTERVAL_MS} ms, 3 rounds, node ${process.version}`);
console.log('streams   direct p50/p99 µs    gateway p50/p99 µs    added p50 µs   p50 ratio');
for (const n of [1, STREAMS]) {
  const d = await measure(upstreamPort, n);
  const g = await measure(gatewayPort, n);
  console.log(
    `${String(n).padStart(7)}   ${d.p50.toFixed(0).padStart(6)} / ${d.p99.toFixed(0).padStart(6)}     ${g.p50.toFixed(0).padStart(6)} / ${g.p99.toFixed(0).padStart(6)}     ${(g.p50 - d.p50).toFixed(0).padStart(8)}     ${(g.p50 / d.p50).toFixed(2)}`,
  );
}
child.kill('SIGTERM');
await once(child, 'exit');
agent.destroy();
upstream.close();
