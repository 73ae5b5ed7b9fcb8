import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PrefixCacheMatchInfoKey } from '../../../../framework/attributes.ts';
import type { Candidate } from '../../../../framework/scheduling.ts';
import { factoryError, lenientFields, makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult } from '../../../../../test/support/plugin-fixtures.ts';
import { DEFAULT_LRU_SIZE, NO_HIT_LRU_SCORER_TYPE, NoHitLruScorer, noHitLruScorerFactory } from './index.ts';

const match = (matchBlocks: number) => ({ [PrefixCacheMatchInfoKey]: { matchBlocks, totalBlocks: 8, blockSizeTokens: 16 } });
const fleet = (names: readonly string[], hits: Record<string, number> = {}): Candidate[] =>
  names.map((n) => makeCandidate(makeEndpoint(n), hits[n] === undefined ? match(0) : match(hits[n])));

/** Scores one request over `names`, then routes it to `chosen` (preRequest), as the director would. */
function route(s: NoHitLruScorer, names: readonly string[], chosen: string, hits: Record<string, number> = {}): number[] {
  const request = makeRequest();
  const candidates = fleet(names, hits);
  const scores = Array.from(s.score(new Map(), request, candidates));
  s.preRequest(request, makeSchedulingResult({ default: [candidates.find((c) => c.endpoint.metadata.name === chosen) as Candidate] }));
  return scores;
}

describe('no-hit-lru-scorer', () => {
  const cases: ReadonlyArray<{ name: string; history: string[]; candidates: string[]; hits?: Record<string, number>; want: number[] }> = [
    { name: 'no history: candidate order, 1 → 0', history: [], candidates: ['a', 'b', 'c'], want: [1, 0.5, 0] },
    { name: 'never-used endpoints first, then least recently used', history: ['a', 'b'], candidates: ['a', 'b', 'c'], want: [0.5, 0, 1] },
    { name: 'the oldest cold target outranks the newest', history: ['c', 'a', 'b'], candidates: ['a', 'b', 'c'], want: [0.5, 0, 1] },
    { name: 'a repeated target moves to most recent', history: ['a', 'b', 'a'], candidates: ['a', 'b'], want: [0, 1] },
    { name: 'one candidate scores 1', history: ['a'], candidates: ['a'], want: [1] },
    { name: 'a hit anywhere: neutral 0.5 everywhere', history: ['a'], candidates: ['a', 'b', 'c'], hits: { c: 2 }, want: [0.5, 0.5, 0.5] },
    { name: 'LRU entries of endpoints that are not candidates do not shift ranks', history: ['x', 'y', 'a'], candidates: ['a', 'b'], want: [0, 1] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = new NoHitLruScorer();
      for (const h of c.history) route(s, [h], h);
      assert.deepEqual(Array.from(s.score(new Map(), makeRequest(), fleet(c.candidates, c.hits))), c.want);
    });
  }

  it('spreads a burst of cold prefixes over every endpoint before reusing one (max-score pick)', () => {
    const s = new NoHitLruScorer();
    const names = ['e0', 'e1', 'e2', 'e3'];
    const chosen: string[] = [];
    for (let r = 0; r < 8; r++) {
      const request = makeRequest();
      const candidates = fleet(names);
      const scores = s.score(new Map(), request, candidates);
      let best = 0;
      for (let i = 1; i < candidates.length; i++) if ((scores[i] as number) > (scores[best] as number)) best = i;
      chosen.push(candidates[best]!.endpoint.metadata.name);
      s.preRequest(request, makeSchedulingResult({ default: [candidates[best]!] }));
    }
    assert.deepEqual(chosen, ['e0', 'e1', 'e2', 'e3', 'e0', 'e1', 'e2', 'e3']);
  });

  it('warm requests do not touch the LRU; a missing match attribute counts as cold', () => {
    const s = new NoHitLruScorer();
    route(s, ['a', 'b'], 'b', { a: 3 });
    assert.deepEqual(s.lruOrder(), []);
    const request = makeRequest();
    const bare = [makeCandidate(makeEndpoint('a')), makeCandidate(makeEndpoint('b'))];
    assert.deepEqual(Array.from(s.score(new Map(), request, bare)), [1, 0]);
    s.preRequest(request, makeSchedulingResult({ default: [bare[0]!] }));
    assert.deepEqual(s.lruOrder(), ['a']);
  });

  it('records the prefill profile target too (P/D), and forgets the oldest beyond lruSize', () => {
    const s = new NoHitLruScorer('n', { lruSize: 2 });
    const request = makeRequest();
    const candidates = fleet(['d', 'p']);
    s.score(new Map(), request, candidates);
    s.preRequest(request, makeSchedulingResult({ decode: [candidates[0]!], prefill: [candidates[1]!] }));
    assert.deepEqual(s.lruOrder(), ['d', 'p']);
    route(s, ['x'], 'x');
    assert.deepEqual(s.lruOrder(), ['p', 'x']);
  });

  describe('factory', () => {
    it('defaults from {} (llm-d: lruSize 1024, prefillProfile "prefill")', () => {
      const p = noHitLruScorerFactory('n', {}, makeHandle()) as NoHitLruScorer;
      assert.deepEqual(p.typedName, { type: NO_HIT_LRU_SCORER_TYPE, name: 'n' });
      assert.deepEqual({ ...p.config }, { prefillProfile: 'prefill', lruSize: DEFAULT_LRU_SIZE });
      assert.deepEqual(p.consumes, [PrefixCacheMatchInfoKey]);
    });
    it("accepts llm-d's parameters", () => {
      const p = noHitLruScorerFactory('n', { prefixPluginName: 'precise-prefix-cache-scorer', prefillProfile: 'pf', lruSize: 64 }, makeHandle()) as NoHitLruScorer;
      assert.deepEqual([p.config.prefillProfile, p.config.lruSize], ['pf', 64]);
    });
    it('lruSize ≤ 0 → the default with a warning, as llm-d', () => {
      assert.deepEqual(lenientFields(() => noHitLruScorerFactory('n', { lruSize: 0 }, makeHandle())), ['lruSize']);
    });
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['fractional lruSize', { lruSize: 1.5 }, /parameters\.lruSize: expected a positive integer/],
      ['string lruSize', { lruSize: '10' }, /parameters\.lruSize: expected a positive integer/],
      ['numeric profile', { prefillProfile: 3 }, /parameters\.prefillProfile: expected a profile name/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => noHitLruScorerFactory('n', params, makeHandle())), re));
    }
  });
});
