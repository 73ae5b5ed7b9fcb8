import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { createRandomSource } from '../../../util/random.ts';
import { RequestKeyer } from './request-keys.ts';

describe('RequestKeyer', () => {
  it('gives distinct keys to blocks that differ by one token, a swap, a high bit, or their parent', () => {
    const B = 16;
    const keyer = new RequestKeyer(B, 'seed');
    const random = createRandomSource(11);
    const base = Uint32Array.from({ length: B }, () => Math.floor(random.next() * 200_000));
    const variants: Uint32Array[] = [base];
    for (let i = 0; i < B; i++) {
      for (const delta of [1, 2, 1 << 16, 1 << 31, 0x9e3779b9]) {
        const v = base.slice();
        v[i] = ((v[i] as number) ^ delta) >>> 0;
        variants.push(v);
      }
      for (let j = i + 1; j < B; j++) {
        if (base[i] === base[j]) continue;
        const v = base.slice();
        [v[i], v[j]] = [v[j] as number, v[i] as number];
        variants.push(v);
      }
    }
    for (let k = 0; k < 20_000; k++) variants.push(Uint32Array.from({ length: B }, () => Math.floor(random.next() * 2 ** 32)));
    const seen = new Set<string>();
    const out = new Uint32Array(2);
    for (const parent of [[0, 0], [0, 1], [1, 0], [0x80000000, 0]] as const) {
      for (const v of variants) {
        keyer.next(parent[0], parent[1], v, 0, undefined, out);
        const key = `${out[0]}:${out[1]}`;
        assert.equal(seen.has(key), false, `collision for parent ${parent} block ${v.join(',')}`);
        seen.add(key);
      }
    }
    assert.equal(seen.size, 4 * variants.length);
  });

  it('hashes a partial-width block (odd length) and the whole-prompt loop the same way as block after block', () => {
    const keyer = new RequestKeyer(5);
    const tokens = Uint32Array.from({ length: 23 }, (_, i) => i * 7919);
    const keys = keyer.keys('', tokens);
    assert.equal(keys.n, 4);
    const root = keyer.root('');
    let ph = root[0] as number;
    let pl = root[1] as number;
    const out = new Uint32Array(2);
    for (let b = 0; b < 4; b++) {
      keyer.next(ph, pl, tokens, b * 5, undefined, out);
      [ph, pl] = [out[0] as number, out[1] as number];
      assert.deepEqual([keys.hi[b], keys.lo[b]], [ph, pl], `block ${b}`);
    }
  });
});
