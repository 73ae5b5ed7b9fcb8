/**
 * The ext_proc gRPC server: one `ExtProcStream` per call. Tracks open streams so shutdown can stop accepting,
 * let open streams finish up to a deadline, then end the rest (their completion hooks see `aborted`).
 */
import { experimental, Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import type { ProcessingRequest } from '../../gen/envoy/service/ext_proc/v3/external_processor_pb.ts';
import type { Reply } from './codec.ts';
import { externalProcessorService, EXT_PROC_SERVICE_NAME } from './service.ts';
import { ExtProcStream, type ExtProcStreamContext } from './stream.ts';
import type { TlsMaterial } from './tls.ts';
import { RelayPolicy } from '../../runtime/response-relay.ts';
import { TimerWheel } from '../../util/timer-wheel.ts';
import { healthImplementation } from './health.ts';
import { service as healthService } from 'grpc-health-check';

export interface ExtProcServerOptions extends Omit<ExtProcStreamContext, 'onClosed' | 'relay'> {
  /** Non-streaming response bodies are buffered for the hooks up to this size; beyond, passed through. */
  readonly maxBufferedResponseBytes?: number;
  /** TLS material, or undefined for plaintext (h2c). */
  readonly tls: TlsMaterial | undefined;
  /**
   * Serves the certificate this provider publishes instead of `tls`, and follows its updates without dropping
   * open connections (`--enable-cert-reload`).
   */
  readonly certificates?: experimental.CertificateProvider;
  /** Also serve grpc.health.v1 on the ext_proc port (`--health-checking`). */
  readonly healthChecking?: boolean;
  readonly isServing?: () => boolean;
}

/**
 * Resolution of the idle limits' wheel: 1/100 of the limit, between 5 ms and 1 s — the default 10 min limit fires
 * at most 1 s late, a 2 s one at most 20 ms late.
 */
export function idleWheelResolutionMs(idleTimeoutMs: number): number {
  return Math.min(1000, Math.max(5, Math.floor(idleTimeoutMs / 100)));
}

export class ExtProcServer {
  readonly #server: Server;
  readonly #streams = new Set<ExtProcStream>();
  readonly #options: ExtProcServerOptions;
  #port = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(options: ExtProcServerOptions) {
    this.#options = options;
    // BUFFERED-mode bodies arrive in one message: allow large messages (the body limit is enforced per stream).
    this.#server = new Server({
      'grpc.max_receive_message_length': Math.max(8 << 20, options.maxRequestBodyBytes + (1 << 20)),
      'grpc.max_send_message_length': 64 << 20,
    });
    const ctx: ExtProcStreamContext = {
      ...options,
      // Idle limits share one coarse wheel (one native timer, not one per stream; they fire up to one resolution late).
      ...(options.idleTimeoutMs !== undefined && options.idleTimeoutMs > 0 && options.idleTimers === undefined
        ? { idleTimers: new TimerWheel(idleWheelResolutionMs(options.idleTimeoutMs)).asTimerSource() }
        : {}),
      relay: new RelayPolicy({
        dataPlane: 'ext_proc',
        metrics: options.metrics,
        logger: options.logger,
        ...(options.maxBufferedResponseBytes !== undefined ? { maxBufferedResponseBytes: options.maxBufferedResponseBytes } : {}),
      }),
      onClosed: (s) => {
        this.#streams.delete(s);
        if (this.#streams.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
      },
    };
    this.#server.addService(externalProcessorService, {
      Process: (call: ServerDuplexStream<ProcessingRequest, Reply>) => {
        this.#streams.add(new ExtProcStream(call, ctx));
      },
    });
    if (options.healthChecking) this.#server.addService(healthService, healthImplementation(options.isServing ?? (() => true)));
  }

  static readonly serviceName = EXT_PROC_SERVICE_NAME;

  /** Streams currently open (for draining and leak checks). */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** Resolves once no stream is open (every stream's completion has run). */
  whenIdle(): Promise<void> {
    if (this.#streams.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  get port(): number {
    return this.#port;
  }

  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    const tls = this.#options.tls;
    // grpc-js's parameter names are swapped against its constructor: the first argument is the identity provider.
    const creds = this.#options.certificates
      ? experimental.createCertificateProviderServerCredentials(this.#options.certificates, null, false)
      : tls
      ? ServerCredentials.createSsl(null, [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.certPem) }], false)
      : ServerCredentials.createInsecure();
    this.#port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(`${host}:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    return this.#port;
  }

  /**
   * Stops accepting new streams, waits up to `graceMs` for open streams to finish, then ends the rest.
   * Resolves when the server is closed.
   */
  async shutdown(graceMs: number): Promise<void> {
    const drained = new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    if (this.#streams.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      });
      await Promise.race([idle, deadline]);
      clearTimeout(timer);
      for (const s of [...this.#streams]) s.shutdown();
      if (this.#streams.size > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      this.#server.forceShutdown();
    }
    await drained;
  }
}
