import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { ProfileRunResult, SchedulingProfile } from '../../../../framework/scheduling.ts';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { SINGLE_PROFILE_HANDLER_TYPE, SingleProfileHandler, singleProfileHandlerFactory } from './index.ts';

const profiles = (...names: string[]) => new Map<string, SchedulingProfile>(names.map((name) => [name, { name }]));
const ok = (name: string): ProfileRunResult => ({ targets: [makeCandidate(makeEndpoint(name))] });

describe('single-profile-handler', () => {
  it('runs the profile once, then stops', () => {
    const h = new SingleProfileHandler();
    const all = profiles('default');
    assert.deepEqual(h.pickProfiles(new Map(), makeRequest(), all, new Map()), [{ name: 'default' }]);
    assert.deepEqual(h.pickProfiles(new Map(), makeRequest(), all, new Map([['default', ok('a')]])), []);
    assert.deepEqual(h.pickProfiles(new Map(), makeRequest(), all, new Map([['default', null]])), []);
  });

  it('makes the single result primary', () => {
    const results = new Map([['default', ok('a')]]);
    const r = new SingleProfileHandler().processResults(new Map(), makeRequest(), results);
    assert.equal(r.primaryProfileName, 'default');
    assert.equal(r.profileResults.get('default')?.targets[0]?.endpoint.metadata.name, 'a');
  });

  const failures: ReadonlyArray<[string, Map<string, ProfileRunResult | null>, RegExp]> = [
    ['failed profile', new Map([['default', null]]), /failed to run scheduler profile 'default'$/],
    ['several profiles', new Map([['a', ok('x')], ['b', ok('y')]]), /single profile handler is intended to be used with a single profile/],
    ['no profiles', new Map(), /single profile handler is intended to be used with a single profile/],
  ];
  for (const [name, results, re] of failures) {
    it(`processResults fails on ${name}`, () => {
      assert.throws(() => new SingleProfileHandler().processResults(new Map(), makeRequest(), results), re);
    });
  }

  it('factory: defaults and rejection', () => {
    assert.deepEqual(singleProfileHandlerFactory('h', {}, makeHandle()).typedName, { type: SINGLE_PROFILE_HANDLER_TYPE, name: 'h' });
    assert.deepEqual(lenientFields(() => singleProfileHandlerFactory('h', { primary: 'x' }, makeHandle())), ['primary']); // unknown keys are ignored, as upstream
  });
});
