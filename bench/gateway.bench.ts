/**
 * Per-chunk latency the embedded gateway adds to a streamed response, against a direct connection.
 *
 * One op = one SSE chunk: a fake upstream (in this process) writes an event carrying its send time every
 * `INTERVAL_MS` per stream; the client (this process, same clock) records receive − send. Variants: direct to
 * the upstream, through a bare node:http streaming proxy (bench/bare-proxy-server.ts: the floor of any proxy on
 * this stack — a second process and two more loopback hops, no work), or through the gateway (its own process,
 * started once, with the micro-benchmarks' default plugins: `approx-322`, bench/support/default-plugins.ts), at each stream count (default 1 and 16). Every variant is warmed until its p50 stops
 * moving, then all are measured once per repetition in a seeded shuffled order (≥ 3 repetitions). The model
 * server is deliberately fake (no token generation cost), so the figure is the proxy's own cost. Prints, as
 * median [min–max] over repetitions: p50/p99 µs per variant, the added p50 (gateway − direct in the same
 * repetition), the same for the bare proxy, what the gateway adds over the bare proxy, and each proxy process's
 * CPU time per chunk.
 * Usage: npm run bench:gateway [-- --streams 1,16 --chunks 200 --rounds 2 --reps 5 --seed 1 --quick]
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { describeWarmUp, repetitions, warmUntilSteady } from './support/alternate.ts';
import { startChild } from './support/child.ts';
import { printRunInfo } from './support/run-info.ts';
import { formatSpread, percentile, percentiles, spread } from './support/stats.ts';

const { values: args } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,16' },
    chunks: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '2' },
    reps: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
  },
});
const QUICK = args.quick as boolean;
const STREAM_COUNTS = (args.streams as string).split(',').map(Number);
const CHUNKS = Number(args.chunks);
const ROUNDS = QUICK ? 1 : Number(args.rounds);
const REPS = Math.max(3, QUICK ? 3 : Number(args.reps));
const SEED = Number(args.seed);
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

/** `rounds` rounds of `streams` concurrent streams; per-chunk latencies (µs). */
async function rounds(port: number, streams: number, n: number): Promise<number[]> {
  const xs: number[] = [];
  for (let r = 0; r < n; r++) await Promise.all(Array.from({ length: streams }, () => stream(port, xs)));
  return xs;
}

printRunInfo('bench:gateway', [
  `per-chunk latency, ${CHUNKS} chunks/stream every ${INTERVAL_MS} ms, gateway with approx-322 (upstream's scoring, approximate index)`,
  `${REPS} repetitions × ${ROUNDS} rounds per variant, variants shuffled per repetition (seed ${SEED})`,
]);
const gateway = await startChild(new URL('./gateway-server.ts', import.meta.url), [String(upstreamPort)]);
const bare = await startChild(new URL('./bare-proxy-server.ts', import.meta.url), [String(upstreamPort)]);

type Variant = `${number}/${'direct' | 'bare' | 'gateway'}`;
const variants: Variant[] = STREAM_COUNTS.flatMap((n) => [`${n}/direct` as const, `${n}/bare` as const, `${n}/gateway` as const]);
const parse = (v: Variant) => {
  const [n, to] = v.split('/') as [string, 'direct' | 'bare' | 'gateway'];
  const proxy = to === 'gateway' ? gateway : to === 'bare' ? bare : undefined;
  return { streams: Number(n), port: proxy?.port ?? upstreamPort, proxy };
};
const warm: string[] = [];
for (const v of variants) {
  const { streams, port } = parse(v);
  const w = await warmUntilSteady(async () => percentile(await rounds(port, streams, 1), 50), { minRounds: 3, maxRounds: QUICK ? 6 : 15, tolerance: 0.1 });
  warm.push(`${v} ${describeWarmUp(w, 0)}`);
}
console.log(`# warm-up (p50 of one round within 10 % for 2 rounds): ${warm.join('; ')}`);

interface Rep {
  readonly p50: number;
  readonly p99: number;
  /** The proxy process's CPU per chunk (µs); NaN for direct. */
  readonly cpuPerChunk: number;
}
const perRep = await repetitions(variants, { repetitions: REPS, seed: SEED }, async (v): Promise<Rep> => {
  const { streams, port, proxy } = parse(v);
  const c0 = proxy ? await proxy.cpuMicros() : 0;
  const xs = await rounds(port, streams, ROUNDS);
  const cpu = proxy ? ((await proxy.cpuMicros()) - c0) / xs.length : Number.NaN;
  const [p50, p99] = percentiles(xs, [50, 99]) as [number, number];
  return { p50, p99, cpuPerChunk: cpu };
});

console.log(
  '# cells: median of the per-repetition figures [min–max across repetitions]; added = proxy − direct p50 within each repetition; ' +
    'gateway − bare = what the gateway adds over the bare proxy in the same repetition',
);
console.log(
  '| streams | direct p50 µs | direct p99 µs | bare proxy p50 µs | bare added p50 µs | bare CPU µs/chunk | gateway p50 µs | gateway p99 µs | gateway added p50 µs | gateway − bare p50 µs | p50 ratio | gateway CPU µs/chunk |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const n of STREAM_COUNTS) {
  const d = perRep.get(`${n}/direct`) as Rep[];
  const b = perRep.get(`${n}/bare`) as Rep[];
  const g = perRep.get(`${n}/gateway`) as Rep[];
  const col = (rs: Rep[], f: (r: Rep) => number, digits = 0) => formatSpread(spread(rs.map(f)), digits);
  const minus = (xs: Rep[], ys: Rep[]) => formatSpread(spread(xs.map((r, i) => r.p50 - (ys[i] as Rep).p50)));
  console.log(
    `| ${n} | ${col(d, (r) => r.p50)} | ${col(d, (r) => r.p99)} | ${col(b, (r) => r.p50)} | ${minus(b, d)} | ${col(b, (r) => r.cpuPerChunk, 1)} | ` +
      `${col(g, (r) => r.p50)} | ${col(g, (r) => r.p99)} | ${minus(g, d)} | ${minus(g, b)} | ` +
      `${formatSpread(spread(g.map((r, i) => r.p50 / (d[i] as Rep).p50)), 2)} | ${col(g, (r) => r.cpuPerChunk, 1)} |`,
  );
}
await gateway.stop();
await bare.stop();
agent.destroy();
upstream.close();
