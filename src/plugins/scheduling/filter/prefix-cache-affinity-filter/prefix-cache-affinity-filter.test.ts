import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { LatencyPredictionInfoKey, PrefillLoadKey, PrefixCacheMatchInfoKey } from '../../../../framework/attributes.ts';
import type { Candidate } from '../../../../framework/scheduling.ts';
import { Xoshiro128StarStar } from '../../../../util/random.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, names, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import {
  PREFIX_CACHE_AFFINITY_FILTER_TYPE,
  PrefixCacheAffinityFilter,
  prefixCacheAffinityFilterFactory,
  type PrefixCacheAffinityFilterConfig,
} from './index.ts';

function cand(name: string, prefixScore: number | undefined, ttftMs?: number): Candidate {
  const attrs: Record<string, unknown> = {};
  if (prefixScore !== undefined) attrs[PrefixCacheMatchInfoKey] = { matchBlocks: prefixScore * 100, totalBlocks: 100, blockSizeTokens: 16 };
  if (ttftMs !== undefined) {
    attrs[LatencyPredictionInfoKey] = {
      ttftValid: true,
      tpotValid: true,
      ttftHeadroomMs: 0,
      tpotHeadroomMs: 0,
      ttftMs,
      tpotMs: 10,
      dispatchedRequestCount: 0,
    };
  }
  return makeCandidate(makeEndpoint(name), attrs);
}

const NO_EXPLORE: PrefixCacheAffinityFilterConfig = { affinityThreshold: 0.8, explorationProbability: 0, maxTTFTPenaltyMs: 5000, peakPrefillThroughput: 0 };

function withPrediction(c: Candidate, ttftMs: number): Candidate {
  const predicted = cand('x', undefined, ttftMs).attributes.get(LatencyPredictionInfoKey);
  c.attributes.set(LatencyPredictionInfoKey, predicted);
  return c;
}

/** A candidate with a 144-block (2304-token) prompt match and `queued` uncached tokens in flight there. */
function loaded(name: string, matchBlocks: number, queued: number): Candidate {
  return makeCandidate(makeEndpoint(name), {
    [PrefixCacheMatchInfoKey]: { matchBlocks, totalBlocks: 144, blockSizeTokens: 16 },
    [PrefillLoadKey]: { uncachedTokens: queued, activeTokens: queued, requests: queued > 0 ? 1 : 0 },
  });
}

