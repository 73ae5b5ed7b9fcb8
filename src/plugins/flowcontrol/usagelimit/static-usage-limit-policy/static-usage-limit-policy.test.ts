import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { factoryError, makeHandle, lenientFields } from '../../../../../test/support/plugin-fixtures.ts';
import { StaticUsageLimitPolicy, staticUsageLimitPolicyFactory } from './index.ts';

describe('static-usage-limit-policy', () => {
  it('same ceiling for every band; default 1.0', () => {
    const p = staticUsageLimitPolicyFactory('s', {}, makeHandle()) as StaticUsageLimitPolicy;
    assert.equal(p.ceiling(-5), 1);
    assert.equal(p.ceiling(100), 1);
    assert.equal((staticUsageLimitPolicyFactory('s', { threshold: 0.7 }, makeHandle()) as StaticUsageLimitPolicy).ceiling(0), 0.7);
  });
  it('rejects a threshold ≤ 0, ignores unknown parameters', () => {
    assert.match(factoryError(() => staticUsageLimitPolicyFactory('s', { threshold: 0 }, makeHandle())), /parameters\.threshold: threshold must be a number > 0/);
    assert.deepEqual(lenientFields(() => staticUsageLimitPolicyFactory('s', { limit: 1 }, makeHandle())), ['limit']); // unknown keys are ignored, as upstream
  });
});
