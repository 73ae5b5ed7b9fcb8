#!/usr/bin/env node
// The `epp` executable. It runs the compiled JavaScript in dist/ (`npm run build`; the published package and
// the container image ship only that). In a source checkout without dist/, or with EPP_FROM_SOURCE=1 (the
// test runner sets it, so tests never run a stale build), it runs the TypeScript sources through tsx, a
// development dependency: a fresh clone needs only `npm ci` before `npm start`.
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/main.js', import.meta.url);
let cli;
if (process.env.EPP_FROM_SOURCE !== '1' && existsSync(built)) {
  cli = await import(built.href);
} else {
  const source = new URL('../src/cli/main.ts', import.meta.url);
  if (!existsSync(source)) {
    process.stderr.write('epp: dist/ is missing: run `npm run build` (or reinstall the package)\n');
    process.exit(1);
  }
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
}
await cli.main(process.argv.slice(2));
