/**
 * `npm ci` on the Node this project supports prints no engine warning and no unreviewed install-script warning:
 * every locked package accepts the running Node, and every package with an install script has a reviewed entry in
 * package.json `allowScripts` (npm >= 11.x blocks unlisted install scripts and warns about them).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string }; allowScripts?: Record<string, boolean> };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: unknown; hasInstallScript?: boolean }>;
};

type V = [number, number, number];
function version(s: string): V {
  const [a = 0, b = 0, c = 0] = s.replace(/^v/, '').split('.').map((x) => Number.parseInt(x, 10) || 0);
  return [a, b, c];
}
function cmp(a: V, b: V): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}
/** npm's engine ranges as they occur in lockfiles: `||` of space-separated `>=x`, `>x`, `<x`, `<=x`, `^x`, `~x`, `x`, `*`. */
export function satisfies(v: V, range: string): boolean {
  return range.split('||').some((alt) => {
    const parts = alt.trim().replace(/(>=|<=|>|<|\^|~)\s+/g, '$1').split(/\s+/).filter((p) => p !== '');
    return parts.every((p) => {
      if (p === '*' || p === 'x') return true;
      const m = /^(>=|<=|>|<|\^|~|=)?v?(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?/.exec(p);
      if (!m) throw new Error(`unparsed engine range '${range}'`);
      const [, op = '', maj, min, pat] = m;
      const w: V = [Number(maj), min === undefined || min === 'x' ? 0 : Number(min), pat === undefined || pat === 'x' ? 0 : Number(pat)];
      const c = cmp(v, w);
      switch (op) {
        case '>=':
          return c >= 0;
        case '>':
          return c > 0;
        case '<':
          return c < 0;
        case '<=':
          return c <= 0;
        case '^':
          return c >= 0 && v[0] === w[0];
        case '~':
          return c >= 0 && v[0] === w[0] && (min === undefined || v[1] === w[1]);
        default:
          // A bare version: `20` means 20.x.x, `20.19` means 20.19.x.
          return v[0] === w[0] && (min === undefined || min === 'x' || v[1] === w[1]) && (pat === undefined || pat === 'x' || v[2] === w[2]);
      }
    });
  });
}

test('the engine-range check reads npm ranges as npm does', () => {
  const v = version('20.20.2');
  for (const r of ['>=20', '>= 18', '^20.19.0 || ^22.13.0 || >=24', '20 || >=22', '18 || 20 || >=22', '*', '>=0.10.0']) assert.ok(satisfies(v, r), r);
  for (const r of ['>=22', '^18.18.0', '>=20.21', '22 || >=24']) assert.ok(!satisfies(v, r), r);
});

test('every locked package accepts the running Node (no EBADENGINE warning from npm ci)', () => {
  const node = version(process.version);
  const bad: string[] = [];
  for (const [path, p] of Object.entries(lock.packages)) {
    if (path === '') continue;
    const range = (p.engines as { node?: unknown } | undefined)?.node;
    if (typeof range === 'string' && !satisfies(node, range)) bad.push(`${path}@${p.version}: engines.node ${range}`);
  }
  assert.deepEqual(bad, [], `packages that refuse Node ${process.version} (project engines: ${pkg.engines.node})`);
});

test('every package with an install script has a reviewed allowScripts entry (no install-scripts warning)', () => {
  const allowed = pkg.allowScripts ?? {};
  const names = Object.keys(allowed).map((k) => k.replace(/(.)@[^@/]*$/, '$1'));
  const unreviewed = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && p.hasInstallScript === true)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
    .filter((name) => !names.includes(name));
  assert.deepEqual(unreviewed, []);
});
