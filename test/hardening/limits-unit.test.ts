/** The small pieces behind the limits: path checks, header stripping, label bounds, the body budget, nesting scan. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkProxyPath, DEFAULT_ALLOWED_PATHS, forwardableHeaders } from '../../src/server/gateway/limits.ts';
import { LabelBound, OTHER_LABEL } from '../../src/observability/label-bound.ts';
import { BodyBudget } from '../../src/server/body-budget.ts';
import { nestingExceeds } from '../../src/plugins/parser/openai-parser/index.ts';

test('checkProxyPath: allow-list, admin paths, non-normalised paths', () => {
  const allowed = new Set(DEFAULT_ALLOWED_PATHS);
  assert.deepEqual(checkProxyPath('/v1/chat/completions', allowed), { ok: true });
  for (const p of ['/v1/load_lora_adapter', '/reset_prefix_cache', '/v1/chat/completions/x', '/metrics']) {
    assert.equal((checkProxyPath(p, allowed) as { status: number }).status, 404, p);
  }
  for (const p of ['/v1/../sleep', '/v1/./completions', '/v1//completions', '/v1%2Fcompletions', '/v1/%2E%2E/sleep', '/v1\\completions', 'v1/completions', '/v1/..']) {
    assert.equal((checkProxyPath(p, allowed) as { status: number }).status, 400, p);
  }
  assert.deepEqual(checkProxyPath('/v1/load_lora_adapter', new Set(['/v1/load_lora_adapter'])), { ok: true });
});

test('forwardableHeaders: hop-by-hop, Connection-named, proxy credentials, pseudo-headers', () => {
  const out = forwardableHeaders({
    connection: 'keep-alive, X-Hop',
    'x-hop': '1',
    'keep-alive': 'timeout=5',
    'proxy-authorization': 'Basic x',
    te: 'trailers',
    upgrade: 'h2c',
    expect: '100-continue',
    ':authority': 'x',
    authorization: 'Bearer user-token',
    'x-request-id': 'r',
  });
  assert.deepEqual(out, { authorization: 'Bearer user-token', 'x-request-id': 'r' });
});

test('LabelBound: known values always, then maxExtra first-seen values, then other', () => {
  const b = new LabelBound(2, (v) => v === 'served');
  assert.deepEqual(['a', 'b', 'c', 'a', 'served', 'd', ''].map((v) => b.label(v)), ['a', 'b', OTHER_LABEL, 'a', 'served', OTHER_LABEL, '']);
  assert.equal(b.extraCount, 2);
});

test('BodyBudget: reservations grow within the limit and release exactly once', () => {
  const budget = new BodyBudget(100);
  const a = budget.open();
  const b = budget.open();
  assert.equal(a.grow(60), true);
  assert.equal(b.grow(50), false);
  assert.equal(b.grow(40), true);
  assert.equal(budget.used, 100);
  a.release();
  a.release();
  assert.equal(budget.used, 40);
  assert.equal(a.grow(1), false, 'a released reservation stays closed');
  b.release();
  assert.equal(budget.used, 0);
  assert.equal(new BodyBudget(0).open().grow(2 ** 40), true, '0 = unlimited');
});

test('nestingExceeds: counts brackets outside strings only', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  assert.equal(nestingExceeds(enc('[[[]]]'), 3), false);
  assert.equal(nestingExceeds(enc('[[[[]]]]'), 3), true);
  assert.equal(nestingExceeds(enc(`{"a":"${'['.repeat(1000)}"}`), 3), false);
  assert.equal(nestingExceeds(enc(`{"a":"\\"${'['.repeat(10)}"}`), 3), false, 'escaped quote keeps the string open');
});

test('nestingExceeds: the same answer as a byte-by-byte scan on random bracket, quote and backslash soup', () => {
  // The obvious scan: inside a string a backslash skips the next byte, a quote ends it.
  const reference = (bytes: Uint8Array, max: number): boolean => {
    let depth = 0;
    let inString = false;
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i] as number;
      if (inString) {
        if (c === 0x5c) i++;
        else if (c === 0x22) inString = false;
      } else if (c === 0x22) inString = true;
      else if (c === 0x5b || c === 0x7b) {
        if (++depth > max) return true;
      } else if (c === 0x5d || c === 0x7d) depth--;
    }
    return false;
  };
  const alphabet = Buffer.from('[]{}"\\\\a,');
  let seed = 12345;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let round = 0; round < 3000; round++) {
    const bytes = Buffer.alloc(1 + (next() % 60));
    for (let i = 0; i < bytes.length; i++) bytes[i] = alphabet[next() % alphabet.length] as number;
    // As a Buffer and as a plain Uint8Array view at an offset (the shapes a body arrives in).
    const plain = new Uint8Array(bytes.length + 3).subarray(3);
    plain.set(bytes);
    for (const max of [0, 1, 2, 4]) {
      assert.equal(nestingExceeds(bytes, max), reference(bytes, max), `${bytes.toString()} / ${max}`);
      assert.equal(nestingExceeds(plain, max), reference(bytes, max), `${bytes.toString()} / ${max} (Uint8Array)`);
    }
  }
});
