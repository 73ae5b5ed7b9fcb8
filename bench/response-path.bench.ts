/**
 * Response-path and large-prompt overhead of the ext_proc server, against a bare grpc-js echo server, in one run.
 *
 * Servers, each its own process, forked once and kept alive for the whole run (bench/support/child.ts):
 *   (a) none       the EPP, default plugins (`approx-322`, bench/support/default-plugins.ts), no response hooks — the baseline
 *   (b) io-async   + a chunk hook awaiting 2 ms of "I/O"      — default async mode
 *   (c) io-inline  + the same hook, awaited inline            — what upstream did before c6d3ad1
 *   (d) cpu-async  + a chunk hook burning 0.2 ms of CPU       — its reply leaves before it runs
 *   echo           bench/ext-proc-echo-server.ts: answers every message at once, no routing, no state; body
 *                  messages are sent back as FULL_DUPLEX_STREAMED requires (`--echo passthrough`, the default)
 *
 * Workloads (an Envoy-like client in this process, FULL_DUPLEX_STREAMED, ping-pong per message):
 *   chunks  `STREAMS` concurrent streams over 2 HTTP/2 connections, each 53 messages: request headers + a
 *           ~2 KB body, response headers, 50 SSE chunks (the last with end_of_stream). One op = one
 *           response-body message and its reply; final-chunk RTTs are excluded (the final reply waits for the
 *           hook queue by design). Also the server's CPU time per stream (its process.cpuUsage, over IPC).
 *   large   256 KB chat requests, one at a time, the body sent as 62 KB messages as Envoy streams it:
 *           body-complete (last body message written) → the reply that releases the request (the EPP's
 *           request_headers reply, sent once routed; the echo's reply to the last body message). Meanwhile a
 *           second stream sends a response-body "ping" every 1 ms and records each ping's round trip: the
 *           stall other streams see while a large body is processed. Server CPU per large request too, and
 *           the server's event-loop delay meanwhile (monitorEventLoopDelay in the server process: its stalls
 *           without the client process's share; time the OS did not schedule the server still counts).
 *
 * Method: every server without a chunk hook first handles `--warm-streams` streams (default 3000: the per-stream code — routing,
 * request hooks, completion — runs once per stream and V8 optimises it only after thousands of calls), then every
 * (workload, server) pair is warmed until its p50 stops moving, then all pairs run once per
 * repetition in a seeded shuffled order (≥ 3 repetitions). Figures are per repetition; the tables show the
 * median of the per-repetition figures and their min–max. Ratios are taken within a repetition.
 *
 * Usage: npm run bench:response-path [-- --streams 16 --rounds 4 --large 50 --large-kb 256 --reps 5 --seed 1 --quick]
 *        --preset NAME runs the EPP servers with another preset of src/config/presets.ts (e.g. `random`);
 *        --echo passthrough|encode|empty: the echo sends bodies back with the EPP's hand encoder (default), or
 *        creates and encodes each reply with the generated codec (`encode`, also `--echo-encode`), or answers
 *        every message with a fixed empty reply, bodies not sent back (`empty`: the floor used before it was
 *        made like with like; no valid FULL_DUPLEX_STREAMED server can reply so);
 *        --workloads chunks,large and --hooks io-async,io-inline,cpu-async select what runs ((a) and the echo
 *        always do), e.g. `--workloads large` for the 256 KB case alone;
 *        --compare DIR adds (a) as built from another checkout (DIR/bench/response-path-server.ts, e.g. an export of
 *        main with node_modules linked) to the chunks workload, alternated with the others: an A/B of a change in
 *        one run (its row shows CPU / echo, and (a) / it);
 *        --warm-streams N: streams each server handles before the steady check (default 3000; 0 = the method before
 *        session 11, which measured the routing code before V8 had optimised it);
 *        --floor-route adds a second floor to the chunks workload, for information only (the ratio to the echo stays
 *        the figure): the echo that also routes each request with the EPP's own director and completes it
 *        (`ext-proc-echo-server.ts route`); (a) / it is what the EPP's data plane costs beyond routing.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeEnvoy, type EnvoyStream } from '../test/support/fake-envoy.ts';
import type { ProcessingResponse } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { createRandomSource } from '../src/util/random.ts';
import { describeWarmUp, repetitions, warmUntilSteady } from './support/alternate.ts';
import { startChild, type BenchChild } from './support/child.ts';
import { printRunInfo } from './support/run-info.ts';
import { formatSpread, percentiles, spread, type Spread } from './support/stats.ts';

const { values: args } = parseArgs({
  options: {
    streams: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '4' },
    large: { type: 'string', default: '50' },
    'large-kb': { type: 'string', default: '256' },
    reps: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
    preset: { type: 'string', default: 'approx-322' },
    echo: { type: 'string', default: 'passthrough' },
    'echo-encode': { type: 'boolean', default: false },
    workloads: { type: 'string', default: 'chunks,large' },
    hooks: { type: 'string', default: 'io-async,io-inline,cpu-async' },
    quick: { type: 'boolean', default: false },
    compare: { type: 'string' },
    'floor-route': { type: 'boolean', default: false },
    'warm-streams': { type: 'string', default: '3000' },
  },
});
const PRESET = args.preset as string;
const ECHO = args['echo-encode'] ? 'encode' : (args.echo as string);
if (!['passthrough', 'encode', 'empty'].includes(ECHO)) throw new Error(`--echo: passthrough, encode or empty, not ${ECHO}`);
const QUICK = args.quick as boolean;
const STREAMS = Number(args.streams);
const ROUNDS = QUICK ? 1 : Number(args.rounds);
const LARGE = QUICK ? 8 : Number(args.large);
const LARGE_BYTES = Number(args['large-kb']) * 1024;
const REPS = Math.max(3, QUICK ? 3 : Number(args.reps));
const SEED = Number(args.seed);
const CHUNKS = 50;
/** Envoy streams a request body in pieces of its buffer size; 62 KB is what the EPP itself splits into. */
const BODY_PIECE = 62_000;
const PING_MS = 1;
const COMPARE = args.compare as string | undefined;
/**
 * Streams each server handles before the chunks workload's steady check. The per-stream code (routing, request
 * hooks, completion) runs once per stream, not per message: V8 optimises it only after ≈ 2 000–4 000 calls
 * (`director.route()` + completion of the bench's 2 KB prompt, timed per call: ≈ 120 µs over the first 50, 40 µs
 * at 500–1 000, 20–27 µs after 3 000), and the chunk RTT the steady check watches does not see it.
 */
