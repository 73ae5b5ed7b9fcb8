/**
 * The hand-encoded streamed body replies are byte for byte what the generated encoder writes, and decode with
 * the generated codec to the message they stand for; the serialisers hand grpc-js views, not copies.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ProcessingResponseSchema, type ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { asBuffer, encodeHeadersReply, encodeJsonStruct, encodeStreamedBodyReply, serializeReply } from '../../src/server/extproc/codec.ts';
import { routedHeadersReply } from '../../src/server/extproc/request-replies.ts';
import { HeaderValueOption_HeaderAppendAction } from '../../src/gen/envoy/config/core/v3/base_pb.ts';
import type { JsonObject } from '@bufbuild/protobuf';
import { requestHeadersResponse, responseHeadersResponse, setHeader } from '../../src/server/extproc/messages.ts';
import { BODY_BYTE_LIMIT, bodyResponses } from '../../src/server/extproc/messages.ts';

function generic(side: 'requestBody' | 'responseBody', body: Uint8Array, endOfStream: boolean): ProcessingResponse {
  return create(ProcessingResponseSchema, {
    response: { case: side, value: { response: { bodyMutation: { mutation: { case: 'streamedResponse', value: { body, endOfStream } } } } } },
  });
}

/** Deterministic bytes of every value (0..255), so a misplaced offset shows. */
function bytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

// Body sizes around every varint boundary the nested lengths cross (1 → 2 → 3 bytes), up to the piece limit.
const SIZES = [0, 1, 2, 100, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 16_370, 16_371, 16_372, 16_373, 16_374, 16_375, 16_376, 16_377, 16_378, 16_383, 16_384, BODY_BYTE_LIMIT, 2_097_151, 2_097_152];

describe('hand-encoded streamed body replies', () => {
  for (const side of ['requestBody', 'responseBody'] as const) {
    for (const endOfStream of [false, true]) {
      test(`${side}, end_of_stream ${endOfStream}: same bytes as the generated encoder, same message when decoded`, () => {
        for (const n of SIZES) {
          const body = bytes(n);
          const want = generic(side, body, endOfStream);
          const got = encodeStreamedBodyReply(side, body, endOfStream);
          assert.deepEqual(new Uint8Array(got), toBinary(ProcessingResponseSchema, want), `body of ${n} bytes`);
          assert.deepEqual(fromBinary(ProcessingResponseSchema, new Uint8Array(got)), fromBinary(ProcessingResponseSchema, toBinary(ProcessingResponseSchema, want)));
        }
      });
    }
  }

  test('a body that is a view into a larger buffer is encoded from its own bytes only', () => {
    const whole = bytes(1000);
    const view = whole.subarray(100, 300);
    const decoded = fromBinary(ProcessingResponseSchema, new Uint8Array(encodeStreamedBodyReply('responseBody', view, false)));
    const m = decoded.response.case === 'responseBody' ? decoded.response.value.response?.bodyMutation?.mutation : undefined;
    assert.equal(m?.case, 'streamedResponse');
    assert.deepEqual(m.value.body, new Uint8Array(view));
  });

  test('bodyResponses: pieces of at most the limit, end_of_stream on the last only, metadata on the last only', () => {
    const body = bytes(BODY_BYTE_LIMIT * 2 + 5);
    const replies = bodyResponses('requestBody', body, true, { ns: { k: 'v' } }).map((r) => fromBinary(ProcessingResponseSchema, serializeReply(r)));
    assert.equal(replies.length, 3);
    const pieces = replies.map((r) => {
      assert.equal(r.response.case, 'requestBody');
      const m = r.response.value?.response?.bodyMutation?.mutation;
      assert.equal(m?.case, 'streamedResponse');
      return m.value;
    });
    assert.deepEqual(pieces.map((p) => p.body.length), [BODY_BYTE_LIMIT, BODY_BYTE_LIMIT, 5]);
    assert.deepEqual(pieces.map((p) => p.endOfStream), [false, false, true]);
    assert.deepEqual(Buffer.concat(pieces.map((p) => p.body)), Buffer.from(body));
    assert.deepEqual(replies.map((r) => r.dynamicMetadata !== undefined), [false, false, true]);
    assert.deepEqual(replies[2]?.dynamicMetadata, { ns: { k: 'v' } });
  });
});

describe('serialisers', () => {
  test('a pre-encoded reply passes through as the same buffer', () => {
    const encoded = encodeStreamedBodyReply('responseBody', bytes(10), true);
    assert.equal(serializeReply(encoded), encoded);
  });

  test('a generic reply is encoded once and handed over as a view of the encoder output, not a copy', () => {
    const out = serializeReply(generic('responseBody', bytes(300), false));
    assert.deepEqual(new Uint8Array(out), toBinary(ProcessingResponseSchema, generic('responseBody', bytes(300), false)));
    const u8 = new Uint8Array(new ArrayBuffer(16), 4, 8);
    const view = asBuffer(u8);
    view[0] = 42;
    assert.equal(u8[0], 42, 'asBuffer shares memory');
  });
});

