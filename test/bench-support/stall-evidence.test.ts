/** Per-stall evidence for the benchmarks: /proc parsers, the activity span log, and the one-line stall report. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COUNTER_HEAD, describeStall, formatStall, machineDelta, openMachineCounters, parseProcStatSteal, parseSoftirqs, parseThreadStat, SpanLog } from '../../bench/support/stall-evidence.ts';
import { startStallSampler } from '../../bench/support/stalls.ts';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

test('/proc/stat: the steal column of each cpuN line, the aggregate line skipped', () => {
  const text = 'cpu  4143316 3062 536756 4870025 11818 0 74300 2281 0 0\ncpu0 2075307 1783 260168 2445034 1702 0 35396 1149 0 0\ncpu1 2068009 1279 276588 2424990 10115 0 38904 1131 0 0\nintr 74442015 0 0 0\nctxt 5\n';
  const out = new Float64Array(COUNTER_HEAD + 4);
  assert.equal(parseProcStatSteal(bytes(text), text.length, out, COUNTER_HEAD), 2);
  assert.deepEqual([...out.subarray(COUNTER_HEAD, COUNTER_HEAD + 2)], [1149, 1131]);
  // An old kernel's lines without a steal column: nothing read.
  const old = 'cpu0 1 2 3 4 5 6 7\n';
  assert.equal(parseProcStatSteal(bytes(old), old.length, new Float64Array(8), 0), 0);
});

test('/proc/softirqs: each CPU column summed over the kinds', () => {
  const text = '                    CPU0       CPU1       \n          HI:          0          0\n       TIMER:    3644096    3823770\n      NET_RX:  118334146  116528935\n         RCU:    3336228    3964338\n';
  const out = new Float64Array(6).fill(99);
  parseSoftirqs(bytes(text), text.length, out, 2, 2);
  assert.deepEqual([...out.subarray(2, 4)], [3644096 + 118334146 + 3336228, 3823770 + 116528935 + 3964338]);
  assert.equal(out[0], 99, 'the rest of the layout is left alone');
});

test("a thread's stat: minor and major faults and its last CPU, with a command name holding spaces and parentheses", () => {
  const fields = (comm: string) => `15480 (${comm}) R 15477 15477 14730 0 -1 4194304 2769 0 12 0 8 1 0 0 39 19 11 0 4882368 1049292800 12165 18446744073709551615 11988992 39846385 140733142092928 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0 90418888\n`;
  for (const comm of ['node', 'a (b) c']) {
    const text = fields(comm);
    const out = new Float64Array(3);
    assert.ok(parseThreadStat(bytes(text), text.length, out), comm);
    assert.deepEqual([...out], [2769, 12, 1], comm);
  }
  assert.equal(parseThreadStat(bytes('15480 (node) R 1 2'), 18, new Float64Array(3)), false, 'cut short');
});

test('machine counters: read on Linux (the thread faults as it touches new memory); a reason elsewhere', { skip: process.platform !== 'linux' }, () => {
  const mc = openMachineCounters();
  if (!('read' in mc)) return assert.match(mc.unavailable, /proc/);
  assert.ok(mc.cpus >= 1);
  const a = new Float64Array(COUNTER_HEAD + 2 * mc.cpus);
  const b = new Float64Array(a.length);
  assert.ok(mc.read(a));
  const fresh = Buffer.alloc(64 << 20, 1); // 64 MiB of new pages
  assert.ok(mc.read(b) && fresh[123] === 1);
  const d = machineDelta(a, b, mc.cpus);
  assert.ok(d.minorFaults > 100, `faults counted: ${d.minorFaults}`);
  assert.ok(d.cpu >= 0 && d.cpu < mc.cpus);
  assert.ok(d.stealTicks.every((x) => x >= 0) && d.softirqs.every((x) => x >= 0));
  mc.close();
  const sampler = startStallSampler(2, { schedstat: false });
  assert.match(sampler.machine, /steal and softirqs/);
  sampler.stop();
  assert.ok((sampler.totals()?.seconds ?? -1) >= 0, 'totals over the sampling period');
  const off = startStallSampler(2, { machine: false });
  off.stop();
  assert.equal(off.totals(), undefined);
});

test('SpanLog: per kind, the time of spans inside a window and how many touched it; wraps calls; a ring', () => {
  const log = new SpanLog(['route', 'apply']);
  log.record(0, 0, 1); // before the window
  log.record(1, 9, 11); // 1 ms inside
  log.record(0, 11, 12.5); // inside
  log.record(1, 13, 13); // a zero-length span inside: counted, no time
  log.record(0, 14, 20); // 1 ms inside
  assert.deepEqual(log.within(10, 15), [
    { kind: 'route', ms: 2.5, count: 2 },
    { kind: 'apply', ms: 1, count: 2 },
  ]);
  let t = 100;
  const f = log.wrap(1, () => (t += 0.5), (x: number) => x * 2);
  assert.equal(f(21), 42);
  assert.deepEqual(log.within(100, 101)[1], { kind: 'apply', ms: 0.5, count: 1 });
  const small = new SpanLog(['a'], 2);
  for (let i = 0; i < 5; i++) small.record(0, i, i + 0.5);
  assert.deepEqual(small.within(0, 10), [{ kind: 'a', ms: 1, count: 2 }], 'only the last `capacity` spans are kept');
  small.clear();
  assert.equal(small.within(0, 10)[0]?.count, 0);
  assert.throws(() => new SpanLog(Array.from({ length: 256 }, (_, i) => String(i))), /at most 255/);
});

test('describeStall and formatStall: the window split into activities, collections, wait and unaccounted time, with the machine beside it', () => {
  const spans = new SpanLog(['route', 'apply']);
  spans.record(0, 1000.2, 1001.4); // route: 1.2 ms
  spans.record(1, 1001.5, 1002); // apply: 0.5 ms
  // The tick was due at 1001 and fired at 1004.5: window 1000–1004.5 (4.5 ms), 3.5 ms late.
  const stall = {
    start: 1001,
    end: 1004.5,
    delayMs: 3.5,
    thread: { cpuMs: 3, waitMs: 0.2 },
    machine: { minorFaults: 40, majorFaults: 0, cpu: 1, stealTicks: [0, 1], softirqs: [5, 17] },
  };
  const gcs = [
    { start: 1002, durationMs: 1, kind: 'minor' as const },
    { start: 900, durationMs: 5, kind: 'major' as const }, // outside
  ];
  const e = describeStall(stall, 1000, 'on-cpu', gcs, spans, 1);
  assert.equal(e.atMs, 1);
  assert.equal(e.windowMs, 4.5);
  assert.deepEqual(e.gcs, [{ kind: 'minor', ms: 1 }]);
  assert.ok(Math.abs((e.otherMs ?? 0) - (3 - 1 - 1.2 - 0.5)) < 1e-9, 'on-CPU time no activity and no collection covers');
  assert.ok(Math.abs((e.unaccountedMs ?? 0) - (4.5 - 3 - 0.2 - 1)) < 1e-9, 'neither on the CPU nor waiting, beyond the interval');
  assert.equal(
    formatStall(e),
    't=1 ms, 3.5 ms late [on-cpu]: window 4.5 ms = on-CPU 3.0 (route 1.2 ×1, apply 0.5 ×1, other 0.3), GC minor 1.0, wait 0.2, unaccounted 0.3; steal ticks 0/1* (cpu1*), 17 softirqs on cpu1, 40 faults',
  );
  const bare = describeStall({ start: 5, end: 8, delayMs: 3 }, 0, undefined, [], undefined, 1, 'halvesOf ← exportSnapshot (4 samples)');
  assert.equal(formatStall(bare), 't=5 ms, 3.0 ms late [no thread times]: window 4.0 ms = GC 0; top stack: halvesOf ← exportSnapshot (4 samples)');
});
