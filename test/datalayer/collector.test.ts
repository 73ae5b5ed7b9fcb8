/**
 * Collector semantics with scripted sources, a manual clock and a manual ticker (no timers, no sockets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointMetadata } from '../../src/framework/datalayer.ts';
import type { DataSource, ExtractOutcome, Extractor, MetricsDraft, PollOptions } from '../../src/framework/datasource.ts';
import { CollectorSet } from '../../src/datalayer/collector.ts';
import { Datastore } from '../../src/datalayer/datastore.ts';
import { ManualTicker } from '../support/doubles.ts';
import { RecordingLogger, ManualClock } from './helpers.ts';

type Step = { value: number } | { error: string } | 'hang';

/** A source that answers each poll from a script (last step repeats). Records polls and removals. */
class ScriptedSource implements DataSource<number> {
  readonly typedName = { type: 'scripted-source', name: 'src' };
  readonly outputType = 'number';
  script: Step[] = [];
  polls = 0;
  removed: string[] = [];
  poll(_e: EndpointMetadata, o: PollOptions): Promise<number> {
    this.polls++;
    const step = this.script.length > 1 ? (this.script.shift() as Step) : (this.script[0] ?? { value: 0 });
    if (step === 'hang') {
      // Ignores its signal on purpose: the collector must not depend on the source honouring it.
      return new Promise<number>(() => {});
    }
    void o;
    return 'error' in step ? Promise.reject(new Error(step.error)) : Promise.resolve(step.value);
  }
  endpointRemoved(e: EndpointMetadata): void {
    this.removed.push(e.name);
  }
}

/** Writes the polled number into waitingQueueSize; negative numbers are reported as extraction errors. */
class QueueExtractor implements Extractor<number> {
  readonly typedName = { type: 'queue-extractor', name: 'x' };
  readonly inputType = 'number';
  calls = 0;
  extract(v: number, d: MetricsDraft): ExtractOutcome {
    this.calls++;
    if (v < 0) return { updated: false, errors: [new Error(`negative ${v}`)] };
    d.waitingQueueSize = v;
    return { updated: true, errors: [] };
  }
}

function meta(name: string): EndpointMetadata {
  return { name, namespace: 'ns', podName: name, address: '10.0.0.1', port: 8000, metricsHost: '10.0.0.1:8000', labels: {} };
}

function setup(pollTimeoutMs = 1000) {
  const store = new Datastore();
  const clock = new ManualClock();
  const ticker = new ManualTicker();
  const logger = new RecordingLogger();
  const source = new ScriptedSource();
  const extractor = new QueueExtractor();
  const collectors = new CollectorSet({
    refreshIntervalMs: 50,
    pollTimeoutMs,
    bindings: [{ source, extractors: [extractor] }],
    store,
    clock,
    ticker,
    logger,
  });
  return { store, clock, ticker, logger, source, extractor, collectors };
}

test('one collector per endpoint, started on add (immediate first poll) and stopped on removal', async () => {
  const { store, ticker, source, collectors } = setup();
  source.script = [{ value: 1 }];
  store.replaceAll([meta('a'), meta('b')]);
  assert.equal(collectors.size, 2);
  assert.deepEqual(ticker.intervals, [50, 50]);
  await collectors.settled();
  assert.equal(source.polls, 2);
  store.replaceAll([meta('b')]);
  assert.equal(collectors.size, 1);
  assert.equal(ticker.size, 1);
  assert.deepEqual(source.removed, ['a']);
  await ticker.tick();
  assert.equal(source.polls, 3);
  collectors.close();
  assert.equal(ticker.size, 0);
});

