/**
 * Child process of bench/response-path.bench.ts: the floor of an ext_proc server on this stack. A bare
 * grpc-js server for `ExternalProcessor/Process` that decodes each request with the same generated codec as
 * the EPP (any ext_proc server must) and answers every message at once. No routing, no body handling beyond
 * the pass-through, no metrics, no per-stream state. argv[2] selects the replies:
 *   passthrough (default)  what any server in Envoy's FULL_DUPLEX_STREAMED body mode must send at least: headers
 *                          and trailers get a fixed, pre-encoded, empty reply; every body message is sent back
 *                          as a `streamed_response` with its bytes and end_of_stream, encoded by the EPP's own
 *                          hand encoder (src/server/extproc/codec.ts), the cheapest there is on this stack;
 *   encode                 the same replies created and encoded per message with the generated codec (what a
 *                          server that builds its replies the ordinary way pays);
 *   empty                  a fixed, empty reply for every message, bodies not sent back (the floor before the
 *                          like-with-like fix; Envoy in FULL_DUPLEX_STREAMED mode would forward no body);
 *   route                  passthrough, plus the EPP's own routing of each request (a director built by startEpp
 *                          with the micro-benchmarks' default plugins, bench/support/default-plugins.ts: parse, prefix hashing, scheduling, hooks) and its
 *                          completion at the last response body message. Replies do not wait for it. A second
 *                          floor, for information only: what an ext_proc server that routes costs, without the
 *                          EPP's stream state machine, relay and reply building.
 */
import { toBinary, create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { ProcessingResponseSchema, type ProcessingRequest } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { silentLogger } from '../src/observability/logger.ts';
import { RequestAbort } from '../src/runtime/request-abort.ts';
import type { RoutingDecision } from '../src/runtime/request-path.ts';
import { startEpp } from '../src/server/bootstrap.ts';
import { encodeStreamedBodyReply } from '../src/server/extproc/codec.ts';
import { readHeaders } from '../src/server/extproc/messages.ts';
import { fixedStore } from '../test/support/epp.ts';
import { externalProcessorService } from '../src/server/extproc/service.ts';
import { announce } from './support/child.ts';
import { BENCH_DEFAULT_PLUGINS, benchConfigText } from './support/default-plugins.ts';

type Phase = Exclude<ProcessingRequest['request']['case'], undefined>;
const PHASES: readonly Phase[] = ['requestHeaders', 'requestBody', 'requestTrailers', 'responseHeaders', 'responseBody', 'responseTrailers'];
const encodeEmpty = (phase: Phase): Buffer =>
  Buffer.from(toBinary(ProcessingResponseSchema, create(ProcessingResponseSchema, { response: { case: phase, value: {} } })));
const EMPTY = new Map<Phase | undefined, Buffer>(PHASES.map((phase) => [phase, encodeEmpty(phase)]));

const MODE = process.argv[2] ?? 'passthrough';
if (!['passthrough', 'encode', 'empty', 'route'].includes(MODE)) throw new Error(`echo mode: passthrough, encode, empty or route, not ${MODE}`);

/** `route` mode: an EPP whose director routes each request (its own ext_proc port gets no traffic). */
const epp =
  MODE === 'route'
    ? await startEpp({
        grpcPort: 0,
        grpcHealthPort: -1,
        host: '127.0.0.1',
        secureServing: false,
        store: fixedStore(['127.0.0.11:8000', '127.0.0.12:8000', '127.0.0.13:8000', '127.0.0.14:8000']),
        logger: silentLogger(),
        config: { origin: 'bench: echo + routing', text: benchConfigText(BENCH_DEFAULT_PLUGINS) },
      })
    : undefined;
let routed = 0;

/** Routes one request the way the EPP's stream hands it to the director; returns its response stream's end. */
function route(m: ProcessingRequest, headers: Record<string, string>): Promise<RoutingDecision> | undefined {
  if (epp === undefined || m.request.case !== 'requestBody' || !m.request.value.endOfStream) return undefined;
  const id = `echo-${++routed}`;
  return epp.director.route({
    headers: { ...headers, 'x-request-id': id },
    requestId: id,
    body: m.request.value.body,
    path: headers[':path'] ?? '/v1/chat/completions',
    proxyMetadata: {},
    receivedAt: Date.now(),
    signal: new RequestAbort(),
  });
}

function reply(m: ProcessingRequest): Uint8Array {
  const r = m.request;
  if (MODE === 'empty' || (r.case !== 'requestBody' && r.case !== 'responseBody')) {
    return MODE === 'encode' ? encodeEmpty(r.case as Phase) : (EMPTY.get(r.case) as Buffer);
  }
  const { body, endOfStream } = r.value;
  if (MODE === 'passthrough' || MODE === 'route') return encodeStreamedBodyReply(r.case, body, endOfStream);
  return toBinary(
    ProcessingResponseSchema,
    create(ProcessingResponseSchema, {
      response: { case: r.case, value: { response: { bodyMutation: { mutation: { case: 'streamedResponse', value: { body, endOfStream } } } } } },
    }),
  );
}

// The EPP's service definition (same path and request codec); the replies are already bytes, so the response
// serializer passes them through (as a view, like the EPP's).
const service = {
  Process: {
    ...externalProcessorService.Process,
    responseSerialize: (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies ServiceDefinition;

const server = new Server({ 'grpc.max_receive_message_length': 64 << 20 });
server.addService(service, {
  Process: (call: ServerDuplexStream<ProcessingRequest, Uint8Array>) => {
    let headers: Record<string, string> = {};
    let decision: Promise<RoutingDecision> | undefined;
    call.on('data', (m: ProcessingRequest) => {
      call.write(reply(m));
      if (epp === undefined) return;
      if (m.request.case === 'requestHeaders') headers = readHeaders(m.request.value);
      decision ??= route(m, headers);
      if (m.request.case === 'responseBody' && m.request.value.endOfStream) void decision?.then((d) => d.response.finish());
    });
    call.on('end', () => call.end());
    call.on('error', () => {});
  },
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
announce(port, async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await epp?.close();
});
