/**
 * Soak: runs an EPP (`epp serve`, plaintext, a static loopback pool, default config) in a child process and drives
 * it with many ext_proc streams from this process, a share of them cancelled at random points. Reports the EPP's
 * RSS at start (after a warm-up), middle and end, throughput, and the EPP's own leak gauges afterwards.
 *
 *   npm run soak                                   # 100,000 streams, 10 % aborted, 64 in flight
 *   npm run soak -- --streams 20000 --tracing      # same with OpenTelemetry spans (sampled 100 %, console exporter)
 *
 * Flags: --streams N, --abort-ratio R, --concurrency C, --chunks K (response chunks per stream), --seed S, --tracing.
 * The model servers are never contacted (the ext_proc client plays Envoy and the model server).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRandomSource } from '../src/util/random.ts';
import { http, sampleValue } from '../test/observability/helpers.ts';
import { RawExtProcClient } from '../test/hardening/raw-ext-proc.ts';
import { runStorm, type StormResult } from '../test/hardening/storm.ts';
import { freePort } from '../src/util/free-port.ts';
import { waitFor } from './wait-for.ts';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '100000' },
    'abort-ratio': { type: 'string', default: '0.1' },
    concurrency: { type: 'string', default: '64' },
    chunks: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    tracing: { type: 'boolean', default: false },
  },
});
const total = Number(values.streams);
const abortRatio = Number(values['abort-ratio']);
const concurrency = Number(values.concurrency);
const chunks = Number(values.chunks);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const [grpcPort, metricsPort] = [await freePort(), await freePort()];
const env: NodeJS.ProcessEnv = { ...process.env, EPP_LOG_LEVEL: 'warn' };
if (values.tracing) Object.assign(env, { OTEL_TRACES_EXPORTER: 'console', OTEL_TRACES_SAMPLER_ARG: '1' });
const child = spawn(
  process.execPath,
  [
    'bin/epp.js',
    'serve',
    '--endpoints=127.0.0.11:8000,127.0.0.12:8000,127.0.0.13:8000',
    '--secure-serving=false',
    `--grpc-port=${grpcPort}`,
    '--grpc-health-port=0',
    `--metrics-port=${metricsPort}`,
    '--refresh-metrics-interval=1h',
  ],
  { env, stdio: ['ignore', 'ignore', 'inherit'], cwd: new URL('..', import.meta.url).pathname },
);
const pid = child.pid as number;
try {
  await waitFor(async () => (await http(metricsPort, '/readyz')).status === 200, 'the EPP to become ready');
  const client = new RawExtProcClient(grpcPort, { streamsPerConnection: 200 });
  const rng = createRandomSource(Number(values.seed));
  const random = (): number => rng.next();
  const sum: { -readonly [K in keyof StormResult]: number } = { completed: 0, aborted: 0, lost: 0, failed: 0 };
  const add = (r: StormResult): void => {
    for (const k of Object.keys(sum) as Array<keyof StormResult>) sum[k] += r[k];
  };

  await runStorm({ client, streams: Math.min(2000, total), abortRatio, concurrency, chunks, random }); // warm-up
  const rss = { start: rssMiB(pid), middle: NaN, end: NaN, peak: 0 };
  const started = performance.now();
  const half = Math.floor(total / 2);
  for (const [part, n] of [['middle', half], ['end', total - half]] as const) {
    add(
      await runStorm({
        client,
        streams: n,
        abortRatio,
        concurrency,
        chunks,
        random,
        progress: { every: 5000, fn: () => void (rss.peak = Math.max(rss.peak, rssMiB(pid))) },
      }),
    );
    rss[part] = rssMiB(pid);
  }
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  await new Promise((r) => setTimeout(r, 200));
  const text = (await http(metricsPort, '/metrics')).body;
  const report = {
    streams: total,
    abortRatio,
    concurrency,
    chunksPerStream: chunks,
    tracing: values.tracing,
    results: sum,
    seconds: Number(seconds.toFixed(1)),
    streamsPerSecond: Math.round(total / seconds),
    eppRssMiB: { start: rss.start.toFixed(1), middle: rss.middle.toFixed(1), end: rss.end.toFixed(1), peak: Math.max(rss.peak, rss.end).toFixed(1) },
    afterwards: {
      activeStreams: sampleValue(text, 'epp_active_streams{data_plane="ext_proc"}'),
      runningRequests: sampleValue(text, 'inference_objective_running_requests{model_name="m1"}'),
    },
    machine: `${process.platform} ${process.arch}, node ${process.version}, ${(await import('node:os')).cpus().length} cpu(s)`,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (sum.failed > 0 || report.afterwards.activeStreams !== 0) process.exitCode = 1;
} finally {
  child.kill('SIGTERM');
}
