/**
 * The aggregating histogram shows at scrape exactly what prom-client's Histogram shows for the same observations
 * (labelled children, direct observe with labels, values past the last bucket, reset, zero), and refuses what
 * it refuses (a value that is not a finite number).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { AggregateHistogram } from '../../src/observability/aggregate-histogram.ts';

const config = (registers: Registry[]) => ({
  name: 'demo_seconds',
  help: 'A demo duration.',
  labelNames: ['point', 'plugin'] as const,
  buckets: [0.001, 0.01, 0.1, 1],
  registers,
});

function pair() {
  const plainRegistry = new Registry();
  const aggRegistry = new Registry();
  return { plain: new Histogram(config([plainRegistry])), agg: new AggregateHistogram(config([aggRegistry])), plainRegistry, aggRegistry };
}

test('same exposition as a plain Histogram for the same observations, across scrapes', async () => {
  const { plain, agg, plainRegistry, aggRegistry } = pair();
  let seed = 3;
  const next = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2;
  const children = [
    [agg.labels({ point: 'PrepareData', plugin: 'a' }), plain.labels({ point: 'PrepareData', plugin: 'a' })],
    [agg.labels('ResponseStreaming', 'b'), plain.labels('ResponseStreaming', 'b')],
  ] as const;
  for (let scrape = 0; scrape < 3; scrape++) {
    for (let i = 0; i < 500; i++) {
      const v = next() ** 4; // spread over every bucket and past the last one
      const [a, p] = children[i % 2] as (typeof children)[number];
      a.observe(v);
      p.observe(v);
      if (i % 7 === 0) {
        agg.observe({ point: 'Admit', plugin: 'c' }, v);
        plain.observe({ point: 'Admit', plugin: 'c' }, v);
      }
    }
    assert.equal(await aggRegistry.metrics(), await plainRegistry.metrics(), `scrape ${scrape}`);
  }
  assert.deepEqual(await agg.get(), await plain.get());
});

test('zero, remove and reset act on pending observations too', async () => {
  const { plain, agg, plainRegistry, aggRegistry } = pair();
  for (const h of [agg, plain] as const) {
    h.observe({ point: 'x', plugin: 'p' }, 0.05);
    h.zero({ point: 'x', plugin: 'p' });
    h.observe({ point: 'x', plugin: 'p' }, 0.5);
    h.observe({ point: 'y', plugin: 'p' }, 0.5);
    h.remove({ point: 'y', plugin: 'p' });
  }
  assert.equal(await aggRegistry.metrics(), await plainRegistry.metrics());
  const kept = [agg.labels({ point: 'z', plugin: 'p' }), plain.labels({ point: 'z', plugin: 'p' })];
  agg.reset();
  plain.reset();
  for (const child of kept) child.observe(2); // a child kept across a reset still counts
  agg.observe({ point: 'w', plugin: 'p' }, 0.002);
  plain.observe({ point: 'w', plugin: 'p' }, 0.002);
  assert.equal(await aggRegistry.metrics(), await plainRegistry.metrics());
  assert.match(await aggRegistry.metrics(), /demo_seconds_count\{point="z",plugin="p"\} 1/);
});

test('a value that is not a finite number is refused, as prom-client refuses it', () => {
  const { agg, plain } = pair();
  for (const v of [Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => plain.observe({ point: 'x', plugin: 'p' }, v), TypeError);
    assert.throws(() => agg.observe({ point: 'x', plugin: 'p' }, v), TypeError);
    assert.throws(() => agg.labels({ point: 'x', plugin: 'p' }).observe(v), TypeError);
  }
});
