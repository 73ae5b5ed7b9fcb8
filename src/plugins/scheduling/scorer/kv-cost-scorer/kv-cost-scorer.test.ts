import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PrefillLoadKey, PrefixCacheMatchInfoKey } from '../../../../framework/attributes.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest } from '../../../../../test/support/plugin-fixtures.ts';
import { KV_COST_SCORER_TYPE, kvCost, KvCostScorer, kvCostScorerFactory, type KvCostScorerConfig } from './index.ts';

/** A candidate with `match` of 10 blocks (160 tokens) cached, `queued` uncached and `active` prompt tokens in flight. */
const cand = (name: string, match: number | undefined, queued = 0, active = 0) =>
  makeCandidate(makeEndpoint(name), {
    ...(match === undefined ? {} : { [PrefixCacheMatchInfoKey]: { matchBlocks: match, totalBlocks: 10, blockSizeTokens: 16 } }),
    [PrefillLoadKey]: { uncachedTokens: queued, activeTokens: active, requests: 1 },
  });
const DEFAULTS: KvCostScorerConfig = { overlapScoreWeight: 1, blockSize: 16 };

describe('kv-cost-scorer', () => {
  const costs: ReadonlyArray<{ name: string; c: ReturnType<typeof cand>; config?: Partial<KvCostScorerConfig>; want: number }> = [
    { name: 'idle, full miss: 10 prefill + 10 active blocks', c: cand('a', 0), want: 20 },
    { name: 'idle, full hit: 0 prefill + 10 active', c: cand('a', 10), want: 10 },
    { name: 'half hit, 160 queued uncached tokens: (10 + 10 − 5) + 10', c: cand('a', 5, 160), want: 25 },
    { name: '320 active tokens add 20 blocks', c: cand('a', 10, 0, 320), want: 30 },
    { name: 'weight 2 doubles the prefill part', c: cand('a', 5), config: { overlapScoreWeight: 2 }, want: 20 },
    { name: 'weight 0: active blocks only', c: cand('a', 0, 1600, 160), config: { overlapScoreWeight: 0 }, want: 20 },
    { name: 'no match info: prompt from the body, blockSize parameter', c: cand('a', undefined), config: { blockSize: 8 }, want: 25 + 25 },
  ];
  for (const t of costs) {
    it(`cost: ${t.name}`, () => assert.equal(kvCost(t.c, 200, { ...DEFAULTS, ...t.config }), t.want));
  }

  it('scores 1 − cost / max cost: cheaper is better, a warm idle endpoint beats a cold one and a busy warm one', () => {
    const s = new KvCostScorer('k', DEFAULTS).score(new Map(), makeRequest({ requestSizeBytes: 640 }), [cand('warm', 10), cand('cold', 0), cand('busy', 10, 640, 480)]);
    // costs 10, 20, (40 + 10 − 10) + 40 = 80
    assert.deepEqual(Array.from(s), [1 - 10 / 80, 1 - 20 / 80, 0]);
  });

  it('all costs 0 → all 1', () => {
    const s = new KvCostScorer('k', { overlapScoreWeight: 0, blockSize: 16 }).score(new Map(), makeRequest(), []);
    assert.equal(s.length, 0);
  });

  it('declares what it reads (the prefill-load producer is auto-added)', () => {
    assert.deepEqual(new KvCostScorer('k', DEFAULTS).consumes, [PrefixCacheMatchInfoKey, PrefillLoadKey]);
  });

  describe('factory', () => {
    it('defaults from {}', () => {
      const k = kvCostScorerFactory('k', {}, makeHandle()) as KvCostScorer;
      assert.deepEqual(k.typedName, { type: KV_COST_SCORER_TYPE, name: 'k' });
      assert.deepEqual(k.config, DEFAULTS);
    });
    it('accepts every parameter', () => {
      assert.deepEqual((kvCostScorerFactory('k', { overlapScoreWeight: 0.5, blockSize: 64 }, makeHandle()) as KvCostScorer).config, { overlapScoreWeight: 0.5, blockSize: 64 });
    });
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['negative weight', { overlapScoreWeight: -1 }, /parameters\.overlapScoreWeight: expected a number >= 0/],
      ['fractional block size', { blockSize: 1.5 }, /parameters\.blockSize: expected a positive integer/],
      ['zero block size', { blockSize: 0 }, /parameters\.blockSize: expected a positive integer/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => kvCostScorerFactory('k', params, makeHandle())), re));
    }
  });
});
