/**
 * Child process of bench/response-path.bench.ts: the floor of an ext_proc server on this stack. A bare
 * grpc-js server for `ExternalProcessor/Process` that decodes each request with the same generated codec as
 * the EPP (any ext_proc server must) and answers every message at once with a fixed, pre-encoded, empty
 * reply of the same phase. No routing, no body handling, no metrics, no per-stream state.
 * With argv[2] = `encode`, each reply is created and encoded per message instead (the generated codec's cost on
 * the reply side, as a server that builds its replies pays; the default is the floor: no work at all).
 */
import { toBinary, create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { ProcessingResponseSchema, type ProcessingRequest } from '../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { externalProcessorService } from '../src/server/extproc/service.ts';
import { announce } from './support/child.ts';

type Phase = Exclude<ProcessingRequest['request']['case'], undefined>;
const PHASES: readonly Phase[] = ['requestHeaders', 'requestBody', 'requestTrailers', 'responseHeaders', 'responseBody', 'responseTrailers'];
const encodeReply = (phase: Phase): Buffer =>
  Buffer.from(toBinary(ProcessingResponseSchema, create(ProcessingResponseSchema, { response: { case: phase, value: {} } })));
const REPLIES = new Map<Phase | undefined, Buffer>(PHASES.map((phase) => [phase, encodeReply(phase)]));

const ENCODE = process.argv[2] === 'encode';
const reply = (phase: Phase | undefined): Buffer => (ENCODE ? encodeReply(phase as Phase) : (REPLIES.get(phase) as Buffer));

// The EPP's service definition (same path and request codec); the replies are already bytes, so the response
// serializer passes them through.
const service = {
  Process: { ...externalProcessorService.Process, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
} satisfies ServiceDefinition;

const server = new Server({ 'grpc.max_receive_message_length': 64 << 20 });
server.addService(service, {
  Process: (call: ServerDuplexStream<ProcessingRequest, Buffer>) => {
    call.on('data', (m: ProcessingRequest) => call.write(reply(m.request.case)));
    call.on('end', () => call.end());
    call.on('error', () => {});
  },
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
announce(port, () => new Promise((resolve) => server.tryShutdown(() => resolve())));
