/**
 * The embedded gateway against broken upstreams and non-reading clients (issue 13's probes): a model server
 * that never answers, one that stalls mid-stream, a client that never reads a huge stream, an oversized
 * non-streaming response, concurrent large bodies against the in-flight body budget. Limits are short and set
 * here; waits are bounded by `within`.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { chat, post, startGateway } from './rig.ts';
import { waitUntil, within } from '../support/wait.ts';

const SSE = 'data: {"choices":[{"delta":{"content":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]}\n\n';

test('a model server that accepts and never answers → 504 within the headers timeout; accounting released', async () => {
  const g = await startGateway({ gatewayLimits: { upstreamHeadersTimeoutMs: 300 } });
  g.upstream.handler = () => {}; // never answers
  try {
    const started = Date.now();
    const r = await within(post(`${g.url}/v1/chat/completions`, chat()), 'an answer to a hung upstream');
    assert.equal(r.status, 504);
    assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, 'upstream_timeout');
    assert.ok(Date.now() - started < 4000);
    await g.epp.director.whenIdle();
    assert.equal(g.epp.director.liveResponseStreams, 0);
    assert.match(await g.epp.metrics.registry.metrics(), /epp_gateway_upstream_timeouts_total\{phase="headers"\} 1/);
  } finally {
    await g.close();
  }
});

test('a stream that stalls mid-way is ended at the idle timeout; completion sees aborted', async () => {
  const g = await startGateway({ gatewayLimits: { upstreamIdleTimeoutMs: 300 } });
  g.upstream.handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(SSE); // then nothing, forever
  };
  try {
    const outcome = within(
      new Promise<string>((resolve) => {
        const req = http.request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve('ended'));
          res.on('error', () => resolve('cut'));
          res.on('aborted', () => resolve('cut'));
        });
        req.on('error', () => resolve('cut'));
        req.end(chat('m1', true));
      }),
      'the stalled stream to be ended',
    );
    assert.equal(await outcome, 'cut');
    await g.epp.director.whenIdle();
    const text = await g.epp.metrics.registry.metrics();
    assert.match(text, /epp_request_completions_total\{outcome="aborted"\} 1/);
    assert.match(text, /epp_gateway_upstream_timeouts_total\{phase="idle"\} 1/);
    assert.match(text, /inference_objective_running_requests\{model_name="m1"\} 0/);
  } finally {
    await g.close();
  }
});

/** Bytes the upstream managed to hand to its socket, writing as fast as backpressure lets it. */
function firehose(total: number, onProgress: (written: number) => void, contentType: string): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': contentType });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    const pump = (): void => {
      while (written < total) {
        written += chunk.length;
        onProgress(written);
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => onProgress(-1));
    pump();
  };
}

test('a client that never reads: the gateway stops reading upstream (bounded, not the whole response)', async () => {
  const g = await startGateway({ gatewayLimits: { upstreamIdleTimeoutMs: 0 } });
  const TOTAL = 256 * 1024 * 1024;
  let written = 0;
  g.upstream.handler = firehose(TOTAL, (w) => (written = w === -1 ? written : w), 'text/event-stream');
  const req = http.request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } });
  try {
    const paused = new Promise<void>((resolve) =>
      req.on('response', (res) => {
        res.pause(); // never reads
        resolve();
      }),
    );
    req.end(chat('m1', true));
    await paused;
    // Wait until the upstream stops making progress (or has sent everything, which is the failure).
    let last = -1;
    for (let stable = 0; stable < 5 && written < TOTAL; ) {
      await new Promise((r) => setTimeout(r, 100));
      stable = written === last ? stable + 1 : 0;
      last = written;
    }
    assert.ok(written < 32 * 1024 * 1024, `upstream wrote ${(written / 2 ** 20).toFixed(1)} MiB to a client that reads nothing`);
  } finally {
    req.destroy();
    await g.close();
  }
});

test('a non-streaming response over the buffer cap passes through whole; counted; completion runs', async () => {
  const g = await startGateway({ maxBufferedResponseBytes: 1 << 20 });
  const TOTAL = 8 * 1024 * 1024;
  g.upstream.handler = firehose(TOTAL, () => {}, 'application/json');
  try {
    const r = await fetch(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat() });
    assert.equal(r.status, 200);
    assert.equal((await r.arrayBuffer()).byteLength, TOTAL);
    await g.epp.director.whenIdle();
    const text = await g.epp.metrics.registry.metrics();
    assert.match(text, /epp_response_buffer_overflows_total\{data_plane="gateway"\} 1/);
    assert.match(text, /epp_request_completions_total\{outcome="success"\} 1/);
  } finally {
    await g.close();
  }
});

test('the in-flight body budget answers 429 when concurrent bodies exceed it; nothing leaks', async () => {
  const g = await startGateway({ maxRequestBodyBytes: 1 << 20, maxRequestBodyBytesInFlight: (1 << 20) + (1 << 19) });
  g.upstream.handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  const big = JSON.stringify({ model: 'm1', prompt: 'x'.repeat(900_000) });
  try {
    // Two bodies that each declare 900 kB: the first holds its reservation while its body trickles in.
    const slow = http.request(`${g.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) } });
    const slowAnswer = new Promise<number>((resolve) => slow.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0))));
    slow.write(big.slice(0, 1000));
    const gateway = g.epp.gateway;
    await waitUntil(() => (gateway?.bodyBytesInFlight ?? 0) > 0, 'the first body to be reserved');
    const second = await post(`${g.url}/v1/completions`, big);
    assert.equal(second.status, 429);
    slow.end(big.slice(1000));
    assert.equal(await slowAnswer, 200);
    assert.equal(gateway?.bodyBytesInFlight, 0);
    assert.match(await g.epp.metrics.registry.metrics(), /epp_request_body_budget_rejections_total\{data_plane="gateway"\} 1/);
  } finally {
    await g.close();
  }
});

test('the whole-request deadline answers 504 when the model server is slower than it', async () => {
  const g = await startGateway({ gatewayLimits: { requestDeadlineMs: 300 } });
  g.upstream.handler = () => {}; // headers timeout (5 min default) would wait much longer
  try {
    const r = await within(post(`${g.url}/v1/chat/completions`, chat()), 'the deadline answer');
    assert.equal(r.status, 504);
    await g.epp.director.whenIdle();
    assert.match(await g.epp.metrics.registry.metrics(), /epp_gateway_upstream_timeouts_total\{phase="deadline"\} 1/);
    assert.match(await g.epp.metrics.registry.metrics(), /epp_request_completions_total\{outcome="internal-error"\} 1/);
  } finally {
    await g.close();
  }
});
