import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InFlightLoadKey, PrefixCacheMatchInfoKey } from '../../../../framework/attributes.ts';
import type { Candidate } from '../../../../framework/scheduling.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { BOUNDED_PREFIX_AFFINITY_FILTER_TYPE, BoundedPrefixAffinityFilter, boundedPrefixAffinityFilterFactory } from './index.ts';

interface Spec {
  readonly match?: number; // matched blocks out of 10
  readonly outstanding?: number;
  readonly waiting?: number;
  readonly running?: number;
}

function candidates(specs: readonly Spec[]): Candidate[] {
  return specs.map((s, i) => {
    const attrs: Record<string, unknown> = {};
    if (s.match !== undefined) attrs[PrefixCacheMatchInfoKey] = { matchBlocks: s.match, totalBlocks: 10, blockSizeTokens: 16 };
    if (s.outstanding !== undefined) attrs[InFlightLoadKey] = { requests: s.outstanding, tokens: s.outstanding * 100 };
    return makeCandidate(makeEndpoint(`e${i}`, { waitingQueueSize: s.waiting ?? 0, runningRequestsSize: s.running ?? 0 }), attrs);
  });
}

const names = (cs: readonly Candidate[]) => cs.map((c) => c.endpoint.metadata.name);
const run = (f: BoundedPrefixAffinityFilter, specs: readonly Spec[]) => names(f.filter(new Map(), makeRequest(), candidates(specs)));

