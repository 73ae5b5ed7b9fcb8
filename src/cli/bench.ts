/**
 * `epp bench routing [flags]`: the routing benchmark (docs/benchmarks.md) as a CLI entry, with exactly the
 * flags of `npm run bench:routing` (bench/routing/run.ts parses them). The benchmark lives in the repository's
 * `bench/` tree, outside the shipped sources, so it runs as its own Node process (it forks its fleet and load
 * generator anyway); its exit code is this command's.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';

const ROOT = resolve(import.meta.dirname, '../..');

/** The benchmark scripts `epp bench <name>` runs, relative to the repository root. */
const BENCHES: Readonly<Record<string, string>> = {
  routing: 'bench/routing/run.ts',
  calibrate: 'bench/routing/calibrate.ts',
};

/** The child process's argument vector for `epp bench <name> <args>` (exported for tests). */
export function benchArgv(name: string, args: readonly string[]): string[] {
  const script = BENCHES[name];
  if (script === undefined) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(BENCHES).join(', ')}`);
  return ['--import', 'tsx', resolve(ROOT, script), ...args];
}

export function addBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('Run a benchmark of this repository: `epp bench routing [--quick] [--scenarios …] [--policies …] …` (docs/benchmarks.md)')
    .argument('<name>', `benchmark: ${Object.keys(BENCHES).join(', ')}`)
    .argument('[flags...]', 'the benchmark\'s own flags (bench/routing/run.ts)')
    .allowUnknownOption(true)
    .helpOption(false)
    .action(async (name: string, flags: string[]) => {
      const argv = benchArgv(name, flags);
      if (!existsSync(argv[2] as string)) throw new Error(`${argv[2]} not found: epp bench runs from a clone of the repository`);
      const code = await new Promise<number>((resolveExit) => {
        const child = spawn(process.execPath, argv, { stdio: 'inherit', cwd: ROOT });
        child.on('exit', (c, signal) => resolveExit(c ?? (signal ? 1 : 0)));
      });
      if (code !== 0) process.exit(code);
    });
}
