/**
 * V8 CPU profiles (`Profiler.stop`'s result, or a `.cpuprofile` file from `node --cpu-prof`): their shape, a
 * frame's label, and each sample's stack. Shared by profile-summary.ts (whole profiles from files) and
 * profile.ts (samples of chosen time windows, in process).
 */
export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A project file (not a package): its path from the checkout's `src/`, `bench/`, `test/` or `scripts/` folder. */
export const PROJECT_FILE = /^file:\/\/(?!.*\/node_modules\/).*?\/((?:src|bench|test|scripts)\/.*)$/;
/** A frame's file, shortened to the package path or the project path. */
export const shortUrl = (url: string): string => url.replace(/^file:\/\/.*?\/node_modules\//, '').replace(PROJECT_FILE, '$1');
/** "function file:line" (1-based line; no file for the VM's own entries). */
export const frameLabel = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;

/** The stack of a node id, leaf first, down to and including the root; computed once per node. */
export function stacksOf(profile: Pick<CpuProfile, 'nodes'>): (id: number) => readonly ProfileNode[] {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const memo = new Map<number, ProfileNode[]>();
  return (id) => {
    let s = memo.get(id);
    if (s === undefined) {
      s = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) s.push(byId.get(at) as ProfileNode);
      memo.set(id, s);
    }
    return s;
  };
}
