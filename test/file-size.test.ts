/**
 * Issue 14's rule for newcomers: a source file over ~350 lines says at its top why it is one file (a line
 * starting `Why one file:` in its header), so a long file is a decision, not an accident.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..');
const LIMIT = 350;
/** Generated code (protobuf-es) is exempt. */
const EXEMPT = ['src/gen/'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

test(`every src file over ${LIMIT} lines states at its top why it is one file`, () => {
  const long = sources(join(ROOT, 'src'))
    .map((p) => ({ path: relative(ROOT, p).split('\\').join('/'), lines: readFileSync(p, 'utf8').replace(/\n$/, '').split('\n') }))
    .filter((f) => f.lines.length > LIMIT && !EXEMPT.some((e) => f.path.startsWith(e)));
  assert.ok(long.length > 0, 'the check sees the long files');
  const unexplained = long.filter((f) => !f.lines.slice(0, 80).some((l) => /^\s*(\*|\/\/)\s*Why one file: \S/.test(l)));
  assert.deepEqual(
    unexplained.map((f) => `${f.path} (${f.lines.length} lines)`),
    [],
    'split the file along its seams, or add "Why one file: <reason>" to its header comment',
  );
});
