import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { InFlightLoad } from '../../../../framework/attributes.ts';
import type { PoolLoad } from '../../../../framework/flowcontrol.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, names } from '../../../../../test/support/plugin-fixtures.ts';
import { ConcurrencyDetector, concurrencyDetectorFactory } from './index.ts';

function load(per: Record<string, InFlightLoad>, unbound: InFlightLoad = { requests: 0, tokens: 0 }): PoolLoad {
  return { loadOf: (n) => per[n] ?? { requests: 0, tokens: 0 }, unbound: () => unbound };
}

describe('concurrency-detector', () => {
  const eps = [makeEndpoint('a'), makeEndpoint('b')];

  it('defaults from {}: upstream parameters', () => {
    const d = concurrencyDetectorFactory('c', {}, makeHandle()) as ConcurrencyDetector;
    assert.deepEqual(d.params, { concurrencyMode: 'requests', maxConcurrency: 100, maxTokenConcurrency: 1_000_000, headroom: 0 });
  });

  it('Σ in-flight (incl. admitted-but-unbound) / Σ capacity; empty list → 1.0', () => {
    const d = concurrencyDetectorFactory('c', { maxConcurrency: 10 }, makeHandle()) as ConcurrencyDetector;
    assert.equal(d.saturation(eps), 0, 'unbound detector reads zero load');
    d.bindPoolLoad(load({ a: { requests: 10, tokens: 0 }, b: { requests: 5, tokens: 0 } }, { requests: 5, tokens: 0 }));
    assert.equal(d.saturation(eps), 1);
    assert.equal(d.saturation([eps[1]!]), 1, '5 bound + 5 unbound over 10');
    assert.equal(d.saturation([]), 1);
  });

  it('tokens mode uses token counts and maxTokenConcurrency', () => {
    const d = concurrencyDetectorFactory('c', { concurrencyMode: 'tokens', maxTokenConcurrency: 1000 }, makeHandle()) as ConcurrencyDetector;
    d.bindPoolLoad(load({ a: { requests: 1, tokens: 500 } }));
    assert.equal(d.saturation(eps), 0.25);
  });

  it('filter keeps endpoints below trunc(limit × (1 + headroom)); fail-closed', () => {
    const d = concurrencyDetectorFactory('c', { maxConcurrency: 3, headroom: 0.5 }, makeHandle()) as ConcurrencyDetector; // limit 4
    d.bindPoolLoad(load({ a: { requests: 4, tokens: 0 }, b: { requests: 3, tokens: 0 } }));
    const cands = eps.map((e) => makeCandidate(e));
    assert.deepEqual(names(d.filter(new Map(), makeRequest(), cands)), ['b']);
    d.bindPoolLoad(load({ a: { requests: 4, tokens: 0 }, b: { requests: 9, tokens: 0 } }));
    assert.deepEqual(names(d.filter(new Map(), makeRequest(), cands)), []);
  });

  it('rejects bad parameters naming the field', () => {
    const bad: ReadonlyArray<[unknown, RegExp]> = [
      [{ concurrencyMode: 'bytes' }, /parameters\.concurrencyMode/],
      [{ maxConcurrency: 0 }, /parameters\.maxConcurrency: maxConcurrency must be strictly positive/],
      [{ maxTokenConcurrency: -1 }, /parameters\.maxTokenConcurrency/],
      [{ headroom: -0.1 }, /parameters\.headroom/],
    ];
    for (const [params, re] of bad) assert.match(factoryError(() => concurrencyDetectorFactory('c', params, makeHandle())), re);
  });
});
