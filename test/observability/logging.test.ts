/**
 * Request logging: every line logged while requests run carries the request id, and the default level logs
 * nothing per request on the success path (so nothing per chunk either).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { levelForVerbosity } from '../../src/observability/logger.ts';
import type { Plugin, PluginFactory } from '../../src/framework/plugin.ts';
import { FakeEnvoy } from '../support/fake-envoy.ts';
import { configText, startTestEpp } from '../support/epp.ts';
import { chatBody, CHAT_PATH, fullStreamedRequest } from './helpers.ts';

function captureLogger(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

/** A response hook that throws on every chunk: exercises the error log of the response path. */
const throwingFactory: PluginFactory = (name) =>
  ({
    typedName: { type: 'throwing-plugin', name },
    onResponseChunk() {
      throw new Error('boom');
    },
  }) as Plugin;

async function runMix(level: string) {
  const { logger, lines } = captureLogger(level);
  const epp = await startTestEpp({
    logger,
    configText: configText('- name: thrower\n  type: throwing-plugin'),
    register: (r) => r.register('throwing-plugin', throwingFactory),
  });
  const envoy = new FakeEnvoy(epp.grpcPort);
  const before = lines.length;
  const counts: number[] = [];
  try {
    for (const chunks of [5, 50]) {
      const n = lines.length;
      await fullStreamedRequest(envoy.open(), `chunks ${chunks}`, chunks, { 'x-request-id': `ok-${chunks}` });
      counts.push(lines.length - n);
    }
    // A rejected request (bad JSON) and a protocol violation (response before request).
    const bad = envoy.open();
    bad.requestHeaders({ ':path': CHAT_PATH, 'x-request-id': 'bad-json' });
    bad.requestBody('{oops', true);
    await bad.ended;
    const proto = envoy.open();
    proto.requestHeaders({ ':path': CHAT_PATH, 'x-request-id': 'proto' });
    proto.responseHeaders({ ':status': '200' });
    await proto.ended;
    const ok = envoy.open();
    ok.requestHeaders({ ':path': CHAT_PATH, 'x-request-id': 'abandoned' });
    ok.requestBody(chatBody('x'), true);
    await ok.nextN(2);
    ok.cancel();
    await ok.ended;
    await epp.server.whenIdle();
    return { during: lines.slice(before), counts };
  } finally {
    envoy.close();
    await epp.close();
  }
}

test('-v mapping: 2 → info, 3 and 4 → debug, 5 → trace', () => {
  assert.deepEqual([0, 2, 3, 4, 5, 9].map(levelForVerbosity), ['info', 'info', 'debug', 'debug', 'trace', 'trace']);
});

test('at trace level every request log line carries the request id', async () => {
  const { during } = await runMix('trace');
  assert.ok(during.length > 0);
  const missing = during.filter((l) => typeof l.requestId !== 'string' || l.requestId === '');
  assert.deepEqual(missing, []);
  const ids = new Set(during.map((l) => l.requestId));
  for (const id of ['ok-5', 'ok-50', 'bad-json', 'proto']) assert.ok(ids.has(id), `no line for ${id}`);
});

test('at the default level a request logs the same number of lines whatever its chunk count (nothing per chunk)', async () => {
  const { during, counts } = await runMix('info');
  assert.equal(counts[0], counts[1], `lines for 5 chunks: ${counts[0]}, for 50 chunks: ${counts[1]}`);
  // The throwing hook is logged once per stream, not once per chunk.
  assert.ok((counts[1] ?? 0) <= 1);
  assert.ok(during.every((l) => typeof l.requestId === 'string'));
});
