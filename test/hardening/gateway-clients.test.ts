/**
 * The embedded gateway against hostile or careless clients (issue 13's probes): slow and silent connections,
 * oversized headers, Expect: 100-continue, admin and non-normalised paths, hop-by-hop and proxy credentials,
 * internal addresses in errors, pathological JSON, a throwing scorer, floods of unknown model names and their
 * metric labels. Every limit is set short here; nothing sleeps to synchronise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PluginFactory, Plugin } from '../../src/framework/plugin.ts';
import { ManualClock, RecordingLogger } from '../support/doubles.ts';
import { configText } from '../support/epp.ts';
import { samples } from '../observability/helpers.ts';
import { chat, post, rawConnection, startGateway, type GatewayUnderTest } from './rig.ts';
import { within } from '../support/wait.ts';

describe('inbound limits', () => {
  let g: GatewayUnderTest;
  before(async () => {
    g = await startGateway({ gatewayLimits: { headersTimeoutMs: 300, bodyIdleTimeoutMs: 300, keepAliveTimeoutMs: 300, maxHeaderBytes: 4096 } });
  });
  after(() => g.close());

  test('headers trickled one byte at a time are cut at the headers timeout', async () => {
    const { socket, closed } = rawConnection(g.port);
    const text = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ';
    let i = 0;
    const drip = setInterval(() => socket.write(text[i++ % text.length] as string), 50);
    const answer = await within(closed, 'the headers timeout (300 ms) to close the connection').finally(() => clearInterval(drip));
    assert.match(answer, /^HTTP\/1.1 408|^$/);
  });

  test('a connection that never sends a byte is closed', async () => {
    const { closed } = rawConnection(g.port);
    await within(closed, 'the silent connection to be closed');
  });

  test('a body that stops arriving gets 408 and the connection closes', async () => {
    const { socket, closed } = rawConnection(g.port);
    socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":');
    const answer = await within(closed, 'the body idle timeout to close the connection');
    assert.match(answer, /^HTTP\/1.1 408/);
    assert.match(answer, /no request body data/);
    assert.equal(g.upstream.seen.length, 0);
  });

  test('oversized headers get 431', async () => {
    const r = await fetch(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-big': 'a'.repeat(8000) }, body: chat() });
    assert.equal(r.status, 431);
  });

  test('Expect: 100-continue with an oversized Content-Length gets 413 and no 100 Continue', async () => {
    const { socket, closed } = rawConnection(g.port);
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${(64 << 20) + 1}\r\nExpect: 100-continue\r\n\r\n`);
    const answer = await within(closed, 'the server to close the connection');
    socket.destroy();
    assert.doesNotMatch(answer, /100 Continue/);
    assert.match(answer, /^HTTP\/1.1 413/);
  });
});

test('connections beyond --gateway-max-connections are closed at accept', async () => {
  const g = await startGateway({ gatewayLimits: { maxConnections: 2 } });
  try {
    const first = [rawConnection(g.port), rawConnection(g.port)];
    await Promise.all(first.map((c) => new Promise((r) => c.socket.once('connect', r))));
    const third = rawConnection(g.port);
    await within(third.closed, 'the third connection to be closed');
    for (const c of first) assert.equal(c.socket.destroyed, false);
    for (const c of first) c.socket.destroy();
  } finally {
    await g.close();
  }
});

describe('paths, headers and error texts', () => {
  let g: GatewayUnderTest;
  before(async () => {
    g = await startGateway();
  });
  after(() => g.close());

  test('model-server admin paths are refused and never reach upstream', async () => {
    for (const path of ['/v1/load_lora_adapter', '/v1/unload_lora_adapter', '/v1/anything-else']) {
      const r = await post(`${g.url}${path}`, JSON.stringify({ lora_name: 'x', lora_path: '/tmp/x', model: 'm1' }));
      assert.equal(r.status, 404, path);
      assert.equal((JSON.parse(r.text) as { error: { type: string } }).error.type, 'invalid_request_error');
    }
    assert.match((await post(`${g.url}/v1/load_lora_adapter`, '{}')).text, /--gateway-allowed-paths/);
    assert.equal(g.upstream.seen.length, 0);
  });

  test('dot segments and encoded slashes are refused with 400', async () => {
    for (const path of ['/v1/../v1/chat/completions', '/v1/./chat/completions', '/v1/chat%2Fcompletions', '/v1//chat/completions', '/v1/%2e%2e/load_lora_adapter']) {
      const { socket, closed } = rawConnection(g.port);
      const body = chat();
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const answer = await within(closed, 'the server to close the connection');
      assert.match(answer, /^HTTP\/1.1 400/, path);
    }
    assert.equal(g.upstream.seen.length, 0);
  });

  test('hop-by-hop headers, headers named in Connection and Proxy-Authorization are not forwarded', async () => {
    g.upstream.handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end('{"usage":{}}');
    const { socket, closed } = rawConnection(g.port);
    const body = chat();
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close, x-private-hop\r\nX-Private-Hop: secret\r\nProxy-Authorization: Basic c2VjcmV0\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    assert.match(await within(closed, 'the server to close the connection'), /^HTTP\/1.1 200/);
    const seen = g.upstream.seen.at(-1)?.headers ?? {};
    assert.equal(seen['x-kept'], 'yes');
    assert.equal(seen['x-private-hop'], undefined);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.equal(seen['keep-alive'], undefined);
  });

  test('100k-deep JSON is a 400 without a stack trace', async () => {
    const deep = `{"model":"m1","messages":[{"role":"user","content":"x"}],"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const r = await post(`${g.url}/v1/chat/completions`, deep);
    assert.equal(r.status, 400);
    assert.match(r.text, /nested deeper than/);
    assert.doesNotMatch(r.text, /at .*\.ts:\d+/);
  });
});

describe('upstream address stays out of client errors', () => {
  test('502 names no host:port (the log does)', async () => {
    const logger = new RecordingLogger();
    // A port nothing listens on: the connection is refused.
    const dead = await startGateway({ logger });
    await dead.upstream.close();
    try {
      const r = await post(`${dead.url}/v1/chat/completions`, chat());
      assert.equal(r.status, 502);
      assert.doesNotMatch(r.text, /127\.0\.0\.1|:\d{2,5}\b/);
      assert.ok(logger.entries.some((e) => JSON.stringify(e.obj).includes(`127.0.0.1:${dead.upstream.port}`)));
    } finally {
      await dead.epp.close();
    }
  });
});

describe('a throwing scorer', () => {
  const throwingScorer: PluginFactory = (name) =>
    ({
      typedName: { type: 'throwing-scorer', name },
      category: 'distribution',
      score() {
        throw new Error('scorer exploded');
      },
    }) as unknown as Plugin;

  test('→ 500 naming the plugin, logged once, counted', async () => {
    const logger = new RecordingLogger();
    const g = await startGateway({
      logger,
      configText: configText('- name: bad-scorer\n  type: throwing-scorer', ['bad-scorer']),
      register: (r) => r.register('throwing-scorer', throwingScorer),
    });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await post(`${g.url}/v1/chat/completions`, chat());
        assert.equal(r.status, 500);
        assert.match(r.text, /bad-scorer/);
      }
      const logged = logger.entries.filter((e) => e.level === 'error' && JSON.stringify(e.obj).includes('bad-scorer'));
      assert.equal(logged.length, 1);
      const text = await g.epp.metrics.registry.metrics();
      assert.match(text, /epp_plugin_errors_total\{extension_point="Scorer",plugin_type="throwing-scorer",plugin_name="bad-scorer"\} 5/);
      assert.equal(g.upstream.seen.filter((s) => s.method === 'POST').length, 0);
    } finally {
      await g.close();
    }
  });
});

describe('floods of model names', () => {
  test('thousands of distinct names keep the series count bounded', async () => {
    const g = await startGateway({ maxExtraModelLabels: 8 });
    try {
      const N = 1500;
      for (let i = 0; i < N; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => post(`${g.url}/v1/chat/completions`, chat(`model-${i + j}`))));
      }
      const text = await g.epp.metrics.registry.metrics();
      const series = samples(text, 'inference_objective_request_total');
      assert.ok(series.length <= 9, `${series.length} series`);
      assert.ok(series.some((l) => l.includes('model_name="other"')));
      const total = series.reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
      assert.equal(total, N);
      assert.ok(text.length < 200_000, `exposition ${text.length} bytes`);
    } finally {
      await g.close();
    }
  });

  test('a served model keeps its label; unknown names cost no more than one /v1/models round per second', async () => {
    const clock = new ManualClock();
    const g = await startGateway({ maxExtraModelLabels: 0, clock });
    g.upstream.modelsHandler = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'served', object: 'model', owned_by: 'x' }] }));
    const modelCalls = (): number => g.upstream.seen.filter((s) => s.url === '/v1/models').length;
    try {
      await g.epp.gateway?.refreshModels(); // the catalog loads in the background from the first request: load it first
      assert.equal((await post(`${g.url}/v1/chat/completions`, chat('served'))).status, 200);
      const before = modelCalls();
      const results = await Promise.all(Array.from({ length: 400 }, (_, i) => post(`${g.url}/v1/chat/completions`, chat(`unknown-${i}`))));
      assert.ok(results.every((r) => r.status === 404));
      assert.equal(modelCalls() - before, 0, '400 unknown names within a second: no refresh');
      clock.advance(1000);
      await Promise.all(Array.from({ length: 50 }, (_, i) => post(`${g.url}/v1/chat/completions`, chat(`later-${i}`))));
      await g.epp.gateway?.whenModelsSettled(); // the misses' refresh runs in the background: let it end
      assert.equal(modelCalls() - before, 1, 'a second later: one refresh, shared by every miss');
      const text = await g.epp.metrics.registry.metrics();
      assert.match(text, /inference_objective_request_total\{model_name="served",target_model_name="served"/);
    } finally {
      await g.close();
    }
  });
});
