/**
 * Start-up and footprint of the `epp` executable, as a user meets it:
 *   help    `epp --help`: wall time until the process exits, and its peak RSS (GNU time's %M, when installed);
 *   listen  `epp serve` with a static list of 4 endpoints (scraping parked: --refresh-metrics-interval=1h):
 *           wall time from spawn until the ext_proc port accepts a TCP connection, then its RSS after
 *           `--idle-ms` of idleness.
 * The two measures alternate in a seeded shuffled order per repetition (≥ 3); cells are the median of the
 * repetitions [min–max]. `--bin` points at another entry point (e.g. a built package's) than bin/epp.js.
 *
 * Usage: npm run bench:startup [-- --bin bin/epp.js --reps 5 --idle-ms 5000 --seed 1]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../scripts/free-port.js';
import { repetitions } from './support/alternate.ts';
import { printRunInfo } from './support/run-info.ts';
import { formatSpread, spread } from './support/stats.ts';

const { values: args } = parseArgs({
  options: {
    bin: { type: 'string', default: 'bin/epp.js' },
    reps: { type: 'string', default: '5' },
    'idle-ms': { type: 'string', default: '5000' },
    seed: { type: 'string', default: '1' },
  },
});
const BIN = resolve(args.bin as string);
const REPS = Math.max(3, Number(args.reps));
const IDLE_MS = Number(args['idle-ms']);
const GNU_TIME = '/usr/bin/time';
const HAS_TIME = existsSync(GNU_TIME);
const ENDPOINTS = '127.0.0.11:8000,127.0.0.12:8000,127.0.0.13:8000,127.0.0.14:8000';

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Help {
  readonly seconds: number;
  readonly peakMiB: number;
}
interface Listen {
  readonly seconds: number;
  readonly idleMiB: number;
}

async function help(): Promise<Help> {
  const argv = HAS_TIME ? ['-f', '%M', process.execPath, BIN, '--help'] : [BIN, '--help'];
  const t0 = performance.now();
  const child = spawn(HAS_TIME ? GNU_TIME : process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`epp --help exited ${code}: ${err}`);
  const kb = HAS_TIME ? Number(/(\d+)\s*$/.exec(err.trim())?.[1]) : Number.NaN;
  return { seconds, peakMiB: kb / 1024 };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

async function listen(): Promise<Listen> {
  const [grpcPort, healthPort] = [await freePort(), await freePort()];
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [BIN, 'serve', `--endpoints=${ENDPOINTS}`, '--secure-serving=false', `--grpc-port=${grpcPort}`, `--grpc-health-port=${healthPort}`, '--refresh-metrics-interval=1h'],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, EPP_LOG_LEVEL: 'warn' } },
  );
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`epp serve exited ${child.exitCode} before listening`);
      if (await accepts(grpcPort)) break;
      if (performance.now() - t0 > 30_000) throw new Error('epp serve did not listen within 30 s');
      await sleep(5);
    }
    const seconds = (performance.now() - t0) / 1000;
    await sleep(IDLE_MS);
    return { seconds, idleMiB: rssMiB(child.pid as number) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

printRunInfo('bench:startup', [
  `entry point ${BIN}; peak RSS of --help ${HAS_TIME ? `from ${GNU_TIME} %M` : 'not measured (no GNU time)'}; idle RSS after ${IDLE_MS} ms`,
  `${REPS} repetitions, help and listen in a seeded shuffled order per repetition (seed ${args.seed})`,
]);
const results = await repetitions(['help', 'listen'] as const, { repetitions: REPS, seed: Number(args.seed) }, (v): Promise<Help | Listen> => (v === 'help' ? help() : listen()));
const h = results.get('help') as Help[];
const l = results.get('listen') as Listen[];
console.log('# cells: median of the repetitions [min–max]');
console.log('| measure | value |');
console.log('|---|---|');
console.log(`| epp --help, wall s | ${formatSpread(spread(h.map((r) => r.seconds)), 2)} |`);
console.log(`| epp --help, peak RSS MiB | ${formatSpread(spread(h.map((r) => r.peakMiB)))} |`);
console.log(`| epp serve, spawn → ext_proc port accepts, s | ${formatSpread(spread(l.map((r) => r.seconds)), 2)} |`);
console.log(`| epp serve, 4 static endpoints, idle RSS MiB | ${formatSpread(spread(l.map((r) => r.idleMiB)))} |`);
