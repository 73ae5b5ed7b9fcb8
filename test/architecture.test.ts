/**
 * The dependency rule of docs/architecture.md (house style): contracts ← plugins ← engine ← adapters.
 * A source file may import only from the layers docs/architecture.md lists for its own layer (the table is
 * read from the doc); type-only imports count too, and nothing in src/ imports from outside src/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../src');

const DOC = readFileSync(resolve(import.meta.dirname, '../docs/architecture.md'), 'utf8');

/** layer → the layers it may import (itself included), read from the table in docs/architecture.md. */
const ALLOWED: Record<string, readonly string[]> = (() => {
  const table = /<!-- layers:start -->([\s\S]*?)<!-- layers:end -->/.exec(DOC);
  assert.ok(table, 'docs/architecture.md has no layers table');
  const out: Record<string, readonly string[]> = {};
  for (const line of table[1]!.split('\n')) {
    const m = /^\| `(\w+)` \| (.*) \|$/.exec(line);
    if (m) out[m[1]!] = [...m[2]!.matchAll(/`(\w+)`/g)].map((x) => x[1]!);
  }
  return out;
})();

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const layerOf = (file: string): string => relative(SRC, file).split(/[\\/]/)[0] as string;

test('every import in src/ points down the layer stack', () => {
  const violations: string[] = [];
  for (const file of files(SRC)) {
    const layer = layerOf(file);
    const allowed = ALLOWED[layer];
    assert.ok(allowed, `src/${layer} is not a known layer: add it to ALLOWED in test/architecture.test.ts`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      const spec = (m[1] ?? m[2]) as string;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC + sep)) {
        violations.push(`${relative(SRC, file)} imports ${spec} (outside src/)`);
        continue;
      }
      const to = layerOf(target);
      if (!allowed.includes(to)) violations.push(`${relative(SRC, file)} imports ${spec} (${layer} → ${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the table keeps the dependency rule: engine and config never import plugins, config never imports the engine', () => {
  // The table is the rule; these pins stop it from being loosened silently (docs/architecture.md).
  assert.deepEqual(ALLOWED.framework, ['framework']);
  for (const layer of ['runtime', 'config', 'observability', 'framework', 'util']) {
    assert.ok(!ALLOWED[layer]!.includes('plugins'), `${layer} may not import plugins: offer what plugins need through the plugin handle`);
  }
  assert.ok(!ALLOWED.config!.includes('runtime'), 'config/ produces a plan; the runtime compiles it');
  assert.ok(!ALLOWED.runtime!.includes('server'), 'the engine never imports an adapter');
});

test('outside plugins/, only the files docs/architecture.md lists name a built-in plugin', () => {
  const listed = /<!-- plugin-importers:start -->([\s\S]*?)<!-- plugin-importers:end -->/.exec(DOC);
  assert.ok(listed, 'docs/architecture.md has no plugin-importers list');
  const allowed = new Set([...listed[1]!.matchAll(/`([\w/.-]+)`/g)].map((m) => m[1]!));
  const importers = new Set<string>();
  for (const file of files(SRC)) {
    if (layerOf(file) === 'plugins') continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      if (layerOf(resolve(dirname(file), (m[1] ?? m[2]) as string)) === 'plugins') importers.add(relative(SRC, file).split(sep).join('/'));
    }
  }
  assert.deepEqual([...importers].sort(), [...allowed].sort());
});

test('bench/ takes shared helpers from test/support/ and test/fixtures/ only, and nothing under test/support/ imports bench/', () => {
  // One implementation of each helper (a throwaway redis-server, fixtures) for suites and benchmarks alike: the
  // benchmarks sit above test/support/, never above a test file, and test/support/ never reaches back up.
  const ROOT = resolve(import.meta.dirname, '..');
  const specs = (file: string): string[] =>
    [...readFileSync(file, 'utf8').matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => resolve(dirname(file), (m[1] ?? m[2]) as string));
  const violations: string[] = [];
  for (const file of files(join(ROOT, 'bench'))) {
    for (const target of specs(file)) {
      const rel = relative(ROOT, target).split(sep).join('/');
      if (rel.startsWith('test/') && !rel.startsWith('test/support/') && !rel.startsWith('test/fixtures/')) violations.push(`${relative(ROOT, file)} imports ${rel}`);
    }
  }
  for (const file of files(join(ROOT, 'test/support'))) {
    for (const target of specs(file)) {
      const rel = relative(ROOT, target).split(sep).join('/');
      if (rel.startsWith('bench/')) violations.push(`${relative(ROOT, file)} imports ${rel}`);
    }
  }
  assert.deepEqual(violations, []);
});
