/**
 * Sums a V8 CPU profile (`.cpuprofile`, as `node --cpu-prof` writes it) by function and by category, and
 * compares two of them: where does one server spend the time the other does not?
 *
 *   node --import tsx bench/support/profile-summary.ts A.cpuprofile [B.cpuprofile] [--per-stream-a µs --per-stream-b µs]
 *        [--from REGEX] [--top 40] [--phases REGEX,REGEX,...] [--within REGEX]
 *
 * - Only the busy window counts: from the first sample whose stack has a frame matching `--from` (default: the
 *   grpc-js server, i.e. the first call served; start-up and module loading are left out) to the end. Idle
 *   samples are reported apart and excluded from the shares.
 * - Self time per function (bottom-up), and per category: the file's package or the project folder
 *   (`src/runtime`, `@grpc/grpc-js`, `node:internal/http2`, GC, ...).
 * - "Triggered by": each sample is also charged to the nearest project frame (`/src/`, `/bench/`) on its stack,
 *   so the time node and grpc-js spend on behalf of a project function (a write, a timer) shows against it.
 * - `--phases`: each sample is charged to the first of these patterns (in the order given) that matches a frame
 *   on its stack (`name file:line`), e.g. `--phases 'route src/runtime/director,#write'`: inclusive time per phase.
 * - `--within REGEX`: only samples with a frame matching it (e.g. one phase's functions).
 *   Likewise each sample is charged to the outermost project frame: the entry point node or grpc-js called.
 * - With `--per-stream-a/-b` (the server's measured CPU µs per stream, from the bench run without profiling)
 *   the shares are also shown as µs per stream, and the comparison as the difference per category.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { frameLabel, PROJECT_FILE, shortUrl, stacksOf, type CallFrame, type CpuProfile, type ProfileNode } from './cpuprofile.ts';

export interface Summary {
  /** Busy µs in the window (idle excluded). */
  readonly busyUs: number;
  readonly idleUs: number;
  readonly byFunction: Map<string, number>;
  readonly byCategory: Map<string, number>;
  readonly byTrigger: Map<string, number>;
  /** Busy time by the outermost project frame on the stack: the entry point from node or grpc-js. */
  readonly byEntry: Map<string, number>;
  /** Busy time by `phases`: each sample goes to the first pattern that matches a frame on its stack. */
  readonly byPhase: Map<string, number>;
}


/** The category of a frame: GC and the VM's own entries, node's module, a package, or a project folder. */
export function category(f: CallFrame): string {
  if (f.url === '') {
    if (f.functionName === '(garbage collector)') return '(gc)';
    if (f.functionName === '(program)' || f.functionName === '(idle)' || f.functionName === '(root)') return f.functionName;
    return '(native)';
  }
  if (f.url.startsWith('node:')) {
    const m = /^node:(internal\/)?([a-z_]+)/.exec(f.url);
    const mod = m?.[2] ?? f.url;
    // Group node's internals the way the time is spent: http2/net/streams/timers/events/buffer/...
    return `node:${mod === 'per_context' ? 'internal' : mod}`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f.url);
  if (pkg) return pkg[1] as string;
  const proj = PROJECT_FILE.exec(f.url);
  if (proj) return (proj[1] as string).split('/').slice(0, 2).join('/').replace(/\.ts$/, '');
  return shortUrl(f.url);
}

const isProject = (f: CallFrame): boolean => {
  const m = PROJECT_FILE.exec(f.url);
  return m !== null && /^(src|bench)\//.test(m[1] as string);
};

export function summarize(profile: Pick<CpuProfile, 'nodes' | 'samples' | 'timeDeltas'>, from: RegExp, phases: readonly RegExp[] = [], within?: RegExp): Summary {
  const stack = stacksOf(profile); // leaf first
  /** `f` of a profile node, computed once per node (many samples share a node). */
  const perNode = <T>(f: (id: number) => T): ((id: number) => T) => {
    const memo = new Map<number, T>();
    return (id) => {
      if (memo.has(id)) return memo.get(id) as T;
      const v = f(id);
      memo.set(id, v);
      return v;
    };
  };
  const projectFrame = (p: ProfileNode | undefined): string => (p ? frameLabel(p.callFrame) : '(no project frame)');
  const inWindow = perNode((id) => stack(id).some((n) => from.test(n.callFrame.url) || from.test(n.callFrame.functionName)));
  const triggerOf = perNode((id) => projectFrame(stack(id).find((n) => isProject(n.callFrame))));
  const entryOf = perNode((id) => projectFrame(stack(id).findLast((n) => isProject(n.callFrame))));
  const phaseOf = perNode((id) => {
    const labels = stack(id).map((n) => frameLabel(n.callFrame));
    return phases.find((re) => labels.some((l) => re.test(l)))?.source ?? '(other)';
  });
  const byEntry = new Map<string, number>();
  const byPhase = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byCategory = new Map<string, number>();
  const byTrigger = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);
  let started = false;
  let busyUs = 0;
  let idleUs = 0;
  // timeDeltas[i] is the time before sample i: charge sample i with the delta that follows it.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    if (!started) started = inWindow(id);
    if (!started) continue;
    const us = profile.timeDeltas[i + 1] ?? 0;
    const f = (stack(id)[0] as ProfileNode).callFrame;
    if (within !== undefined && !stack(id).some((n) => within.test(frameLabel(n.callFrame)))) continue;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    add(byFunction, frameLabel(f), us);
    add(byCategory, category(f), us);
    add(byTrigger, triggerOf(id), us);
    add(byEntry, entryOf(id), us);
    if (phases.length > 0) add(byPhase, phaseOf(id), us);
  }
  return { busyUs, idleUs, byFunction, byCategory, byTrigger, byEntry, byPhase };
}