test('success stamps updateTime with the injected clock and swaps a new snapshot', async () => {
  const { store, clock, source, collectors, ticker } = setup();
  source.script = [{ value: 5 }, { value: 6 }];
  store.replaceAll([meta('a')]);
  await collectors.settled();
  const first = store.get('a');
  assert.deepEqual([first?.metrics.waitingQueueSize, first?.metrics.updateTime], [5, clock.now()]);
  clock.advance(50);
  await ticker.tick();
  const second = store.get('a');
  assert.notEqual(second, first);
  assert.deepEqual([second?.metrics.waitingQueueSize, second?.metrics.updateTime], [6, clock.now()]);
  assert.equal(first?.metrics.waitingQueueSize, 5, 'old snapshot untouched');
  assert.equal(collectors.stats.commits, 2);
});

test('failures leave the endpoint stale and are logged once per streak; recovery is logged once', async () => {
  const { store, clock, source, collectors, ticker, logger } = setup();
  source.script = [{ value: 2 }, { error: 'boom' }, { error: 'boom' }, { error: 'other' }, { value: 3 }];
  store.replaceAll([meta('a')]);
  await collectors.settled();
  const fresh = store.get('a')?.metrics.updateTime;
  for (let i = 0; i < 3; i++) {
    clock.advance(50);
    await ticker.tick();
  }
  assert.equal(store.get('a')?.metrics.updateTime, fresh, 'no commit while failing → stale');
  assert.equal(store.get('a')?.metrics.waitingQueueSize, 2, 'last good values kept');
  assert.equal(logger.count('warn', 'metrics poll failed'), 1);
  clock.advance(50);
  await ticker.tick();
  assert.equal(store.get('a')?.metrics.waitingQueueSize, 3);
  assert.equal(store.get('a')?.metrics.updateTime, clock.now());
  assert.equal(logger.count('info', 'metrics poll recovered'), 1);
  assert.equal(logger.entries.find((e) => e.msg.includes('recovered'))?.obj.failedPolls, 3);
  assert.equal(collectors.stats.pollFailures, 3);
});

test('extraction errors: logged on transition only; updated=false commits nothing', async () => {
  const { store, clock, source, collectors, ticker, logger } = setup();
  source.script = [{ value: -1 }, { value: -1 }, { value: 4 }, { value: -2 }];
  store.replaceAll([meta('a')]);
  await collectors.settled();
  clock.advance(50);
  await ticker.tick();
  assert.equal(store.get('a')?.metrics.updateTime, 0, 'never successfully extracted → updateTime 0 (stale)');
  clock.advance(50);
  await ticker.tick();
  clock.advance(50);
  await ticker.tick();
  assert.equal(logger.count('warn', 'metrics extraction reported errors'), 2);
  assert.equal(logger.count('info', 'metrics extraction recovered'), 1);
});

test('slow source: ticks do not pile up polls; the deadline aborts it even if the source ignores its signal', async () => {
  const { store, clock, source, collectors, ticker, logger } = setup(1000);
  source.script = ['hang', { value: 7 }];
  store.replaceAll([meta('a')]);
  for (let i = 0; i < 5; i++) {
    clock.advance(100);
    void ticker.tick(); // would hang: the running poll is returned
  }
  assert.equal(source.polls, 1, 'no overlapping polls');
  clock.advance(600); // 1100 ms since the poll started
  await ticker.tick(); // aborts the running poll; resolves when that collection has finished
  assert.equal(collectors.stats.pollTimeouts, 1);
  assert.match(String(logger.entries.find((e) => e.msg.includes('poll failed'))?.obj.err), /poll exceeded 1000 ms/);
  assert.equal(store.get('a')?.metrics.updateTime, 0);
  await ticker.tick();
  assert.equal(store.get('a')?.metrics.waitingQueueSize, 7, 'recovers on the next tick');
  assert.equal(source.polls, 2, 'exactly one poll after the aborted one');
});

test('an endpoint removed mid-poll gets no commit, and a re-added one starts from empty metrics', async () => {
  const { store, source, collectors } = setup();
  source.script = [{ value: 5 }];
  store.replaceAll([meta('a')]);
  store.clear();
  await Promise.resolve();
  store.replaceAll([meta('a')]);
  await collectors.settled();
  assert.equal(store.get('a')?.metrics.waitingQueueSize, 5);
  assert.equal(source.removed.length, 1);
});
