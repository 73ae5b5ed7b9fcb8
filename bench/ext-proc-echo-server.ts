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
 *                          like-with-like fix; Envoy in FULL_DUPLEX_STREAMED mode would forward no body).
 */
import { toBinary, create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { ProcessingResponseSchema, type ProcessingRequest } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { encodeStreamedBodyReply } from '../src/server/extproc/codec.ts';
import { externalProcessorService } from '../src/server/extproc/service.ts';
import { announce } from './support/child.ts';

type Phase = Exclude<ProcessingRequest['request']['case'], undefined>;
const PHASES: readonly Phase[] = ['requestHeaders', 'requestBody', 'requestTrailers', 'responseHeaders', 'responseBody', 'responseTrailers'];
const encodeEmpty = (phase: Phase): Buffer =>
  Buffer.from(toBinary(ProcessingResponseSchema, create(ProcessingResponseSchema, { response: { case: phase, value: {} } })));
const EMPTY = new Map<Phase | undefined, Buffer>(PHASES.map((phase) => [phase, encodeEmpty(phase)]));

const MODE = process.argv[2] ?? 'passthrough';
if (!['passthrough', 'encode', 'empty'].includes(MODE)) throw new Error(`echo mode: passthrough, encode or empty, not ${MODE}`);

function reply(m: ProcessingRequest): Uint8Array {
  const r = m.request;
  if (MODE === 'empty' || (r.case !== 'requestBody' && r.case !== 'responseBody')) {
    return MODE === 'encode' ? encodeEmpty(r.case as Phase) : (EMPTY.get(r.case) as Buffer);
  }
  const { body, endOfStream } = r.value;
  if (MODE === 'passthrough') return encodeStreamedBodyReply(r.case, body, endOfStream);
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
    call.on('data', (m: ProcessingRequest) => call.write(reply(m)));
    call.on('end', () => call.end());
    call.on('error', () => {});
  },
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
announce(port, () => new Promise((resolve) => server.tryShutdown(() => resolve())));