const WARM_STREAMS = QUICK ? 0 : Number(args['warm-streams']);
if (!Number.isInteger(WARM_STREAMS) || WARM_STREAMS < 0) throw new Error(`--warm-streams: an integer >= 0, not ${args['warm-streams']}`);

const BODY = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hello '.repeat(300) }] });
const CHUNK = 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"delta":{"content":"tok tok tok"}}]}\n\n';
const enc = new TextEncoder();

/** A chat request of exactly `bytes` bytes: a system prompt and a long user turn of varied words. */
function largeBody(bytes: number, seed: number): Uint8Array {
  const rng = createRandomSource(seed);
  const words = ['context', 'agent', 'tool', 'result', 'file', 'line', 'function', 'returns', 'value', 'error', 'the', 'of', 'and', 'in'];
  const shell = (content: string) => JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'system', content: 'You are a coding agent.' }, { role: 'user', content }] });
  const room = bytes - shell('').length;
  let content = '';
  while (content.length < room) content += `${words[Math.floor(rng.next() * words.length)]} `;
  return enc.encode(shell(content.slice(0, room)));
}

function requestPhase(s: EnvoyStream): void {
  s.requestHeaders({ ':path': '/v1/chat/completions', ':method': 'POST', 'content-type': 'application/json' });
  s.requestBody(BODY, true);
}

