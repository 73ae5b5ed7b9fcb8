/** Every built-in plugin type is listed in docs/plugins.md, linked to its folder, and that folder has a README. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BUILTIN_PLUGINS } from '../src/plugins/register.ts';

test('docs/plugins.md lists every registered plugin type with a link to its README, and nothing else', () => {
  const doc = readFileSync(new URL('../docs/plugins.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Built-in plugin types'), doc.indexOf('## Loading your plugin'));
  const listed = new Map([...section.matchAll(/\[`([a-z0-9-]+)`\]\(\.\.\/(src\/plugins\/[^)]+\/README\.md)\)/g)].map((m) => [m[1]!, m[2]!]));
  const registered = BUILTIN_PLUGINS.map((p) => p.type);
  assert.deepEqual([...listed.keys()].sort(), [...registered].sort());
  for (const [type, readme] of listed) {
    assert.ok(readme.endsWith(`/${type}/README.md`), `${type} links to its own folder (${readme})`);
    assert.ok(existsSync(new URL(`../${readme}`, import.meta.url)), `${readme} exists`);
  }
});