function table(title: string, rows: Array<[string, ...string[]]>, header: string[]): void {
  console.log(`\n## ${title}\n`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

const pct = (v: number, total: number): string => `${((100 * v) / total).toFixed(1)} %`;

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      from: { type: 'string', default: '@grpc/grpc-js/build/src/server\\.js' },
      top: { type: 'string', default: '40' },
      phases: { type: 'string', default: '' },
      within: { type: 'string' },
      'per-stream-a': { type: 'string' },
      'per-stream-b': { type: 'string' },
    },
  });
  if (positionals.length < 1 || positionals.length > 2) throw new Error('usage: profile-summary A.cpuprofile [B.cpuprofile] [--per-stream-a µs --per-stream-b µs]');
  const from = new RegExp(values.from as string);
  const top = Number(values.top);
  const phases = (values.phases as string).split(',').filter((x) => x !== '').map((x) => new RegExp(x));
  const sums = positionals.map((p) => summarize(JSON.parse(readFileSync(p, 'utf8')) as CpuProfile, from, phases, values.within === undefined ? undefined : new RegExp(values.within)));
  const perStream = [values['per-stream-a'], values['per-stream-b']].map((v) => (v === undefined ? undefined : Number(v)));
  // µs per stream of a share: the share of busy time times the measured CPU per stream.
  const scaled = (s: Summary, k: number, v: number): string => {
    const ps = perStream[k];
    return ps === undefined ? pct(v, s.busyUs) : `${pct(v, s.busyUs)} (${((v / s.busyUs) * ps).toFixed(0)} µs)`;
  };
  sums.forEach((s, k) => {
    console.log(`\n# ${positionals[k]}: busy ${(s.busyUs / 1000).toFixed(0)} ms, idle ${(s.idleUs / 1000).toFixed(0)} ms in the window`);
  });
  const names = positionals.map((_, k) => String.fromCharCode(65 + k));
  const keys = (m: (s: Summary) => Map<string, number>): string[] => {
    const all = new Map<string, number>();
    sums.forEach((s) => m(s).forEach((v, key) => all.set(key, Math.max(all.get(key) ?? 0, v / s.busyUs))));
    return [...all.entries()].sort((x, y) => y[1] - x[1]).map(([key]) => key);
  };
  const rowsOf = (m: (s: Summary) => Map<string, number>, n: number): Array<[string, ...string[]]> =>
    keys(m)
      .slice(0, n)
      .map((key) => {
        const cells = sums.map((s, k) => scaled(s, k, m(s).get(key) ?? 0));
        if (sums.length === 2 && perStream[0] !== undefined && perStream[1] !== undefined) {
          const d = sums.map((s, k) => ((m(s).get(key) ?? 0) / s.busyUs) * (perStream[k] as number));
          cells.push(`${((d[0] as number) - (d[1] as number)).toFixed(0)}`);
        }
        return [key, ...cells] as [string, ...string[]];
      });
  const header = (first: string): string[] => [first, ...names, ...(sums.length === 2 && perStream[0] !== undefined ? ['A − B µs/stream'] : [])];
  if (phases.length > 0) table('Busy time by phase (first pattern matching a frame on the stack)', rowsOf((s) => s.byPhase, 100), header('phase'));
  table('Self time by category (share of busy time)', rowsOf((s) => s.byCategory, 60), header('category'));
  table(`Self time by function (top ${top})`, rowsOf((s) => s.byFunction, top), header('function'));
  table(`Time by the outermost project frame on the stack, the entry point (top ${top})`, rowsOf((s) => s.byEntry, top), header('entry'));
  table(`Time by the nearest project frame on the stack (top ${top})`, rowsOf((s) => s.byTrigger, top), header('project frame'));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
