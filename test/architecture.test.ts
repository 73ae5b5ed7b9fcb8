/**
 * The dependency rule of docs/architecture (house style): contracts ← plugins ← engine ← adapters.
 * A source file may import only from the layers listed for its own layer; this test fails on any import
 * that points the wrong way. Type-only imports (`import type`) are exempt: they leave no run-time edge.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = resolve(import.meta.dirname, '../src');

/** layer → the layers it may import (itself included). */
const ALLOWED: Record<string, readonly string[]> = {
  util: ['util'],
  gen: ['gen'],
  framework: ['framework', 'util'],
  observability: ['observability', 'framework', 'util'],
  plugins: ['plugins', 'framework', 'util', 'observability'],
  datalayer: ['datalayer', 'framework', 'plugins', 'util', 'observability'],
  runtime: ['runtime', 'framework', 'plugins', 'util', 'observability'],
  config: ['config', 'runtime', 'framework', 'plugins', 'datalayer', 'util', 'observability'],
  server: ['server', 'config', 'runtime', 'datalayer', 'framework', 'plugins', 'util', 'observability', 'gen'],
  sim: ['sim'],
  cli: ['cli', 'server', 'config', 'runtime', 'datalayer', 'framework', 'plugins', 'util', 'observability', 'sim'],
};

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
      if (/^(import|export)\s+type\s/.test(m[0])) continue; // type-only imports vanish at run time
      const spec = (m[1] ?? m[2]) as string;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC)) continue;
      const to = layerOf(target);
      if (!allowed.includes(to)) violations.push(`${relative(SRC, file)} imports ${spec} (${layer} → ${to})`);
    }
  }
  assert.deepEqual(violations, []);
});
