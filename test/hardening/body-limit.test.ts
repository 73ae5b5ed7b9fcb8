/**
 * Request body limit: a body over --max-request-body-bytes gets one 413 ImmediateResponse, the stream ends, the
 * rest of the body is dropped unbuffered; a single message over the gRPC receive limit is a clean
 * RESOURCE_EXHAUSTED. Memory stays bounded by the limit, not by what clients send.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy, type EnvoyStream } from '../support/fake-envoy.ts';
import { startTestEpp } from '../support/epp.ts';
import { CHAT_PATH, fullStreamedRequest } from '../observability/helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const LIMIT = 1 << 20;
const CHUNK = new Uint8Array(64 << 10).fill(0x61);

let epp: RunningEpp;
let envoy: FakeEnvoy;
before(async () => {
  epp = await startTestEpp({ maxRequestBodyBytes: LIMIT });
  envoy = new FakeEnvoy(epp.grpcPort);
});
after(async () => {
  envoy.close();
  await epp.close();
});

function immediateStatus(s: EnvoyStream): number | undefined {
  const r = s.responses.find((x) => x.response.case === 'immediateResponse');
  return (r?.response.value as { status?: { code: number } } | undefined)?.status?.code;
}

test('a body over the limit gets 413 once and the stream ends; the server keeps serving', async () => {
  const s = envoy.open();
  s.requestHeaders({ ':path': CHAT_PATH, 'content-type': 'application/json' });
  s.requestBody('{"model":"m1","prompt":"', false);
  for (let sent = 0; sent <= LIMIT; sent += CHUNK.length) s.requestBody(CHUNK, false);
  const end = await s.ended;
  assert.equal(end.code, status.OK);
  assert.equal(immediateStatus(s), 413);
  assert.equal(s.responses.length, 1);
  await fullStreamedRequest(envoy.open(), 'still serving');
});

test('64 streams each sending 4x the limit: all get 413, retained memory stays far below what was sent', async () => {
  gc();
  const used = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.external; // body bytes live in ArrayBuffers (external), not on the JS heap
  };
  const before = used();
  const streams: EnvoyStream[] = [];
  for (let i = 0; i < 64; i++) {
    const s = envoy.open();
    s.requestHeaders({ ':path': CHAT_PATH });
    for (let sent = 0; sent < 4 * LIMIT; sent += CHUNK.length) s.requestBody(CHUNK, false);
    streams.push(s);
  }
  await Promise.all(streams.map((s) => s.ended));
  assert.deepEqual(new Set(streams.map(immediateStatus)), new Set([413]));
  await epp.server.whenIdle();
  // 256 MiB were offered. In-flight HTTP/2 buffers (client and server share this process) drain within
  // moments; what must not happen is retention that scales with the bytes sent.
  let grownMiB = Infinity;
  for (let i = 0; i < 30 && grownMiB >= 16; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gc();
    grownMiB = (used() - before) / (1 << 20);
  }
  assert.ok(grownMiB < 16, `heap+external still ${grownMiB.toFixed(1)} MiB above the start`);
  assert.equal(epp.server.openStreams, 0);
  assert.equal(epp.director.liveResponseStreams, 0);
});

test('one message over the gRPC receive limit ends only that stream, with RESOURCE_EXHAUSTED', async () => {
  const s = envoy.open();
  s.requestHeaders({ ':path': CHAT_PATH });
  s.requestBody(new Uint8Array(LIMIT + (9 << 20)), true);
  const end = await s.ended;
  assert.equal(end.code, status.RESOURCE_EXHAUSTED);
  await fullStreamedRequest(envoy.open(), 'still serving');
  await epp.server.whenIdle();
  assert.equal(epp.server.openStreams, 0);
});
