/**
 * The one error of an ext_proc stream that is not the request's fault but the proxy's: a message sequence no
 * Envoy can send (epp-spec §1.2). The stream answers it with gRPC INVALID_ARGUMENT instead of an HTTP error
 * reply. Contract: thrown only by the phase checks of the stream and its response side; its message names the
 * unexpected phase.
 */
export class ProtocolError extends Error {}

export function protocolError(message: string): ProtocolError {
  return new ProtocolError(`unexpected ext_proc message: ${message}`);
}
