import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, names, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import {
  ENDPOINT_SELECTION_HEADER,
  HEADER_BASED_TESTING_FILTER_TYPE,
  HeaderBasedTestingFilter,
  headerBasedTestingFilterFactory,
  splitHostPort,
} from './index.ts';

const candidates = [
  makeCandidate(makeEndpoint('a-8000', {}, { address: '10.0.0.1', port: 8000 })),
  makeCandidate(makeEndpoint('a-8001', {}, { address: '10.0.0.1', port: 8001 })),
  makeCandidate(makeEndpoint('b', {}, { address: '10.0.0.2', port: 8000 })),
  makeCandidate(makeEndpoint('v6', {}, { address: 'fd00::5', port: 9000 })),
];

describe('header-based-testing-filter', () => {
  const cases: ReadonlyArray<[string, string | undefined, string[]]> = [
    ['header missing → nothing', undefined, []],
    ['header blank → nothing', '  ', []],
    ['bare IP → first endpoint with that address', '10.0.0.2', ['b']],
    ['ip:port → exact match', '10.0.0.1:8001', ['a-8001']],
    ['ip:port with unknown port → nothing', '10.0.0.1:9999', []],
    ['header order, whitespace tolerated', ' 10.0.0.2 , 10.0.0.1:8000', ['b', 'a-8000']],
    ['de-duplicated by IP', '10.0.0.1:8000,10.0.0.1:8001,10.0.0.1', ['a-8000']],
    ['unknown IPs ignored', '256.256.256.256,10.0.0.2', ['b']],
    ['bare IPv6', 'fd00::5', ['v6']],
    ['bracketed IPv6 with port', '[fd00::5]:9000', ['v6']],
    ['bracketed IPv6 without port', '[fd00::5]', ['v6']],
    ['empty items skipped', ',,10.0.0.2,', ['b']],
  ];
  for (const [name, header, want] of cases) {
    it(name, () => {
      const req = makeRequest({ headers: header === undefined ? {} : { [ENDPOINT_SELECTION_HEADER]: header } });
      assert.deepEqual(names(new HeaderBasedTestingFilter().filter(new Map(), req, candidates)), want);
    });
  }

  it('splitHostPort', () => {
    assert.deepEqual(splitHostPort('1.2.3.4:80'), { host: '1.2.3.4', port: '80' });
    assert.deepEqual(splitHostPort('1.2.3.4'), { host: '1.2.3.4', port: '' });
    assert.deepEqual(splitHostPort('[::1]:80'), { host: '::1', port: '80' });
    assert.deepEqual(splitHostPort('::1'), { host: '::1', port: '' });
  });

  it('factory: defaults and rejection', () => {
    assert.deepEqual(headerBasedTestingFilterFactory('f', {}, makeHandle()).typedName, { type: HEADER_BASED_TESTING_FILTER_TYPE, name: 'f' });
    assert.deepEqual(lenientFields(() => headerBasedTestingFilterFactory('f', { header: 'x' }, makeHandle())), ['header']); // unknown keys are ignored, as upstream
  });
});
