// Concurrency sweep of one simulated server: TTFT / ITL p50 and the waiting queue versus the number of
// concurrent closed-loop streams, on the sp-main workload shape (2048-token shared prefixes in 32 groups,
// 256-token questions, 128 output tokens, ignore_eos). Reproduces the table in docs/simulator.md.
//
//   node --import tsx src/sim/sweep.ts                   # real HTTP + real clock (default: ~80 s)
//   node --import tsx src/sim/sweep.ts --virtual         # engine only, virtual time (~1 s)
//   options: --levels 1,2,4,8,16,32  --warmup 3s  --measure 10s
//
// HTTP mode runs the server and the client in this process over 127.0.0.1 with a keep-alive agent; the
// event-loop lag column tells whether the process, not the simulated server, limited the run.

import { Agent, request } from 'node:http';
import { runClosedLoop } from './closed-loop.ts';
import type { LoadResult } from './closed-loop.ts';
import { parseDurationMs } from './duration.ts';
import { startFleet } from './fleet.ts';
import type { FleetServer } from './fleet.ts';
import { sharedPrefixPrompts } from './shared-prefix-workload.ts';
import { mean, percentile } from './stats.ts';

const MAX_TOKENS = 128;

interface SweepArgs {
  readonly virtual: boolean;
  readonly levels: number[];
  readonly warmupMs: number;
  readonly measureMs: number;
}

function parseArgs(argv: readonly string[]): SweepArgs {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    virtual: argv.includes('--virtual'),
    levels: (value('--levels') ?? '1,2,4,8,16,32').split(',').map(Number),
    warmupMs: parseDurationMs(value('--warmup') ?? '3s', '--warmup'),
    measureMs: parseDurationMs(value('--measure') ?? '10s', '--measure'),
  };
}

interface HttpLevelResult extends LoadResult {
  readonly lagP99Ms: number;
}

/** One closed-loop level over HTTP against `server`. */
async function runHttpLevel(server: FleetServer, prompts: readonly string[], concurrency: number, warmupMs: number, measureMs: number, lag: () => number): Promise<HttpLevelResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const startMs = performance.now() + warmupMs;
  const endMs = startMs + measureMs;
  const ttfts: number[] = [];
  const itls: number[] = [];
  let windowTokens = 0;
  let completed = 0;
  let next = 0;
  const running: number[] = [];
  const waiting: number[] = [];
  const kv: number[] = [];
  const lags: number[] = [];
  let before = server.sim.metrics.counters();
  let stop = false;

  const oneRequest = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const prompt = prompts[next++ % prompts.length] as string;
      const body = JSON.stringify({ model: server.sim.baseModel, prompt, max_tokens: MAX_TOKENS, ignore_eos: true, stream: true });
      const sentMs = performance.now();
      const inWindow = sentMs >= startMs;
      let lastMs = sentMs;
      let tokens = 0;
      let buffer = '';
      const req = request(`${server.url}/v1/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (!frame.includes('"text":"') || frame.includes('"text":""')) continue;
            const now = performance.now();
            if (now >= startMs && now < endMs) windowTokens++;
            if (inWindow) {
              if (tokens === 0) ttfts.push(now - sentMs);
              else itls.push(now - lastMs);
            }
            tokens++;
            lastMs = now;
          }
        });
        res.on('end', () => {
          if (inWindow && performance.now() <= endMs) completed++;
          resolve();
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });

  const client = async (): Promise<void> => {
    while (!stop) await oneRequest();
  };
  const clients = Array.from({ length: concurrency }, client);
  await new Promise((r) => setTimeout(r, warmupMs));
  before = server.sim.metrics.counters();
  const sampler = setInterval(() => {
    const s = server.state();
    running.push(s.running);
    waiting.push(s.waiting);
    kv.push(s.kvUsage);
    lags.push(lag());
  }, 50);
  await new Promise((r) => setTimeout(r, measureMs));
  clearInterval(sampler);
  const after = server.sim.metrics.counters();
  stop = true;
  await Promise.all(clients);
  agent.destroy();
  const queried = after.prefixQueries - before.prefixQueries;
  return {
    concurrency,
    completed,
    outputTokensPerSecond: windowTokens / (measureMs / 1000),
    ttftP50Ms: percentile(ttfts, 50),
    ttftP90Ms: percentile(ttfts, 90),
    itlP50Ms: percentile(itls, 50),
    itlP90Ms: percentile(itls, 90),
    meanRunning: mean(running),
    meanWaiting: mean(waiting),
    maxWaiting: Math.max(0, ...waiting),
    meanKvUsage: mean(kv),
    preemptions: after.preemptions - before.preemptions,
    prefixHitRatio: queried === 0 ? 0 : (after.prefixHits - before.prefixHits) / queried,
    lagP99Ms: Math.max(0, ...lags),
  };
}

function row(r: LoadResult, lagMs?: number): string {
  const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
  return `| ${r.concurrency} | ${f(r.outputTokensPerSecond)} | ${f(r.ttftP50Ms)} | ${f(r.ttftP90Ms)} | ${f(r.itlP50Ms, 1)} | ${f(r.itlP90Ms, 1)} | ${f(r.meanRunning, 1)} | ${f(r.meanWaiting, 1)} / ${r.maxWaiting} | ${f(r.meanKvUsage, 2)} | ${r.preemptions} | ${f(r.prefixHitRatio, 2)} |${lagMs === undefined ? '' : ` ${f(lagMs, 1)} |`}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { prompts } = sharedPrefixPrompts({ groups: 32, promptsPerGroup: 16, systemPromptTokens: 2048, questionTokens: 256, seed: 7 });
  const header = '| streams | out tok/s | TTFT p50 ms | TTFT p90 ms | ITL p50 ms | ITL p90 ms | running | waiting mean / max | KV usage | preemptions | hit ratio |';
  if (args.virtual) {
    console.log(`${header}\n|${' --- |'.repeat(11)}`);
    for (const concurrency of args.levels) {
      console.log(row(runClosedLoop({ concurrency, prompts, maxTokens: MAX_TOKENS, warmupMs: args.warmupMs, measureMs: args.measureMs })));
    }
    return;
  }
  const fleet = await startFleet({ servers: 1, basePort: 0, lagWindowMs: 250 });
  const server = fleet.servers[0] as FleetServer;
  console.log(`${header} lag p99 ms |\n|${' --- |'.repeat(12)}`);
  try {
    for (const concurrency of args.levels) {
      server.sim.resetPrefixCache();
      const r = await runHttpLevel(server, prompts, concurrency, args.warmupMs, args.measureMs, () => fleet.lag().p99Seconds * 1000);
      console.log(row(r, r.lagP99Ms));
    }
  } finally {
    await fleet.close();
  }
}

await main();
