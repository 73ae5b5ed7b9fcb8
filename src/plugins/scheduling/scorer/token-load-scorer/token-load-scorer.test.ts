import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InFlightLoadKey } from '../../../../framework/attributes.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { DEFAULT_QUEUE_THRESHOLD_TOKENS, TOKEN_LOAD_SCORER_TYPE, TokenLoadScorer, tokenLoadScorerFactory } from './index.ts';

const withLoad = (name: string, tokens: number | undefined) =>
  makeCandidate(makeEndpoint(name), tokens === undefined ? {} : { [InFlightLoadKey]: { tokens, requests: 1 } });

describe('token-load-scorer', () => {
  const cases: ReadonlyArray<{ name: string; tokens: Array<number | undefined>; want: number[] }> = [
    { name: '1 − min(tokens, T) / T', tokens: [0, 250, 500, 1000], want: [1, 0.75, 0.5, 0] },
    { name: 'above the threshold → 0', tokens: [5000], want: [0] },
    { name: 'no attribute → 1 (no known load)', tokens: [undefined], want: [1] },
    { name: 'negative load → 1', tokens: [-3], want: [1] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const candidates = c.tokens.map((t, i) => withLoad(`e${i}`, t));
      const scores = new TokenLoadScorer('t', 1000).score(new Map(), makeRequest(), candidates);
      assert.deepEqual(Array.from(scores), c.want);
    });
  }

  it('declares that it consumes InFlightLoadKey (so the producer is auto-added)', () => {
    assert.deepEqual(new TokenLoadScorer().consumes, [InFlightLoadKey]);
  });

  describe('factory', () => {
    it('defaults from {}', () => {
      const p = tokenLoadScorerFactory('t', {}, makeHandle()) as TokenLoadScorer;
      assert.deepEqual(p.typedName, { type: TOKEN_LOAD_SCORER_TYPE, name: 't' });
      assert.equal(p.queueThresholdTokens, DEFAULT_QUEUE_THRESHOLD_TOKENS);
    });
    it('accepts queueThresholdTokens', () => {
      assert.equal((tokenLoadScorerFactory('t', { queueThresholdTokens: 2048 }, makeHandle()) as TokenLoadScorer).queueThresholdTokens, 2048);
    });
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['fractional', { queueThresholdTokens: 1.5 }, /parameters\.queueThresholdTokens: expected a positive integer/],
      ['string', { queueThresholdTokens: '100' }, /parameters\.queueThresholdTokens: expected a positive integer/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => tokenLoadScorerFactory('t', params, makeHandle())), re));
    }
    // Accepted as upstream accepts them (unknown keys ignored, values ≤ 0 or null → the default), with a warning.
    const lenient: ReadonlyArray<[string, unknown, string]> = [
      ['zero', { queueThresholdTokens: 0 }, 'queueThresholdTokens'],
      ['negative', { queueThresholdTokens: -5 }, 'queueThresholdTokens'],
      ['unknown key', { threshold: 5 }, 'threshold'],
    ];
    for (const [name, params, field] of lenient) {
      it(`accepts ${name} leniently, warning on the field`, () => assert.deepEqual(lenientFields(() => tokenLoadScorerFactory('t', params, makeHandle())), [field]));
    }
  });
});
