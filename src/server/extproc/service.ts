/**
 * The grpc-js service definition for `envoy.service.ext_proc.v3.ExternalProcessor/Process`, wired to the
 * protobuf-es codecs generated from proto/ (grpc-js needs only a path and (de)serialisers). No serialiser
 * copies: encoded bytes are handed to grpc-js as a Buffer view of the encoder's output (grpc-js copies them
 * once into its frame), decoded `bytes` fields are views of grpc-js's message buffer. Replies may also be
 * pre-encoded bytes (codec.ts: the hand-encoded streamed body replies), passed through unchanged.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { ServiceDefinition } from '@grpc/grpc-js';
import {
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  type ProcessingRequest,
} from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import { asBuffer, serializeReply, type Reply } from './codec.ts';

export const EXT_PROC_SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';

export const externalProcessorService = {
  Process: {
    path: `/${EXT_PROC_SERVICE_NAME}/Process`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: ProcessingRequest) => asBuffer(toBinary(ProcessingRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(ProcessingRequestSchema, b),
    responseSerialize: (m: Reply) => serializeReply(m),
    responseDeserialize: (b: Buffer) => fromBinary(ProcessingResponseSchema, b),
  },
} satisfies ServiceDefinition;
