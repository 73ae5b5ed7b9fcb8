/**
 * The repository stands alone: `git clone` anywhere, `npm ci`, `npm test`. No file under src/, test/, bench/ or
 * scripts/ may name a path outside the repository — every relative path literal ('./…', '../…', as imports, in
 * `new URL(…, import.meta.url)` or path joins) must resolve inside it, and no absolute path into the machine it was
 * written on (/work/…, /home/…) or into the sibling `shared` folder may appear. Fixtures live under test/fixtures/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIRS = ['src', 'test', 'bench', 'scripts'];
const SOURCE = /\.(ts|js|mjs|cjs|json|ya?ml)$/;

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (SOURCE.test(name)) out.push(p);
  }
  return out;
}

/** Offending path literals of one file's text, as `line: literal → where it points`. */
export function outsidePaths(file: string, text: string, root = ROOT): string[] {
  const found: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    for (const m of line.matchAll(/(['"`])(\.{1,2}\/[^'"`\s$]*)\1/g)) {
      const target = resolve(dirname(file), m[2] as string);
      const rel = relative(root, target);
      if (rel === '..' || rel.startsWith(`..${sep}`)) found.push(`${i + 1}: '${m[2]}' → ${target}`);
    }
    for (const m of line.matchAll(/(['"`])((?:\/work|\/home|\/Users)\/[^'"`\s]*|[^'"`\s]*\bshared\/(?:fixtures|docs)\b[^'"`\s]*)\1/g)) {
      found.push(`${i + 1}: '${m[2]}' (outside the repository)`);
    }
  });
  return found;
}

test('the check itself: escaping relative paths and absolute machine paths are found, in-repo ones are not', () => {
  const examples = readFileSync(join(ROOT, 'test', 'fixtures', 'self-contained', 'examples.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.replaceAll('{UP}', '..').replaceAll('{WORK}', '/work').replaceAll('{SHARED}', 'shared').split(' | '));
  assert.equal(examples.length, 5);
  for (const [file, expected, line] of examples) {
    assert.equal(outsidePaths(join(ROOT, file as string), line as string).length, Number(expected), line);
  }
});

test('no file under src/, test/, bench/ or scripts/ reads a path outside the repository', () => {
  const offending: string[] = [];
  for (const dir of DIRS) {
    for (const file of walk(join(ROOT, dir), [])) {
      for (const f of outsidePaths(file, readFileSync(file, 'utf8'))) offending.push(`${relative(ROOT, file)}:${f}`);
    }
  }
  assert.deepEqual(offending, []);
});
