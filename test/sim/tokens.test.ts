import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { blockHashes, rootHash } from '../../src/sim/block-hash.ts';
import { EchoOutputText, RandomOutputText } from '../../src/sim/output-text.ts';
import { sampleOutputLength } from '../../src/sim/output-length.ts';
import { SeededRandom } from '../../src/sim/rng.ts';
import { createTokenizer, fnv1a32, renderChatPrompt } from '../../src/sim/tokenizer.ts';

describe('tokenizers', () => {
  const chars4 = createTokenizer('chars4');
  const words = createTokenizer('words');

  it('chars4: ⌈bytes / 4⌉ tokens, id = FNV-1a-32 of the piece', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => chars4.encode(s).length === Math.ceil(Buffer.byteLength(s) / 4)));
    assert.deepEqual([...chars4.encode('abcdef')], [fnv1a32(Buffer.from('abcd')), fnv1a32(Buffer.from('ef'))]);
    assert.equal(fnv1a32(Buffer.from('')), 0x811c9dc5);
    assert.equal(fnv1a32(Buffer.from('a')), 0xe40c292c);
  });

  it('chars3.2: pieces of 3, 3, 3, 3, 4 bytes (16 bytes per 5 tokens); the token-producer\'s sim port agrees', async () => {
    const code = createTokenizer('chars3.2');
    assert.deepEqual([...code.encode('abcdefghijklmnopqr')], ['abc', 'def', 'ghi', 'jkl', 'mnop', 'qr'].map((p) => fnv1a32(Buffer.from(p))));
    const text = 'x'.repeat(8192);
    assert.equal(code.encode(text).length, 2560, 'a 2,048-token chars4 prompt is 2,560 tokens (160 blocks, not 128)');
    const { simTokenize } = await import('../../src/plugins/requestcontrol/token-producer/sim-tokenizer.ts');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const port = simTokenize({ apiType: 'completions', payload: { model: 'm', prompt: s }, stream: false }, 'chars3.2');
        return port !== undefined && Buffer.from(Uint32Array.from(port).buffer).equals(Buffer.from(code.encode(s).slice().buffer));
      }),
    );
  });

  it('words: word runs and punctuation keep their trailing whitespace', () => {
    assert.equal(words.encode('Hello, world! ok').length, 5);
  });

  it('generated text re-tokenizes to exactly the generated count with either tokenizer', () => {
    const out = new RandomOutputText(5);
    let text = '';
    for (let i = 0; i < 100; i++) text += out.tokenText(i);
    assert.equal(chars4.encode(text).length, 100);
    assert.equal(words.encode(text).length, 100);
    assert.deepEqual([...chars4.encode(text)].slice(0, 3), [out.tokenId(0), out.tokenId(1), out.tokenId(2)]);
    assert.equal(JSON.parse(out.tokenJson(7)), out.tokenText(7));
  });

  it('echo output splits multi-byte characters without breaking them', () => {
    const echo = new EchoOutputText('héllo wörld ✓');
    let text = '';
    for (let i = 0; i < echo.maxTokens; i++) text += echo.tokenText(i);
    assert.equal(text, 'héllo wörld ✓');
  });

  it('chat rendering is prefix-stable', () => {
    const one = renderChatPrompt([{ role: 'system', content: 'be brief' }]);
    const two = renderChatPrompt([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
    assert.ok(two.startsWith(one));
  });
});

describe('block hashes', () => {
  it('chain over full blocks, seeded by namespace', () => {
    const ids = Array.from({ length: 40 }, (_, i) => i * 7919);
    const root = rootHash('0', 'model');
    const h = blockHashes(root, ids, 16);
    assert.equal(h.length, 2);
    assert.deepEqual(blockHashes(root, ids.slice(0, 32), 16), h);
    assert.notDeepEqual(blockHashes(rootHash('0', 'lora-a'), ids, 16), h);
    const changedFirst = [...ids];
    changedFirst[0] = 1;
    const h2 = blockHashes(root, changedFirst, 16);
    assert.notEqual(h2[0], h[0]);
    assert.notEqual(h2[1], h[1], 'a change propagates down the chain');
    for (const x of h) assert.ok(Number.isSafeInteger(x) && x >= 0);
  });
});

describe('output length (§2.4)', () => {
  const rng = new SeededRandom(3);
  it('ignore_eos and fixed mode generate exactly max_tokens', () => {
    assert.deepEqual(sampleOutputLength(rng, 'random', 77, true, 1000), { tokens: 77, finishReason: 'length' });
    assert.deepEqual(sampleOutputLength(rng, 'fixed', 9, false, 1000), { tokens: 9, finishReason: 'length' });
  });
  it('with max_tokens: within [1, max], max itself about 15 % of the time, finish length iff max', () => {
    let atMax = 0;
    for (let i = 0; i < 4000; i++) {
      const r = sampleOutputLength(rng, 'random', 200, false, 10_000);
      assert.ok(r.tokens >= 1 && r.tokens <= 200);
      assert.equal(r.finishReason === 'length', r.tokens === 200);
      if (r.tokens === 200) atMax++;
    }
    assert.ok(atMax > 0.12 * 4000 && atMax < 0.18 * 4000, `${atMax}`);
  });
  it('without a limit: about 40 tokens, bounded by the context room', () => {
    const xs = Array.from({ length: 2000 }, () => sampleOutputLength(rng, 'random', undefined, false, 10_000).tokens);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean > 36 && mean < 46, `${mean}`);
    for (let i = 0; i < 100; i++) assert.ok(sampleOutputLength(rng, 'random', undefined, false, 5).tokens <= 5);
  });
});
