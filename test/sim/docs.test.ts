// docs/simulator.md must document every option the code defines, with the default the code uses.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { KNOBS, defaultServerOptions, formatKnobValue } from '../../src/sim/config.ts';

const doc = readFileSync(new URL('../../docs/simulator.md', import.meta.url), 'utf8');

describe('docs/simulator.md', () => {
  it('lists every option with its default', () => {
    const defaults = defaultServerOptions();
    for (const knob of KNOBS) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`--${knob.name}\` |`));
      assert.ok(row !== undefined, `no row for --${knob.name}`);
      const documented = (row.split('|')[2] ?? '').trim();
      const actual = formatKnobValue(knob, defaults);
      if (Array.isArray(actual)) assert.equal(documented, '(all)', knob.name);
      else assert.equal(documented.replace(/^"|"$/g, ''), String(actual), knob.name);
      assert.equal((row.split('|')[3] ?? '').trim() === 'yes', knob.runtime, `runtime flag of ${knob.name}`);
    }
  });
});