describe('hand-encoded headers replies', () => {
  const headerSets: Array<Array<[string, string]>> = [
    [],
    [['x-gateway-destination-endpoint', '10.0.0.1:8000']],
    [
      ['x-gateway-destination-endpoint', '10.0.0.1:8000,10.0.0.2:8000'],
      ['Content-Length', '123456'],
      ['x-empty', ''],
      ['x-unicode', 'café 😀'],
      ['x-long', 'v'.repeat(300)],
      ['x-ключ-ü', 'значение ✓'.repeat(20)],
    ],
  ];
  const metadata: Array<JsonObject | undefined> = [
    undefined,
    {},
    { 'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.1:8000' } },
    { ns: { s: 'x', n: 1.5, i: -3, z: 0, b: true, f: false, nil: null, list: [1, 'two', [3], { four: 4 }], nested: { deeper: { k: 'v' } }, empty: {}, none: [] }, '': { '': '' } },
    { 'ns-ü': { 'clé 😀': 'värde ✓', long: 'ß'.repeat(200) } },
  ];

  function generic(side: 'requestHeaders' | 'responseHeaders', headers: Array<[string, string]>, clear: boolean, md: JsonObject | undefined): ProcessingResponse {
    const setHeaders = headers.map(([key, value]) => ({
      header: { key, rawValue: new TextEncoder().encode(value) },
      appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    }));
    const m = create(ProcessingResponseSchema, { response: { case: side, value: { response: { clearRouteCache: clear, headerMutation: { setHeaders } } } } });
    if (md !== undefined) m.dynamicMetadata = md;
    return m;
  }

  test('same bytes as the generated encoder for every side, header set, route-cache flag and metadata shape', () => {
    for (const side of ['requestHeaders', 'responseHeaders'] as const) {
      for (const headers of headerSets) {
        for (const md of metadata) {
          for (const clear of [false, true]) {
            const want = toBinary(ProcessingResponseSchema, generic(side, headers, clear, md));
            const got = encodeHeadersReply(side, headers.map(([k, v]) => setHeader(k, v)), clear, md);
            assert.deepEqual(new Uint8Array(got), want, `${side} ${headers.length} headers ${JSON.stringify(md)} clear=${clear}`);
            // The metadata pre-encoded (as the routed reply caches it) gives the same bytes.
            const pre = encodeHeadersReply(side, headers.map(([k, v]) => setHeader(k, v)), clear, md === undefined ? undefined : encodeJsonStruct(md));
            assert.deepEqual(new Uint8Array(pre), want, `pre-encoded ${JSON.stringify(md)}`);
          }
        }
      }
    }
  });

  test('many headers (the length scratch grows): same bytes as the generated encoder', () => {
    const many = Array.from({ length: 200 }, (_, i): [string, string] => [`x-h${i}`, 'é'.repeat(i)]);
    const want = toBinary(ProcessingResponseSchema, generic('requestHeaders', many, true, undefined));
    assert.deepEqual(new Uint8Array(encodeHeadersReply('requestHeaders', many.map(([k, v]) => setHeader(k, v)), true)), want);
  });

  test('the routed reply: destination, Content-Length, echoed headers, envoy.lb metadata for each destination in turn', () => {
    const headers = { ':path': '/v1/chat/completions', 'content-type': 'application/json', 'x-request-id': 'r1', host: 'h' };
    for (const destination of ['10.0.0.1:8000', '10.0.0.2:8000,10.0.0.3:8000', '10.0.0.1:8000']) {
      const m = fromBinary(ProcessingResponseSchema, new Uint8Array(serializeReply(routedHeadersReply(headers, destination, 42, undefined, undefined))));
      assert.equal(m.response.case, 'requestHeaders');
      const set = m.response.value?.response?.headerMutation?.setHeaders.map((h) => [h.header?.key, new TextDecoder().decode(h.header?.rawValue)]);
      assert.deepEqual(set, [
        ['x-gateway-destination-endpoint', destination],
        ['Content-Length', '42'],
        [':path', '/v1/chat/completions'],
        ['content-type', 'application/json'],
        ['x-request-id', 'r1'],
        ['host', 'h'],
      ]);
      assert.deepEqual(m.dynamicMetadata, { 'envoy.lb': { 'x-gateway-destination-endpoint': destination } });
      const want = toBinary(ProcessingResponseSchema, generic('requestHeaders', set as Array<[string, string]>, true, { 'envoy.lb': { 'x-gateway-destination-endpoint': destination } }));
      assert.deepEqual(new Uint8Array(serializeReply(routedHeadersReply(headers, destination, 42, undefined, undefined))), want);
    }
  });

  test('the builders the stream uses decode to the replies it means', () => {
    const md = { 'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.9:8000' } };
    const req = fromBinary(ProcessingResponseSchema, new Uint8Array(serializeReply(requestHeadersResponse([setHeader('x-a', '1')], md))));
    assert.equal(req.response.case, 'requestHeaders');
    const common = req.response.value?.response;
    assert.equal(common?.clearRouteCache, true);
    assert.deepEqual(common?.headerMutation?.setHeaders.map((h) => [h.header?.key, new TextDecoder().decode(h.header?.rawValue), h.appendAction]), [['x-a', '1', HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD]]);
    assert.deepEqual(req.dynamicMetadata, md);
    const res = fromBinary(ProcessingResponseSchema, new Uint8Array(serializeReply(responseHeadersResponse([setHeader('x-went-into-resp-headers', 'true')]))));
    assert.equal(res.response.case, 'responseHeaders');
    assert.equal(res.response.value?.response?.clearRouteCache, false);
    assert.equal(res.dynamicMetadata, undefined);
  });
});