/** Reads the request-phase replies: the EPP sends headers + 1 body reply once routed; the echo one per message. */
async function streamAndCollect(envoy: FakeEnvoy, rtts: number[]): Promise<void> {
  const s = envoy.open();
  requestPhase(s);
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

interface Server {
  readonly name: string;
  readonly echo: boolean;
  readonly child: BenchChild;
  readonly clients: readonly [FakeEnvoy, FakeEnvoy];
}

const clientsFor = (port: number): [FakeEnvoy, FakeEnvoy] => [
  new FakeEnvoy(port, undefined, { 'grpc.use_local_subchannel_pool': 1 }),
  new FakeEnvoy(port, undefined, { 'grpc.use_local_subchannel_pool': 1 }),
];

interface ChunkRep {
  readonly p50: number;
  readonly p99: number;
  /** Server CPU µs per 53-message stream. */
  readonly cpuPerStream: number;
}

async function chunkRounds(server: Server, rounds: number): Promise<ChunkRep> {
  const rtts: number[] = [];
  const c0 = await server.child.cpuMicros();
  for (let r = 0; r < rounds; r++) {
    await Promise.all(Array.from({ length: STREAMS }, (_, i) => streamAndCollect(server.clients[i % 2] as FakeEnvoy, rtts)));
  }
  const cpu = (await server.child.cpuMicros()) - c0;
  const [p50, p99] = percentiles(rtts, [50, 99]) as [number, number];
  return { p50, p99, cpuPerStream: cpu / (rounds * STREAMS) };
}

const isRequestBodyEnd = (r: ProcessingResponse): boolean => {
  const v = r.response.value as { response?: { bodyMutation?: { mutation?: { case?: string; value?: { endOfStream?: boolean } } } } } | undefined;
  const m = v?.response?.bodyMutation?.mutation;
  return r.response.case === 'requestBody' && m?.case === 'streamedResponse' && m.value?.endOfStream === true;
};

/** One large request; resolves with body-complete → release (µs). */
async function largeRequest(server: Server, body: Uint8Array): Promise<number> {
  const s = server.clients[0].open();
  s.requestHeaders({ ':path': '/v1/chat/completions', ':method': 'POST', 'content-type': 'application/json' });
  const pieces = Math.ceil(body.length / BODY_PIECE);
  for (let i = 0; i < pieces; i++) s.requestBody(body.subarray(i * BODY_PIECE, Math.min(body.length, (i + 1) * BODY_PIECE)), i === pieces - 1);
  const t0 = performance.now();
  let release: number;
  if (server.echo) {
    await s.nextN(1 + pieces); // its reply to the last body message
    release = performance.now();
  } else {
    const first = await s.next();
    release = performance.now();
    if (first.response.case !== 'requestHeaders') throw new Error(`expected the request_headers reply, got ${first.response.case}`);
    while (!isRequestBodyEnd(await s.next())); // the body replies that follow it
  }
  s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
  await s.next();
  s.responseBody(CHUNK, true);
  await s.next();
  s.end();
  await s.ended;
  return (release - t0) * 1000;
}

/** A stream in its response phase sending a response-body message every PING_MS, open loop. */
async function startPinger(server: Server): Promise<{ stop: () => Promise<number[]> }> {
  const s = server.clients[1].open();
  requestPhase(s);
  await s.nextN(2);
  s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
  await s.next();
  const sentAt: number[] = [];
  const delays: number[] = [];
  let received = 0;
  s.call.on('data', () => {
    const t = sentAt[received++];
    if (t !== undefined) delays.push((performance.now() - t) * 1000);
  });
  const timer = setInterval(() => {
    sentAt.push(performance.now());
    s.responseBody(CHUNK, false);
  }, PING_MS);
  return {
    async stop() {
      clearInterval(timer);
      const deadline = performance.now() + 10_000;
      while (received < sentAt.length) {
        if (performance.now() > deadline) throw new Error(`${sentAt.length - received} pings unanswered after 10 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
      s.responseBody(CHUNK, true);
      s.end();
      await s.ended;
      return delays;
    },
  };
}

interface LargeRep {
  readonly releaseP50: number;
  readonly releaseP99: number;
  readonly pingP50: number;
  readonly pingP99: number;
  readonly pingMax: number;
  /** Share of pings that waited more than 2 ms. */
  readonly pingsOver2ms: number;
  readonly cpuPerRequest: number;
  /** The server process's event-loop delay meanwhile (µs): its stalls without the client's share. */
  readonly serverLoopP99: number;
  readonly serverLoopMax: number;
}

const LARGE_BODIES = Array.from({ length: 8 }, (_, i) => largeBody(LARGE_BYTES, 100 + i));

async function largeRounds(server: Server, n: number): Promise<LargeRep> {
  const pinger = await startPinger(server);
  await server.child.loopDelayStart();
  const c0 = await server.child.cpuMicros();
  const release: number[] = [];
  for (let i = 0; i < n; i++) release.push(await largeRequest(server, LARGE_BODIES[i % LARGE_BODIES.length] as Uint8Array));
  const cpu = (await server.child.cpuMicros()) - c0;
  const loop = await server.child.loopDelayStop();
  const pings = await pinger.stop();
  const [releaseP50, releaseP99] = percentiles(release, [50, 99]) as [number, number];
  const [pingP50, pingP99, pingMax] = percentiles(pings, [50, 99, 100]) as [number, number, number];
  return {
    releaseP50,
    releaseP99,
    pingP50,
    pingP99,
    pingMax,
    pingsOver2ms: pings.filter((d) => d > 2000).length / pings.length,
    cpuPerRequest: cpu / n,
    serverLoopP99: loop.p99,
    serverLoopMax: loop.max,
  };
}

// ------------------------------------------------------------------------------------------------- run
printRunInfo('bench:response-path', [
  `chunks: ${STREAMS} concurrent streams × 53 messages × ${ROUNDS} rounds per repetition; large: ${LARGE} × ${LARGE_BYTES / 1024} KB requests per repetition, a ${PING_MS} ms ping stream alongside`,
  `EPP servers: ${PRESET} preset (+ bench hook); echo: bare grpc-js, ${ECHO === 'passthrough' ? 'bodies sent back (hand encoder), fixed header replies' : ECHO === 'encode' ? 'bodies sent back, replies created and encoded per message (generated codec)' : 'fixed empty replies, bodies not sent back'}; ${REPS} repetitions, pairs shuffled per repetition (seed ${SEED})`,
]);
const ALL_MODES = ['none', 'io-async', 'io-inline', 'cpu-async'] as const;
const WORKLOADS = (args.workloads as string).split(',');
const CHUNKS_ON = WORKLOADS.includes('chunks');
const LARGE_ON = WORKLOADS.includes('large');
const HOOKS = (args.hooks as string).split(',');
// (a) and the echo always run: every ratio is against them. The hook variants only for the chunks workload.
const MODES = ALL_MODES.filter((m) => m === 'none' || (CHUNKS_ON && HOOKS.includes(m)));
const servers = new Map<string, Server>();
for (const mode of MODES) {
  const child = await startChild(new URL('./response-path-server.ts', import.meta.url), [mode, PRESET]);
  servers.set(mode, { name: mode, echo: false, child, clients: clientsFor(child.port) });
}
if (COMPARE !== undefined && CHUNKS_ON) {
  const child = await startChild(new URL(`file://${resolve(COMPARE, 'bench/response-path-server.ts')}`), ['none', PRESET]);
  servers.set('compare', { name: 'compare', echo: false, child, clients: clientsFor(child.port) });
}
if (args['floor-route'] && CHUNKS_ON) {
  const child = await startChild(new URL('./ext-proc-echo-server.ts', import.meta.url), ['route']);
  servers.set('echo-route', { name: 'echo-route', echo: true, child, clients: clientsFor(child.port) });
}
{
  const child = await startChild(new URL('./ext-proc-echo-server.ts', import.meta.url), [ECHO]);
  servers.set('echo', { name: 'echo', echo: true, child, clients: clientsFor(child.port) });
}
const server = (name: string): Server => servers.get(name) as Server;
/** The optional chunk-workload servers that are running (--compare, --floor-route). */
const extraChunkServers = (): Array<'compare' | 'echo-route'> => (['compare', 'echo-route'] as const).filter((n) => servers.has(n));

type Pair = `chunks/${(typeof ALL_MODES)[number] | 'echo' | 'compare' | 'echo-route'}` | `large/${'none' | 'echo'}`;
const pairs: Pair[] = [
  ...(CHUNKS_ON ? [...MODES, ...extraChunkServers(), 'echo' as const].map((m) => `chunks/${m}` as const) : []),
  ...(LARGE_ON ? (['large/none', 'large/echo'] as const) : []),
];
const warm: string[] = [];
for (const pair of pairs) {
  const [workload, name] = pair.split('/') as ['chunks' | 'large', string];
  // The servers without a chunk hook: with one (b–d), a stream costs 100 ms of waiting or 10 ms of CPU, routing is a
  // small part of it, and 3000 streams would add minutes to a run.
  if (workload === 'chunks' && WARM_STREAMS > 0 && ['none', 'compare', 'echo', 'echo-route'].includes(name)) {
    await chunkRounds(server(name), Math.ceil(WARM_STREAMS / STREAMS));
  }
  const round = workload === 'chunks' ? async () => (await chunkRounds(server(name), 1)).p50 : async () => (await largeRounds(server(name), 4)).releaseP50;
  const w = await warmUntilSteady(round, { minRounds: 3, maxRounds: QUICK ? 8 : 20, tolerance: 0.1 });
  warm.push(`${pair} ${describeWarmUp(w, 0)}`);
}
console.log(`# warm-up: ${WARM_STREAMS} streams per server without a chunk hook (chunks), then until the p50 of one round is within 10 % for 2 rounds: ${warm.join('; ')}`);

const results = await repetitions(pairs, { repetitions: REPS, seed: SEED }, (pair): Promise<ChunkRep | LargeRep> => {
  const [workload, name] = pair.split('/') as ['chunks' | 'large', string];
  return workload === 'chunks' ? chunkRounds(server(name), ROUNDS) : largeRounds(server(name), LARGE);
});
for (const s of servers.values()) {
  for (const c of s.clients) c.close();
  await s.child.stop();
}

// ----------------------------------------------------------------------------------------------- report
const chunkReps = (name: string) => results.get(`chunks/${name}` as Pair) as ChunkRep[];
const largeReps = (name: string) => results.get(`large/${name}` as Pair) as LargeRep[];
const ratio = <T>(xs: T[], ys: T[], f: (r: T) => number): Spread => spread(xs.map((x, i) => f(x) / f(ys[i] as T)));
const fs = formatSpread;

console.log('# cells: median of the per-repetition figures [min–max across repetitions]; ratios within each repetition');
function chunkTable(): void {
  console.log(`\n## Response chunks (per-chunk RTT, µs; server CPU per 53-message stream, µs)\n`);
  console.log('| server | p50 | p99 | p50 / (a) | p99 / (a) | CPU µs/stream | CPU / echo |');
  console.log('|---|---|---|---|---|---|---|');
  const label: Record<string, string> = {
    none: `(a) EPP (${PRESET}), no hooks`,
    'io-async': '(b) 2 ms I/O hook, async',
    'io-inline': '(c) 2 ms I/O hook, inline',
    'cpu-async': '(d) 0.2 ms CPU hook, async',
    echo: 'bare grpc-js echo',
    compare: `(a) built from ${COMPARE}`,
    'echo-route': 'echo + EPP routing (second floor, information only)',
  };
  const a = chunkReps('none');
  const echo = chunkReps('echo');
  for (const name of [...MODES, ...extraChunkServers(), 'echo']) {
    const rs = chunkReps(name);
    console.log(
      `| ${label[name]} | ${fs(spread(rs.map((r) => r.p50)))} | ${fs(spread(rs.map((r) => r.p99)))} | ${fs(ratio(rs, a, (r) => r.p50), 2)} | ` +
        `${fs(ratio(rs, a, (r) => r.p99), 2)} | ${fs(spread(rs.map((r) => r.cpuPerStream)))} | ${fs(ratio(rs, echo, (r) => r.cpuPerStream), 2)} |`,
    );
  }
  if (servers.has('echo-route')) {
    console.log(`\nCPU per stream, (a) / (echo + EPP routing): ${fs(ratio(a, chunkReps('echo-route'), (r) => r.cpuPerStream), 2)} (what the data plane costs beyond routing; information only)`);
  }
  if (servers.has('compare')) console.log(`\nCPU per stream, (a) / (a) built from ${COMPARE}: ${fs(ratio(a, chunkReps('compare'), (r) => r.cpuPerStream), 3)} (within each repetition)`);
}

function largeTable(): void {
  console.log(`\n## ${LARGE_BYTES / 1024} KB prompts (µs): body-complete → release, and the ${PING_MS} ms pings of another stream meanwhile\n`);
  console.log('| server | release p50 | release p99 | p50 / echo | ping p50 | ping p99 | ping max | pings > 2 ms | CPU µs/request | CPU / echo | server loop delay p99 / max |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  const le = largeReps('echo');
  for (const name of ['none', 'echo']) {
    const rs = largeReps(name);
    console.log(
      `| ${name === 'none' ? `EPP (${PRESET})` : 'bare grpc-js echo'} | ${fs(spread(rs.map((r) => r.releaseP50)))} | ${fs(spread(rs.map((r) => r.releaseP99)))} | ` +
        `${fs(ratio(rs, le, (r) => r.releaseP50), 2)} | ${fs(spread(rs.map((r) => r.pingP50)))} | ${fs(spread(rs.map((r) => r.pingP99)))} | ` +
        `${fs(spread(rs.map((r) => r.pingMax)))} | ${fs(spread(rs.map((r) => r.pingsOver2ms * 100)))} % | ${fs(spread(rs.map((r) => r.cpuPerRequest)))} | ${fs(ratio(rs, le, (r) => r.cpuPerRequest), 2)} | ` +
        `${fs(spread(rs.map((r) => r.serverLoopP99)))} / ${fs(spread(rs.map((r) => r.serverLoopMax)))} |`,
    );
  }
}

if (CHUNKS_ON) chunkTable();
if (LARGE_ON) {
  largeTable();
  const echoPingP99 = spread(largeReps('echo').map((r) => r.pingP99)).median;
  if (echoPingP99 > 2000) {
    console.log(
      `\n# CAUTION: the echo server's own ping p99 is ${(echoPingP99 / 1000).toFixed(1)} ms: the machine, not the server, sets the ` +
        'stall figures of this run; compare p50s and ratios only, and measure the stall on a quiet machine.',
    );
  }
}
