/** `epp bench routing` options: --help documents every option the parser accepts. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseArgs, USAGE } from '../../bench/routing/run.ts';

test('--help asks for the usage text and runs nothing; every accepted option is in it', () => {
  assert.equal(parseArgs(['--help']).help, true);
  assert.equal(parseArgs(['-h']).help, true);
  assert.equal(parseArgs(['--quick']).help, false);
  const source = readFileSync(new URL('../../bench/routing/run.ts', import.meta.url), 'utf8');
  const accepted = [...source.matchAll(/a === '(--[a-z-]+)'/g)].map((m) => m[1] as string);
  assert.ok(accepted.length >= 15, `found the parser's options (${accepted.length})`);
  for (const flag of accepted) assert.match(USAGE, new RegExp(`^  ${flag}\\b`, 'm'), `${flag} is documented in --help`);
});

test('an unknown option names --help', () => {
  assert.throws(() => parseArgs(['--rate', '8']), /unknown option --rate \(epp bench routing --help lists the options\)/);
});
