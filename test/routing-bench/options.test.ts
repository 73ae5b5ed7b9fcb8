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

test('--merge takes files, and from a file after ":" only the scenarios named (joined by "+")', () => {
  const { merge } = parseArgs(['--merge', 'a.json,runs/b.json:sp-pressure+sp-reset-5s']);
  assert.equal(merge.length, 2);
  assert.match(merge[0]?.file ?? '', /\/a\.json$/);
  assert.equal(merge[0]?.scenarios, undefined);
  assert.match(merge[1]?.file ?? '', /\/runs\/b\.json$/);
  assert.deepEqual(merge[1]?.scenarios, ['sp-pressure', 'sp-reset-5s']);
  assert.throws(() => parseArgs(['--merge', 'b.json:sp-presure']), /--merge b\.json:sp-presure: unknown scenario sp-presure; known: /);
});
