/**
 * `grpc.health.v1.Health` with upstream's semantics (epp-spec §7.2, leader election off): `Check` answers
 * SERVING for any service name once the pool is known, NOT_SERVING before; `List` reports the ext_proc
 * service; `Watch` is unimplemented. The service definition comes from the grpc-health-check package.
 */
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { EXT_PROC_SERVICE_NAME } from './service.ts';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

export function healthImplementation(isServing: () => boolean) {
  const current = (): ServingStatus => (isServing() ? 'SERVING' : 'NOT_SERVING');
  return {
    Check(_call: ServerUnaryCall<{ service?: string }, { status: ServingStatus }>, cb: sendUnaryData<{ status: ServingStatus }>) {
      cb(null, { status: current() });
    },
    List(_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<{ statuses: Record<string, { status: ServingStatus }> }>) {
      cb(null, { statuses: { [EXT_PROC_SERVICE_NAME]: { status: current() } } });
    },
    Watch(call: ServerWritableStream<unknown, unknown>) {
      call.emit('error', { code: status.UNIMPLEMENTED, details: 'Watch is not implemented' });
    },
  };
}

/** Starts the plaintext health server on `port` (0 = ephemeral). Resolves to the bound port. */
export async function startHealthServer(port: number, host: string, isServing: () => boolean): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(healthService, healthImplementation(isServing));
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port: bound };
}