describe('bounded-prefix-affinity-filter', () => {
  const f = new BoundedPrefixAffinityFilter('f', { affinityThreshold: 0.5, maxOutstandingRequests: 4 });

  it('keeps the unsaturated holders of the prefix', () => {
    assert.deepEqual(run(f, [{ match: 9, outstanding: 3 }, { match: 0 }, { match: 5, outstanding: 1 }, { match: 4 }]), ['e0', 'e2']);
  });

  it('drops a saturated holder and keeps the other holders', () => {
    assert.deepEqual(run(f, [{ match: 9, outstanding: 4 }, { match: 0 }, { match: 9, outstanding: 3 }]), ['e2']);
  });

  it('spills over to every unsaturated endpoint once all holders are saturated', () => {
    assert.deepEqual(run(f, [{ match: 9, outstanding: 4 }, { match: 0, outstanding: 1 }, { match: 1, outstanding: 9 }, {}]), ['e1', 'e3']);
  });

  it('without holders keeps the unsaturated endpoints', () => {
    assert.deepEqual(run(f, [{ match: 1 }, { outstanding: 5 }, { match: 2, outstanding: 2 }]), ['e0', 'e2']);
  });

  it('fails open when every endpoint is saturated', () => {
    assert.deepEqual(run(f, [{ match: 9, outstanding: 4 }, { outstanding: 5 }]), ['e0', 'e1']);
  });

  it('a single candidate passes through', () => {
    assert.deepEqual(run(f, [{ outstanding: 100 }]), ['e0']);
  });

  it('reads the waiting queue only when maxWaitingRequests >= 0', () => {
    const specs: Spec[] = [{ match: 9, waiting: 3 }, { match: 0 }];
    assert.deepEqual(run(f, specs), ['e0']);
    const g = new BoundedPrefixAffinityFilter('g', { maxWaitingRequests: 2 });
    assert.deepEqual(run(g, specs), ['e1']);
    assert.deepEqual(run(g, [{ match: 9, waiting: 2 }, { match: 0 }]), ['e0']);
  });

  it('loadFactor: a holder saturates only once it is also busier than loadFactor × the mean', () => {
    const g = new BoundedPrefixAffinityFilter('g', { maxOutstandingRequests: 4, loadFactor: 1.5 });
    // Uniformly busy fleet: mean 10, bound 15; the holder at 12 keeps the request.
    assert.deepEqual(run(g, [{ match: 9, outstanding: 12 }, { outstanding: 9 }, { outstanding: 9 }, { outstanding: 10 }]), ['e0']);
    // A hot holder: mean 8, bound 12; at 20 it spills to the endpoints below the bound.
    assert.deepEqual(run(g, [{ match: 9, outstanding: 20 }, { outstanding: 4 }, { outstanding: 4 }, { outstanding: 4 }]), ['e1', 'e2', 'e3']);
    // An idle fleet: the floor (maxOutstandingRequests) holds — mean 1, bound max(4, 1.5).
    assert.deepEqual(run(g, [{ match: 9, outstanding: 3 }, {}, {}, { outstanding: 1 }]), ['e0']);
    assert.deepEqual(run(g, [{ match: 9, outstanding: 4 }, {}, {}, {}]), ['e1', 'e2', 'e3']);
  });

  it('serverReportedLoad: load this EPP did not route saturates a holder, in the absolute and the relative bound', () => {
    const specs: Spec[] = [{ match: 9, outstanding: 2, running: 6, waiting: 1 }, { outstanding: 1, running: 1 }];
    // Only this EPP's 2 requests count by default: the holder keeps the request.
    assert.deepEqual(run(f, specs), ['e0']);
    const g = new BoundedPrefixAffinityFilter('g', { maxOutstandingRequests: 4, serverReportedLoad: true });
    // The server runs 6 and queues 1 (another gateway's): 7 ≥ 4.
    assert.deepEqual(run(g, specs), ['e1']);
    // The server's count lags this EPP's own (a scrape ago): the larger one counts.
    assert.deepEqual(run(g, [{ match: 9, outstanding: 5, running: 1 }, {}]), ['e1']);
    // Relative bound over server-reported load: mean (12 + 4 + 4 + 4) / 4 = 6, bound max(4, 1.5 × 6) = 9.
    const h = new BoundedPrefixAffinityFilter('h', { maxOutstandingRequests: 4, loadFactor: 1.5, serverReportedLoad: true });
    assert.deepEqual(run(h, [{ match: 9, running: 12 }, { running: 4 }, { running: 4 }, { running: 4 }]), ['e1', 'e2', 'e3']);
    // Mean (7 + 12) / 4 = 4.75, bound 7.125: the holder at 7 keeps the request.
    assert.deepEqual(run(h, [{ match: 9, running: 7 }, { running: 4 }, { running: 4 }, { running: 4 }]), ['e0']);
  });

  it('factory: defaults, parameters and rejection', () => {
    const d = boundedPrefixAffinityFilterFactory('b', {}, makeHandle()) as BoundedPrefixAffinityFilter;
    assert.equal(d.typedName.type, BOUNDED_PREFIX_AFFINITY_FILTER_TYPE);
    assert.deepEqual({ ...d.config }, { affinityThreshold: 0.5, maxOutstandingRequests: 24, loadFactor: 0, maxWaitingRequests: -1, serverReportedLoad: false });
    const p = boundedPrefixAffinityFilterFactory('b', { affinityThreshold: 0.8, maxOutstandingRequests: 8, loadFactor: 1.25, maxWaitingRequests: 0, serverReportedLoad: true }, makeHandle()) as BoundedPrefixAffinityFilter;
    assert.deepEqual({ ...p.config }, { affinityThreshold: 0.8, maxOutstandingRequests: 8, loadFactor: 1.25, maxWaitingRequests: 0, serverReportedLoad: true });
    assert.match(factoryError(() => boundedPrefixAffinityFilterFactory('b', { serverReportedLoad: 'yes' }, makeHandle())), /plugin 'b'.*serverReportedLoad.*true or false/);
    assert.match(factoryError(() => boundedPrefixAffinityFilterFactory('b', { loadFactor: 0.5 }, makeHandle())), /plugin 'b'.*loadFactor.*0 \(off\) or a number >= 1/);
    assert.match(factoryError(() => boundedPrefixAffinityFilterFactory('b', { affinityThreshold: 0 }, makeHandle())), /plugin 'b'.*affinityThreshold/);
    assert.match(factoryError(() => boundedPrefixAffinityFilterFactory('b', { maxOutstandingRequests: 0 }, makeHandle())), /plugin 'b'.*maxOutstandingRequests/);
    assert.deepEqual(lenientFields(() => boundedPrefixAffinityFilterFactory('b', { x: 1 }, makeHandle())), ['x']); // unknown keys are ignored, as upstream
  });
});
