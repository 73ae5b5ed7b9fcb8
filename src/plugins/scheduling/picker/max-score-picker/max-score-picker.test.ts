import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Xoshiro128StarStar } from '../../../../util/random.ts';
import { factoryError, makeHandle, makeScored, names, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { MAX_SCORE_PICKER_TYPE, MaxScorePicker, maxScorePickerFactory } from './index.ts';
import { DEFAULT_MAX_NUM_OF_ENDPOINTS } from '../picker-parameters.ts';

const RUNS = 3000;

describe('max-score-picker', () => {
  const cases: ReadonlyArray<{
    name: string;
    scores: ReadonlyArray<readonly [string, number]>;
    max: number;
    /** Targets that must come first, in order. */
    wantPrefix: string[];
    /** After the fixed prefix, the remaining slots are filled from this tie set. */
    tieBreak?: string[];
  }> = [
    { name: 'single highest wins', scores: [['a', 1], ['b', 3], ['c', 2]], max: 1, wantPrefix: ['b'] },
    { name: 'top 2 by score, primary first', scores: [['a', 1], ['b', 3], ['c', 2]], max: 2, wantPrefix: ['b', 'c'] },
    { name: 'maxNumOfEndpoints above n returns all, sorted', scores: [['a', 1], ['b', 3]], max: 5, wantPrefix: ['b', 'a'] },
    { name: 'tie at the top (first of the list among ties)', scores: [['a', 5], ['b', 5], ['c', 1]], max: 1, wantPrefix: [], tieBreak: ['a', 'b'] },
    { name: 'tie at the top (last of the list among ties)', scores: [['c', 1], ['a', 2], ['b', 2]], max: 1, wantPrefix: [], tieBreak: ['a', 'b'] },
    { name: 'all equal', scores: [['a', 0], ['b', 0], ['c', 0], ['d', 0]], max: 1, wantPrefix: [], tieBreak: ['a', 'b', 'c', 'd'] },
    { name: 'tie for the second slot', scores: [['a', 9], ['b', 4], ['c', 4], ['d', 1]], max: 2, wantPrefix: ['a'], tieBreak: ['b', 'c'] },
    { name: 'single candidate', scores: [['only', 0.3]], max: 1, wantPrefix: ['only'] },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const picker = new MaxScorePicker('p', new Xoshiro128StarStar(7), c.max);
      const scored = makeScored(c.scores);
      const seen = new Map<string, number>();
      for (let run = 0; run < RUNS; run++) {
        const got = names(picker.pick(new Map(), scored).targets);
        assert.equal(got.length, Math.min(c.max, c.scores.length));
        assert.deepEqual(got.slice(0, c.wantPrefix.length), c.wantPrefix);
        if (c.tieBreak !== undefined) {
          const tiePick = got[c.wantPrefix.length] ?? '';
          assert.ok(c.tieBreak.includes(tiePick), `${tiePick} not in tie set ${c.tieBreak.join(',')}`);
          seen.set(tiePick, (seen.get(tiePick) ?? 0) + 1);
        }
      }
      if (c.tieBreak !== undefined) {
        // Every tied candidate wins about 1/k of the time (no bias toward list position).
        const expected = RUNS / c.tieBreak.length;
        for (const n of c.tieBreak) {
          const count = seen.get(n) ?? 0;
          assert.ok(Math.abs(count - expected) < expected * 0.15, `${n} won ${count} of ${RUNS}, expected ≈${expected}`);
        }
      }
    });
  }

  it('is reproducible for a seed', () => {
    const scored = makeScored([['a', 1], ['b', 1], ['c', 1], ['d', 1]]);
    const run = () => {
      const p = new MaxScorePicker('p', new Xoshiro128StarStar(99), 1);
      return Array.from({ length: 20 }, () => names(p.pick(new Map(), scored).targets)[0]);
    };
    assert.deepEqual(run(), run());
  });

  it('draws no randomness when there is no tie (single-winner path)', () => {
    let draws = 0;
    const p = new MaxScorePicker('p', { next: () => (draws++, 0.5) }, 1);
    p.pick(new Map(), makeScored([['a', 1], ['b', 2], ['c', 3]]));
    assert.equal(draws, 0);
  });

  it('throws on an empty candidate list', () => {
    assert.throws(() => new MaxScorePicker('p', new Xoshiro128StarStar(1)).pick(new Map(), []), /no endpoints available/);
  });

  describe('factory', () => {
    it('defaults from {}', () => {
      const p = maxScorePickerFactory('m', {}, makeHandle()) as MaxScorePicker;
      assert.deepEqual(p.typedName, { type: MAX_SCORE_PICKER_TYPE, name: 'm' });
      assert.equal(p.maxNumOfEndpoints, DEFAULT_MAX_NUM_OF_ENDPOINTS);
    });
    it('accepts maxNumOfEndpoints', () => {
      assert.equal((maxScorePickerFactory('m', { maxNumOfEndpoints: 3 }, makeHandle()) as MaxScorePicker).maxNumOfEndpoints, 3);
    });
    it('uses the handle random source', () => {
      let draws = 0;
      const handle = { ...makeHandle(), random: { next: () => (draws++, 0) } };
      (maxScorePickerFactory('m', {}, handle) as MaxScorePicker).pick(new Map(), makeScored([['a', 1], ['b', 1]]));
      assert.equal(draws, 1);
    });
    const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
      ['fractional', { maxNumOfEndpoints: 1.5 }, /parameters\.maxNumOfEndpoints: expected an integer >= 1/],
      ['string', { maxNumOfEndpoints: '2' }, /parameters\.maxNumOfEndpoints: expected an integer >= 1/],
    ];
    for (const [name, params, re] of rejections) {
      it(`rejects ${name}`, () => assert.match(factoryError(() => maxScorePickerFactory('m', params, makeHandle())), re));
    }
    // Accepted as upstream accepts them (unknown keys ignored, values ≤ 0 or null → the default), with a warning.
    const lenient: ReadonlyArray<[string, unknown, string]> = [
      ['zero (upstream silently used 1)', { maxNumOfEndpoints: 0 }, 'maxNumOfEndpoints'],
      ['negative', { maxNumOfEndpoints: -1 }, 'maxNumOfEndpoints'],
      ['unknown key', { maxEndpoints: 2 }, 'maxEndpoints'],
    ];
    for (const [name, params, field] of lenient) {
      it(`accepts ${name} leniently, warning on the field`, () => assert.deepEqual(lenientFields(() => maxScorePickerFactory('m', params, makeHandle())), [field]));
    }
  });
});
