import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import xxhash from 'xxhash-wasm';
import { makeRequest } from '../../../../test/support/plugin-fixtures.ts';
import { cappedJson, inputCapChars, PromptHasher, userInput, userInputParts } from './prompt-hash.ts';

const { h64Raw } = await xxhash();
const enc = new TextEncoder();

/** Reference chain computed the slow, obvious way. */
function referenceHashes(model: string, text: string, blockBytes: number): bigint[] {
  const bytes = enc.encode(text);
  let prev = h64Raw(enc.encode(model), 0n);
  const out: bigint[] = [];
  for (let start = 0; start < bytes.length; start += blockBytes) {
    const block = bytes.slice(start, Math.min(start + blockBytes, bytes.length));
    const withPrev = new Uint8Array(block.length + 8);
    withPrev.set(block);
    new DataView(withPrev.buffer).setBigUint64(block.length, prev, true);
    prev = h64Raw(withPrev, 0n);
    out.push(prev);
  }
  return out;
}

describe('PromptHasher', () => {
  const hasher = new PromptHasher();

  it('uses XXH64 with seed 0 (known vector)', () => {
    assert.equal(h64Raw(enc.encode('abc'), 0n), 0x44bc2cf5ad770999n);
  });

  it('chains XXH64(block ‖ previous hash LE) from a seed over the model name', () => {
    const text = 'x'.repeat(20) + 'y'.repeat(20); // blockSizeTokens 2 → 8-byte blocks: 5 full blocks
    assert.deepEqual(hasher.hash('m', '', text, 2, 256), referenceHashes('m', text, 8));
  });

  it('hashes a trailing partial block; shorter than one block → none', () => {
    assert.equal(hasher.hash('m', '', 'a'.repeat(12), 2, 256).length, 2);
    assert.deepEqual(hasher.hash('m', '', 'a'.repeat(12), 2, 256), referenceHashes('m', 'a'.repeat(12), 8));
    assert.deepEqual(hasher.hash('m', '', 'a'.repeat(7), 2, 256), []);
    assert.deepEqual(hasher.hash('m', '', '', 2, 256), []);
  });

  it('caps at maxBlocks', () => {
    const text = 'z'.repeat(1000);
    const got = hasher.hash('m', '', text, 2, 4);
    assert.equal(got.length, 4);
    assert.deepEqual(got, referenceHashes('m', text.slice(0, 32), 8));
  });

  it('equal prefixes share block hashes; a divergence changes every later block', () => {
    const a = hasher.hash('m', '', 'AAAAAAAABBBBBBBBCCCCCCCC', 2, 256);
    const b = hasher.hash('m', '', 'AAAAAAAABBBBBBBBDDDDDDDDEEEEEEEE', 2, 256);
    const c = hasher.hash('m', '', 'XAAAAAAABBBBBBBBCCCCCCCC', 2, 256);
    assert.deepEqual(a.slice(0, 2), b.slice(0, 2));
    assert.notEqual(a[2], b[2]);
    assert.ok(a.every((x, i) => x !== c[i]));
  });

  it('model and cache_salt partition the hash space', () => {
    const text = 'p'.repeat(64);
    const base = hasher.hash('m1', '', text, 2, 256);
    assert.notDeepEqual(hasher.hash('m2', '', text, 2, 256)[0], base[0]);
    assert.notDeepEqual(hasher.hash('m1', 'tenant-a', text, 2, 256)[0], base[0]);
    assert.deepEqual(hasher.hash('m1', 'tenant-a', text, 2, 256), hasher.hash('m1tenant-a', '', text, 2, 256));
  });

  it('hashes pieces as their concatenation, stopping where encodeInto stops on it', () => {
    // blockSizeTokens 1 → 4-byte blocks; 2 blocks cap the input at 8 bytes: 'abcdef' + 'é' (2 bytes) fits, a
    // following 'g' does not; '😀' (4 bytes) at byte 6 does not fit, and nothing after it is written.
    for (const pieces of [['abcdef', 'é', 'g'], ['abcdef', '😀', 'g'], ['', 'ab', '', 'cdefgh', 'ij'], ['abc'], ['ab', 'c😀', 'de', 'é'.repeat(9)]]) {
      for (const maxBlocks of [1, 2, 3, 10]) {
        assert.deepEqual(hasher.hash('m', '', pieces, 1, maxBlocks), hasher.hash('m', '', pieces.join(''), 1, maxBlocks), `${pieces.join('|')} ${maxBlocks}`);
      }
    }
    assert.deepEqual(hasher.hash('m', '', [], 2, 256), []);
  });

  it('works on UTF-8 bytes and on inputs larger than its scratch buffer', () => {
    const text = 'é'.repeat(10_000); // 20 000 bytes
    const got = hasher.hash('m', '', text, 16, 1000);
    assert.deepEqual(got, referenceHashes('m', text, 64));
    assert.deepEqual(hasher.hash('m', '', 'short prompt!!!!', 2, 256), referenceHashes('m', 'short prompt!!!!', 8));
  });
});

