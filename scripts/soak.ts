/**
 * Soak: runs an EPP (`epp serve`, plaintext, a static loopback pool, default config) in a child process and drives
 * it with many ext_proc streams from this process, a share of them cancelled at random points. After a warm-up
 * phase (`--warmup` streams, not counted), the measured streams run in `--checkpoints` equal parts; at the end of
 * each part it records the EPP's RSS and, after a forced full GC in the EPP, its live heap. Reports both series
 * and their largest drift from the first checkpoint (the "flat" check: RSS within ±10 %, live heap within ±5 %),
 * throughput, and the EPP's own leak gauges afterwards.
 *
 * The forced GC: the child runs with `--expose-gc --import scripts/soak-probe.mjs` and an IPC channel; the probe
 * answers a message with `gc()` + `process.memoryUsage()`. Nothing in src/ knows about it, and no port or
 * environment switch is added to the EPP: only the soak loads the probe.
 *
 *   npm run soak                                   # 100,000 streams, 10 % aborted, 64 in flight
 *   npm run soak -- --streams 20000 --tracing      # same with OpenTelemetry spans (sampled 100 %, console exporter)
 *
 * Flags: --streams N, --warmup W (default 20,000 or N/5 if smaller), --checkpoints P (default 5), --abort-ratio R,
 * --concurrency C, --chunks K (response chunks per stream), --seed S, --tracing.
 * The model servers are never contacted (the ext_proc client plays Envoy and the model server).
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRandomSource } from '../src/util/random.ts';
import { http, sampleValue } from '../test/observability/helpers.ts';
import { RawExtProcClient } from '../test/hardening/raw-ext-proc.ts';
import { runStorm, type StormResult } from '../test/hardening/storm.ts';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.ts';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '100000' },
    warmup: { type: 'string' },
    checkpoints: { type: 'string', default: '5' },
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
const warmup = values.warmup !== undefined ? Number(values.warmup) : Math.min(20_000, Math.floor(total / 5));
const checkpoints = Math.max(2, Number(values.checkpoints));

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
    '--expose-gc',
    '--import',
    './scripts/soak-probe.mjs',
    'bin/epp.js',
    'serve',
    '--endpoints=127.0.0.11:8000,127.0.0.12:8000,127.0.0.13:8000',
    '--secure-serving=false',
    `--grpc-port=${grpcPort}`,
    '--grpc-health-port=0',
    `--metrics-port=${metricsPort}`,
    '--refresh-metrics-interval=1h',
  ],
  { env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], cwd: new URL('..', import.meta.url).pathname },
);
const pid = child.pid as number;
const loadAtStart = loadavg();

interface Probe {
  readonly probe: number;
  readonly heapUsed: number;
  readonly rss: number;
}
let probes = 0;
/** A full GC in the EPP, then its memory (scripts/soak-probe.mjs). */
function liveMemory(): Promise<Probe> {
  const id = ++probes;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the EPP did not answer the GC probe')), 10_000);
    const onMessage = (m: Probe): void => {
      if (m.probe !== id) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.send({ probe: id });
  });
}
const MiB = 2 ** 20;
/** Largest |x − first| / first over the series, in percent. */
const drift = (xs: readonly number[]): number => Math.max(...xs.map((x) => Math.abs(x - (xs[0] as number)) / (xs[0] as number))) * 100;
/** (max − min) / median of the series, in percent: flatness that does not hinge on the first checkpoint. */
const range = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return (((sorted.at(-1) as number) - (sorted[0] as number)) / (sorted[sorted.length >> 1] as number)) * 100;
};
try {
  await waitFor(async () => (await http(metricsPort, '/readyz')).status === 200, 'the EPP to become ready');
  const client = new RawExtProcClient(grpcPort, { streamsPerConnection: 200 });
  const rng = createRandomSource(Number(values.seed));
  const random = (): number => rng.next();
  const sum: { -readonly [K in keyof StormResult]: number } = { completed: 0, aborted: 0, lost: 0, failed: 0 };
  const add = (r: StormResult): void => {
    for (const k of Object.keys(sum) as Array<keyof StormResult>) sum[k] += r[k];
  };

  await runStorm({ client, streams: warmup, abortRatio, concurrency, chunks, random }); // warm-up: not measured
  interface Checkpoint {
    readonly streams: number;
    readonly rssMiB: number;
    readonly liveHeapMiB: number;
    readonly rssAfterGcMiB: number;
  }
  const points: Checkpoint[] = [];
  const checkpoint = async (streams: number): Promise<void> => {
    const rss = rssMiB(pid);
    const live = await liveMemory();
    points.push({ streams, rssMiB: rss, liveHeapMiB: live.heapUsed / MiB, rssAfterGcMiB: live.rss / MiB });
  };
  await checkpoint(0);
  let peak = 0;
  let done = 0;
  const started = performance.now();
  for (let part = 0; part < checkpoints; part++) {
    const n = Math.floor(((part + 1) * total) / checkpoints) - done;
    add(
      await runStorm({
        client,
        streams: n,
        abortRatio,
        concurrency,
        chunks,
        random,
        progress: { every: 5000, fn: () => void (peak = Math.max(peak, rssMiB(pid))) },
      }),
    );
    done += n;
    await checkpoint(done);
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
    warmupStreams: warmup,
    // RSS as the OS sees it at each checkpoint (before the GC), live heap and RSS right after a full GC.
    checkpoints: points.map((p) => ({
      streams: p.streams,
      rssMiB: Number(p.rssMiB.toFixed(1)),
      liveHeapMiB: Number(p.liveHeapMiB.toFixed(1)),
      rssAfterGcMiB: Number(p.rssAfterGcMiB.toFixed(1)),
    })),
    peakRssMiB: Number(Math.max(peak, ...points.map((p) => p.rssMiB)).toFixed(1)),
    // Largest drift from the first checkpoint (taken after the warm-up), percent; the goals are ±10 % and ±5 %.
    driftPercent: {
      rss: Number(drift(points.map((p) => p.rssMiB)).toFixed(1)),
      liveHeap: Number(drift(points.map((p) => p.liveHeapMiB)).toFixed(1)),
    },
    // (max − min) / median over the checkpoints, percent.
    rangePercent: {
      rss: Number(range(points.map((p) => p.rssMiB)).toFixed(1)),
      liveHeap: Number(range(points.map((p) => p.liveHeapMiB)).toFixed(1)),
    },
    afterwards: {
      activeStreams: sampleValue(text, 'epp_active_streams{data_plane="ext_proc"}'),
      runningRequests: sampleValue(text, 'inference_objective_running_requests{model_name="m1"}'),
    },
    machine: `${process.platform} ${process.arch}, node ${process.version}, ${cpus().length} cpu(s), load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(' / ')}`,
    args: process.argv.slice(2),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (sum.failed > 0 || report.afterwards.activeStreams !== 0) process.exitCode = 1;
} finally {
  child.kill('SIGTERM');
}
