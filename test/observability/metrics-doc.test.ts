/**
 * docs/operations.md's metrics reference is generated from the registry; this test fails when they differ.
 * After adding or changing a metric: UPDATE_DOCS=1 node scripts/run-tests.js test/observability/metrics-doc
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { withMetricsReference } from '../support/metrics-doc.ts';

const DOC = new URL('../../docs/operations.md', import.meta.url);

test('docs/operations.md lists exactly the registered metrics', () => {
  const doc = readFileSync(DOC, 'utf8');
  const expected = withMetricsReference(doc);
  if (process.env.UPDATE_DOCS === '1') writeFileSync(DOC, expected);
  assert.equal(doc, expected === doc ? doc : expected, 'metrics reference out of date: run UPDATE_DOCS=1 node scripts/run-tests.js test/observability/metrics-doc');
});