describe('prefix-cache-affinity-filter', () => {
  const cases: Array<{ name: string; config?: Partial<PrefixCacheAffinityFilterConfig>; in: Candidate[]; want: string[] }> = [
    { name: 'keeps only sticky endpoints (score ≥ threshold)', in: [cand('a', 0.9), cand('b', 0.8), cand('c', 0.5)], want: ['a', 'b'] },
    { name: 'no sticky endpoint → all kept', in: [cand('a', 0.5), cand('b', 0)], want: ['a', 'b'] },
    { name: 'no prefix info at all → all kept', in: [cand('a', undefined), cand('b', undefined)], want: ['a', 'b'] },
    { name: 'single candidate → unchanged', in: [cand('a', 0)], want: ['a'] },
    { name: 'threshold 0 disables the filter', config: { affinityThreshold: 0 }, in: [cand('a', 1), cand('b', 0)], want: ['a', 'b'] },
    { name: 'no predictions: TTFT gate inert, stickiness holds', in: [cand('a', 1), cand('b', 0)], want: ['a'] },
    {
      name: 'TTFT gate: sticky much slower than non-sticky → all kept',
      in: [cand('a', 1, 9000), cand('b', 0, 1000)],
      want: ['a', 'b'],
    },
    {
      name: 'TTFT gate: penalty within bound → sticky',
      in: [cand('a', 1, 5500), cand('b', 0, 1000)],
      want: ['a'],
    },
    {
      name: 'TTFT gate: sticky without prediction counts as +∞ → all kept',
      in: [cand('a', 1), cand('b', 0, 1000)],
      want: ['a', 'b'],
    },
    {
      name: 'TTFT gate off (maxTTFTPenaltyMs 0) → always sticky',
      config: { maxTTFTPenaltyMs: 0 },
      in: [cand('a', 1, 90_000), cand('b', 0, 1)],
      want: ['a'],
    },
  ];
  // Sticky until saturated: 10k tok/s, penalty 1 s. Own uncached tokens: 0 on a full hit, 2304 on a miss.
  const GATE = { peakPrefillThroughput: 10_000, maxTTFTPenaltyMs: 1000 };
  cases.push(
    { name: 'estimated TTFT: idle holder → sticky', config: GATE, in: [loaded('a', 144, 0), loaded('b', 0, 0)], want: ['a'] },
    {
      name: 'estimated TTFT: holder 9k tokens queued (0.9 s) vs 0.23 s elsewhere → within penalty, sticky',
      config: GATE,
      in: [loaded('a', 144, 9000), loaded('b', 0, 0)],
      want: ['a'],
    },
    {
      name: 'estimated TTFT: holder 14k tokens queued (1.4 s) vs 0.23 s elsewhere → saturated, all kept',
      config: GATE,
      in: [loaded('a', 144, 14_000), loaded('b', 0, 0)],
      want: ['a', 'b'],
    },
    {
      name: 'estimated TTFT: the best holder decides (one of two holders idle) → sticky',
      config: GATE,
      in: [loaded('a', 144, 50_000), loaded('c', 144, 0), loaded('b', 0, 0)],
      want: ['a', 'c'],
    },
    {
      name: 'estimated TTFT: every other endpoint busier → sticky',
      config: GATE,
      in: [loaded('a', 144, 14_000), loaded('b', 0, 20_000)],
      want: ['a'],
    },
    {
      name: 'a latency prediction wins over the estimate (50k tokens queued, predicted 100 ms)',
      config: GATE,
      in: [withPrediction(loaded('a', 144, 50_000), 100), loaded('b', 0, 0)],
      want: ['a'],
    },
  );
  for (const c of cases) {
    it(c.name, () => {
      const f = new PrefixCacheAffinityFilter('f', new Xoshiro128StarStar(1), { ...NO_EXPLORE, ...c.config });
      assert.deepEqual(names(f.filter(new Map(), makeRequest(), c.in)), c.want);
    });
  }

  it('explores (keeps everything) with probability explorationProbability', () => {
    const f = new PrefixCacheAffinityFilter('f', new Xoshiro128StarStar(2), { ...NO_EXPLORE, explorationProbability: 0.25 });
    const input = [cand('a', 1), cand('b', 0)];
    let kept = 0;
    const runs = 8000;
    for (let i = 0; i < runs; i++) if (f.filter(new Map(), makeRequest(), input).length === 2) kept++;
    assert.ok(Math.abs(kept / runs - 0.25) < 0.02, `explored ${kept / runs}`);
  });

  it('declares the attributes it reads', () => {
    const f = new PrefixCacheAffinityFilter('f', new Xoshiro128StarStar(1), NO_EXPLORE);
    assert.deepEqual(f.consumes, [PrefixCacheMatchInfoKey, LatencyPredictionInfoKey]);
    const gated = new PrefixCacheAffinityFilter('f', new Xoshiro128StarStar(1), { ...NO_EXPLORE, peakPrefillThroughput: 9000 });
    assert.deepEqual(gated.consumes, [PrefixCacheMatchInfoKey, LatencyPredictionInfoKey, PrefillLoadKey]);
  });

  describe('factory', () => {
    it('defaults from {}', () => {
      const f = prefixCacheAffinityFilterFactory('f', {}, makeHandle()) as PrefixCacheAffinityFilter;
      assert.deepEqual(f.typedName, { type: PREFIX_CACHE_AFFINITY_FILTER_TYPE, name: 'f' });
      assert.deepEqual(f.config, { affinityThreshold: 0.8, explorationProbability: 0.01, maxTTFTPenaltyMs: 5000, peakPrefillThroughput: 0 });
    });
    it('accepts every parameter', () => {
      const params = { affinityThreshold: 0.99, explorationProbability: 0, maxTTFTPenaltyMs: 0, peakPrefillThroughput: 9400 };
      assert.deepEqual((prefixCacheAffinityFilterFactory('f', params, makeHandle()) as PrefixCacheAffinityFilter).config, params);
    });
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['threshold above 1', { affinityThreshold: 1.2 }, /parameters\.affinityThreshold: expected a number in \[0, 1\]/],
      ['negative threshold', { affinityThreshold: -0.1 }, /parameters\.affinityThreshold: expected a number in \[0, 1\]/],
      ['probability above 1', { explorationProbability: 2 }, /parameters\.explorationProbability: expected a probability in \[0, 1\]/],
      ['negative probability', { explorationProbability: -0.5 }, /parameters\.explorationProbability: expected a probability/],
      ['negative penalty', { maxTTFTPenaltyMs: -1 }, /parameters\.maxTTFTPenaltyMs: expected a number of milliseconds >= 0/],
      ['string penalty', { maxTTFTPenaltyMs: '5s' }, /parameters\.maxTTFTPenaltyMs/],
      ['negative throughput', { peakPrefillThroughput: -1 }, /parameters\.peakPrefillThroughput: expected a number of tokens per second >= 0/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => prefixCacheAffinityFilterFactory('f', params, makeHandle())), re));
    }
    // Accepted as upstream accepts them (unknown keys ignored, values ≤ 0 or null → the default), with a warning.
    const lenient: ReadonlyArray<[string, unknown, string]> = [
      ['upstream pre-rename key tau', { tau: 0.9 }, 'tau'],
    ];
    for (const [name, params, field] of lenient) {
      it(`accepts ${name} leniently, warning on the field`, () => assert.deepEqual(lenientFields(() => prefixCacheAffinityFilterFactory('f', params, makeHandle())), [field]));
    }
  });
});
