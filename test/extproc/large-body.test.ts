/**
 * A large prompt through ext_proc, sent as Envoy streams it (62 KB messages): the headers reply releases the
 * request first, then the body goes back exactly as received (not re-serialised: spacing and escapes kept) as
 * ≤ 62,000-byte pieces, in order, end_of_stream on the last only; and another stream is answered meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { BODY_BYTE_LIMIT } from '../../src/server/extproc/messages.ts';
import { FakeEnvoy, setHeaders, streamedBody } from '../support/fake-envoy.ts';
import { startTestEpp } from '../support/epp.ts';

const enc = new TextEncoder();

function largeChat(bytes: number): Uint8Array {
  // Spelling a re-serialisation would change: spaces after colons, an escaped character, a trailing newline.
  const shell = (content: string) => `{ "model": "m1",  "stream": true, "messages": [ { "role": "user", "content": "${content}" } ], "note": "caf\\u00e9" }\n`;
  const room = bytes - shell('').length;
  let content = '';
  for (let i = 0; content.length < room; i++) content += `word${i % 97} `;
  return enc.encode(shell(content.slice(0, room)));
}

describe('ext_proc with a 256 KB prompt', { timeout: 20_000 }, () => {
  let epp: RunningEpp;
  let envoy: FakeEnvoy;
  before(async () => {
    epp = await startTestEpp({});
    envoy = new FakeEnvoy(epp.grpcPort);
  });
  after(async () => {
    envoy.close();
    await epp.close();
  });

  test('headers reply first, then the very bytes received, in ≤ 62,000-byte pieces; another stream is served meanwhile', async () => {
    const body = largeChat(256 * 1024);
    const other = envoy.open();
    other.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    await other.next();

    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/chat/completions', ':method': 'POST', 'content-type': 'application/json' });
    for (let at = 0; at < body.length; at += 62_000) s.requestBody(body.subarray(at, Math.min(body.length, at + 62_000)), at + 62_000 >= body.length);
    // The other stream's chunk, sent while the large one is processed, is answered.
    other.responseBody('data: {"choices":[]}\n\n', false);

    const pieces = Math.ceil(body.length / BODY_BYTE_LIMIT);
    const [headers, ...bodyReplies] = await s.nextN(1 + pieces);
    assert.equal(headers?.response.case, 'requestHeaders');
    const set = new Map(setHeaders(headers!));
    assert.equal(set.get('Content-Length'), String(body.length));
    const got = bodyReplies.map((r) => streamedBody(r));
    assert.deepEqual(got.map((p) => p.bytes.length), Array.from({ length: pieces }, (_, i) => Math.min(BODY_BYTE_LIMIT, body.length - i * BODY_BYTE_LIMIT)));
    assert.deepEqual(got.map((p) => p.endOfStream), Array.from({ length: pieces }, (_, i) => i === pieces - 1));
    assert.ok(Buffer.concat(got.map((p) => p.bytes)).equals(Buffer.from(body)), 'forwarded byte for byte');
    assert.equal(streamedBody(await other.next()).body, 'data: {"choices":[]}\n\n');

    s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    await s.next();
    s.responseBody('data: [DONE]\n\n', true);
    await s.next();
    s.end();
    assert.equal((await s.ended).code, status.OK);
    other.responseBody('', true);
    await other.next();
    other.end();
    await other.ended;
  });
});
