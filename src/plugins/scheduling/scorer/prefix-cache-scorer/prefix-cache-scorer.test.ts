import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PrefixCacheMatchInfoKey } from '../../../../framework/attributes.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { PREFIX_CACHE_SCORER_TYPE, PrefixCacheScorer, prefixCacheScorerFactory } from './index.ts';

const withMatch = (name: string, match?: { matchBlocks: number; totalBlocks: number }) =>
  makeCandidate(makeEndpoint(name), match === undefined ? {} : { [PrefixCacheMatchInfoKey]: { ...match, blockSizeTokens: 16 } });

describe('prefix-cache-scorer', () => {
  const cases: ReadonlyArray<{ name: string; matches: Array<{ matchBlocks: number; totalBlocks: number }>; want: number[] }> = [
    {
      name: 'matchBlocks / totalBlocks',
      matches: [
        { matchBlocks: 4, totalBlocks: 4 },
        { matchBlocks: 1, totalBlocks: 4 },
        { matchBlocks: 0, totalBlocks: 4 },
      ],
      want: [1, 0.25, 0],
    },
    { name: 'prompt shorter than a block (total 0) → 0', matches: [{ matchBlocks: 0, totalBlocks: 0 }], want: [0] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const candidates = c.matches.map((m, i) => withMatch(`e${i}`, m));
      assert.deepEqual(Array.from(new PrefixCacheScorer().score(new Map(), makeRequest(), candidates)), c.want);
    });
  }

  it('missing attribute → 0 and one error log per cycle', () => {
    const handle = makeHandle();
    const scorer = prefixCacheScorerFactory('p', {}, handle) as PrefixCacheScorer;
    const scores = scorer.score(new Map(), makeRequest(), [withMatch('a'), withMatch('b', { matchBlocks: 1, totalBlocks: 2 }), withMatch('c')]);
    assert.deepEqual(Array.from(scores), [0, 0.5, 0]);
    const errors = handle.logger.messages('error');
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /prefix cache match info missing.*"missing":2/);
  });

  it('declares that it consumes PrefixCacheMatchInfoKey (so the producer is auto-added)', () => {
    assert.deepEqual(new PrefixCacheScorer().consumes, [PrefixCacheMatchInfoKey]);
    assert.equal(new PrefixCacheScorer().category, 'affinity');
  });

  describe('factory', () => {
    it('defaults from {} without warnings', () => {
      const handle = makeHandle();
      assert.deepEqual(prefixCacheScorerFactory('p', {}, handle).typedName, { type: PREFIX_CACHE_SCORER_TYPE, name: 'p' });
      assert.equal(handle.logger.messages('warn').length, 0);
    });

    const legacy: ReadonlyArray<Record<string, unknown>> = [
      { blockSize: 64, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250 }, // upstream prefix-aware guide
      { hashBlockSize: 5, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250 }, // older published configs
      { autoTune: false, blockSizeTokens: 16, maxPrefixTokensToMatch: 4096 },
    ];
    for (const params of legacy) {
      it(`accepts legacy indexing parameters ${Object.keys(params).join(', ')} with a deprecation warning`, () => {
        const handle = makeHandle();
        prefixCacheScorerFactory('p', params, handle);
        const warns = handle.logger.messages('warn');
        assert.equal(warns.length, 1);
        assert.match(warns[0] ?? '', /deprecated.*no effect.*approx-prefix-cache-producer/);
        for (const key of Object.keys(params)) assert.match(warns[0] ?? '', new RegExp(key));
      });
    }

    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['wrongly typed legacy key', { blockSize: 'big' }, /parameters\.blockSize/],
      ['negative legacy value', { lruCapacityPerServer: -1 }, /parameters\.lruCapacityPerServer: expected an integer >= 0/],
      ['non-boolean autoTune', { autoTune: 'yes' }, /parameters\.autoTune/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => prefixCacheScorerFactory('p', params, makeHandle())), re));
    }
    // Accepted as upstream accepts them (unknown keys ignored, values ≤ 0 or null → the default), with a warning.
    const lenient: ReadonlyArray<[string, unknown, string]> = [
      ['unknown key', { matchThreshold: 1 }, 'matchThreshold'],
    ];
    for (const [name, params, field] of lenient) {
      it(`accepts ${name} leniently, warning on the field`, () => assert.deepEqual(lenientFields(() => prefixCacheScorerFactory('p', params, makeHandle())), [field]));
    }
  });
});
