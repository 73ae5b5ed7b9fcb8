/** The error registry and docs/errors.md list the same codes with the same explanation (both directions). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { EppConfigError, EppError, ERROR_REGISTRY, errorIdForCode, toError, type EppErrorCode } from '../src/framework/errors.ts';

const DOC = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

function documented(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of DOC.split('\n')) {
    const m = /^\| `(EPP_ERR_[A-Z_]+)` \| (.*) \|$/.exec(line);
    if (m) {
      assert.ok(!out.has(m[1]!), `${m[1]} documented twice`);
      out.set(m[1]!, m[2]!.replace(/`/g, ''));
    }
  }
  return out;
}

test('docs/errors.md lists exactly the registered codes, each with its registry explanation', () => {
  const doc = documented();
  assert.deepEqual([...doc.keys()].sort(), Object.keys(ERROR_REGISTRY).sort());
  for (const [id, text] of Object.entries(ERROR_REGISTRY)) assert.equal(doc.get(id), text, id);
});

test('every upstream error code, config error and non-Error rejection carries a registered code', () => {
  const codes: EppErrorCode[] = ['BadRequest', 'Unauthorized', 'Forbidden', 'NotFound', 'ResourceExhausted', 'Internal', 'ServiceUnavailable', 'ModelServerError', 'Unknown', 'PayloadTooLarge'];
  for (const code of codes) {
    assert.ok(errorIdForCode(code) in ERROR_REGISTRY, code);
    assert.equal(new EppError(code, 'x').id, errorIdForCode(code));
  }
  assert.equal(new EppError('Internal', 'x', { id: 'EPP_ERR_HOOK_TIMEOUT' }).id, 'EPP_ERR_HOOK_TIMEOUT');
  assert.ok(new EppConfigError('bad', 'fix').id in ERROR_REGISTRY);
  assert.ok((toError('nope') as Error & { code: string }).code in ERROR_REGISTRY);
});
