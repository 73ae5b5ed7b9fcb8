/**
 * The grpc-js service definition for `envoy.service.ext_proc.v3.ExternalProcessor/Process`, wired to the
 * protobuf-es codecs generated from proto/ (grpc-js needs only a path and (de)serialisers).
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { ServiceDefinition } from '@grpc/grpc-js';
import {
  ProcessingRequestSchema,
  ProcessingResponseSchema,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';

export const EXT_PROC_SERVICE_NAME = 'envoy.service.ext_proc.v3.ExternalProcessor';

export const externalProcessorService = {
  Process: {
    path: `/${EXT_PROC_SERVICE_NAME}/Process`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: ProcessingRequest) => Buffer.from(toBinary(ProcessingRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(ProcessingRequestSchema, b),
    responseSerialize: (m: ProcessingResponse) => Buffer.from(toBinary(ProcessingResponseSchema, m)),
    responseDeserialize: (b: Buffer) => fromBinary(ProcessingResponseSchema, b),
  },
} satisfies ServiceDefinition;