describe('userInput', () => {
  it('completions: the prompt text', () => {
    assert.equal(userInput(makeRequest({ payload: { model: 'm', prompt: 'hello world' } })), 'hello world');
  });
  it('chat: JSON of {role, content} messages only (other message fields do not affect the prefix)', () => {
    const req = makeRequest({
      apiType: 'chat-completions',
      payload: { model: 'm', messages: [{ role: 'system', content: 'be brief', name: 'x' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
    });
    assert.equal(userInput(req), '[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}]');
  });
  it('responses: instructions and tools (when present) before input', () => {
    const req = makeRequest({ apiType: 'responses', payload: { model: 'm', input: 'q', instructions: 'sys' } });
    assert.equal(userInput(req), '[{"instructions":"sys"},{"input":"q"}]');
  });
  it('conversations and embeddings: JSON of items / input', () => {
    assert.equal(userInput(makeRequest({ apiType: 'conversations', payload: { items: [{ a: 1 }] } })), '[{"a":1}]');
    assert.equal(userInput(makeRequest({ apiType: 'embeddings', payload: { input: 'text' } })), '"text"');
  });
});

/** For every cap: `capped(cap)` is a prefix of `full`, at least the cap long (or whole), never ending in a cut pair. */
function assertCappedPrefixes(full: string, capped: (cap: number) => string): void {
  for (let cap = 0; cap <= full.length + 2; cap++) {
    const got = capped(cap);
    assert.ok(full.startsWith(got), `cap ${cap}: ${got} is a prefix of ${full}`);
    assert.ok(got.length >= Math.min(cap, full.length), `cap ${cap}: at least the cap (${got.length})`);
    const lastUnit = got.charCodeAt(got.length - 1);
    assert.ok(!(lastUnit >= 0xd800 && lastUnit <= 0xdbff), `cap ${cap}: no cut surrogate pair`);
  }
}

describe('capped user input', () => {
  const hasher = new PromptHasher();
  const values: unknown[] = [
    'plain',
    'esc"a\\pe\n\u0001 and é and 😀 pairs 😀😀',
    [1, 'two', null, true, { a: [1.5, -0, 1e21] }, undefined, () => 1],
    { role: 'user', content: [{ type: 'text', text: 'x'.repeat(50) }, { type: 'image_url', image_url: { url: 'u' } }], skip: undefined, f: () => 1 },
    { nested: { deeper: { deepest: ['😀'.repeat(20), 'tail'] } }, n: 3, d: new Date(0) },
    [{ role: 'system', content: 'sys' }, { content: null }],
    '',
    [],
    {},
  ];

  it('is JSON.stringify when uncapped, and for every cap a prefix of it, never shorter than the cap, never a cut pair', () => {
    for (const v of values) {
      const full = JSON.stringify(v);
      assert.equal(cappedJson(v, Number.POSITIVE_INFINITY), full);
      assertCappedPrefixes(full, (cap) => cappedJson(v, cap));
    }
  });

  it('a string is quoted exactly as JSON.stringify quotes it, for every UTF-16 code unit and for pairs', () => {
    for (let c = 0; c <= 0xffff; c++) {
      const v = `a${String.fromCharCode(c)}b`;
      if (cappedJson(v, 1e9) !== JSON.stringify(v)) assert.fail(`code unit ${c.toString(16)}: ${cappedJson(v, 1e9)} vs ${JSON.stringify(v)}`);
    }
    for (const v of ['😀', 'x😀y', '\ud83d', '\ude00x', '\u2028\u2029', '\u007f', 'é', '']) assert.equal(cappedJson(v, 1e9), JSON.stringify(v));
  });

  it('chat: written straight from the messages, it is the JSON of their {role, content} objects, capped as cappedJson caps', () => {
    const asObjects = (messages: unknown[]) =>
      messages.map((m) => {
        const msg = (m ?? {}) as { role?: unknown; content?: unknown };
        return typeof msg.role === 'string' ? { role: msg.role, content: msg.content ?? null } : { content: msg.content ?? null };
      });
    const sets: unknown[][] = [
      [],
      [{ role: 'system', content: 'sys "quoted" \\ é 😀' }, { role: 'user', content: 'hi', name: 'x' }],
      [{ role: 'user' }, { content: 'no role' }, null, 7, 'str', { role: 3, content: 'numeric role' }],
      [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'u' }, skip: undefined }] }],
      [{ role: 'user', content: { plain: true } }, { role: 'tool', content: 1.5 }, { role: 'tool', content: false }],
      [{ role: 'user', content: new Date(0) }, { role: 'user', content: 'after a non-plain object' }],
      [{ role: 'user', content: () => 1 }, { role: 'assistant', content: 'after a function' }],
      [{ role: '😀'.repeat(5), content: '😀'.repeat(30) }],
    ];
    for (const messages of sets) {
      const req = makeRequest({ apiType: 'chat-completions', payload: { model: 'm', messages } });
      const full = JSON.stringify(asObjects(messages));
      assert.equal(userInput(req), full);
      assertCappedPrefixes(full, (cap) => userInput(req, cap));
      for (let maxBlocks = 1; maxBlocks <= full.length / 4 + 2; maxBlocks++) {
        const capped = userInput(req, inputCapChars(1, maxBlocks));
        assert.deepEqual(hasher.hash('m', '', capped, 1, maxBlocks), hasher.hash('m', '', full, 1, maxBlocks), `${maxBlocks} blocks: same hashes`);
        // In pieces (what the producer hashes), byte for byte the joined text, cut where the joined text is cut.
        const pieces = userInputParts(req, inputCapChars(1, maxBlocks));
        assert.equal(pieces.join(''), capped);
        assert.deepEqual(hasher.hash('m', '', pieces, 1, maxBlocks), hasher.hash('m', '', full, 1, maxBlocks), `${maxBlocks} blocks in pieces`);
      }
    }
  });

  it('a capped input hashes exactly like the whole one, and a long prompt is not built past the cap', () => {
    const long = 'word '.repeat(60_000) + 'é😀'.repeat(1000); // ≈ 300 KB
    for (const apiType of ['chat-completions', 'responses', 'conversations', 'embeddings'] as const) {
      const payload =
        apiType === 'chat-completions'
          ? { model: 'm', messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: long }] }
          : apiType === 'responses'
            ? { model: 'm', instructions: 'sys', input: long }
            : apiType === 'conversations'
              ? { items: [{ type: 'message', content: long }] }
              : { input: [long, long] };
      const req = makeRequest({ apiType, payload });
      for (const [blockSizeTokens, maxBlocks] of [
        [16, 256],
        [3, 7],
        [64, 10_000],
      ] as const) {
        const cap = inputCapChars(blockSizeTokens, maxBlocks);
        const capped = userInput(req, cap);
        assert.ok(capped.length <= cap + 64 || capped === userInput(req), `${apiType}: built ${capped.length} for a cap of ${cap}`);
        assert.deepEqual(hasher.hash('m', '', capped, blockSizeTokens, maxBlocks), hasher.hash('m', '', userInput(req), blockSizeTokens, maxBlocks), `${apiType} ${blockSizeTokens}×${maxBlocks}`);
      }
    }
  });
});
