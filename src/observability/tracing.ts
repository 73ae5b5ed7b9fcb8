/**
 * OpenTelemetry tracing (epp-spec §7.4). One `gateway.request` span per request (kind SERVER, tracer
 * `gateway-api-inference-extension/epp/extproc`, attribute `commit-sha`) with a `gateway.request_orchestration`
 * child around the director's request path; W3C trace context (+ baggage) of the request span is injected into
 * the upstream request's headers.
 *
 * Off unless `--tracing` is set or the environment asks for traces (`tracingEnabled`). Upstream defaults
 * `--tracing` to true and prints spans to stdout; we default to off, so an EPP without an OTel setup pays nothing.
 * Environment, as upstream: OTEL_SERVICE_NAME (gateway-api-inference-extension/epp), OTEL_TRACES_EXPORTER
 * (`console` = one JSON line per span on stdout; `otlp` = OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT, default
 * http://localhost:4317; `none`), OTEL_TRACES_SAMPLER (only `parentbased_traceidratio`), OTEL_TRACES_SAMPLER_ARG
 * (0.1).
 *
 * Divergence: an incoming `traceparent` is continued (upstream ignores it), so the EPP's spans join the proxy's
 * trace, and the parent's sampling decision wins.
 *
 * Nothing is registered globally (no global tracer provider, propagator or context manager): spans are parented
 * explicitly, so this module never changes what other libraries in the process see.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../framework/plugin.ts';

export { tracingEnabled } from './tracing-env.ts';

export const TRACER_NAME = 'gateway-api-inference-extension/epp/extproc';
export const REQUEST_SPAN = 'gateway.request';
export const ORCHESTRATION_SPAN = 'gateway.request_orchestration';
const DEFAULT_SERVICE_NAME = 'gateway-api-inference-extension/epp';
const DEFAULT_SAMPLER_RATIO = 0.1;

/** The tracing surface the data planes use. Absent (undefined) when tracing is off. */
export interface RequestTracer {
  /** Starts the request span, continuing a W3C trace context found in the request headers. */
  startRequest(headers: Readonly<Record<string, string>>): RequestSpan;
  /** Header names the propagator writes (`traceparent`, `tracestate`, `baggage`), lower case. */
  readonly fields: ReadonlySet<string>;
  /** Flushes pending spans and stops the exporter. */
  shutdown(): Promise<void>;
}

export interface RequestSpan {
  /** Runs `fn` inside the `gateway.request_orchestration` child span (ended when `fn` settles). */
  orchestrate<T>(fn: () => Promise<T>): Promise<T>;
  /** Trace-context headers for the upstream request, as [name, value] pairs. */
  inject(): Array<[string, string]>;
  /** Ends the request span; `error` marks it failed. Idempotent. */
  end(error?: string): void;
}

export interface TracerOptions {
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Overrides the exporter chosen from the environment (tests, benchmarks). */
  readonly exporter?: SpanExporter;
  /** Export each span as it ends instead of batching (tests). */
  readonly synchronous?: boolean;
  /** Overrides OTEL_TRACES_SAMPLER_ARG. */
  readonly samplerRatio?: number;
  readonly commit?: string;
  readonly buildRef?: string;
}

export async function createRequestTracer(o: TracerOptions): Promise<RequestTracer> {
  const env = o.env ?? process.env;
  const serviceName = env.OTEL_SERVICE_NAME || DEFAULT_SERVICE_NAME;
  const sampler = env.OTEL_TRACES_SAMPLER;
  if (sampler !== undefined && sampler !== '' && sampler !== 'parentbased_traceidratio') {
    o.logger.warn({ sampler }, 'OTEL_TRACES_SAMPLER: only parentbased_traceidratio is supported; using it');
  }
  let ratio = o.samplerRatio ?? DEFAULT_SAMPLER_RATIO;
  const arg = env.OTEL_TRACES_SAMPLER_ARG;
  if (o.samplerRatio === undefined && arg !== undefined && arg !== '') {
    const n = Number(arg);
    if (Number.isFinite(n) && n >= 0 && n <= 1) ratio = n;
    else o.logger.warn({ value: arg }, `OTEL_TRACES_SAMPLER_ARG: expected a ratio in [0, 1]; using ${DEFAULT_SAMPLER_RATIO}`);
  }
  const exporter = o.exporter ?? (await exporterFromEnv(env, o.logger));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.version': o.buildRef ?? 'dev' }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanProcessors: exporter ? [o.synchronous ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)] : [],
  });
  const tracer = provider.getTracer(TRACER_NAME);
  const propagator = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
  const commit = o.commit ?? 'dev';
  o.logger.info({ serviceName, exporter: exporter ? exporterName(env, o.exporter) : 'none', samplerRatio: ratio }, 'tracing enabled');
  return {
    fields: new Set(propagator.fields().map((f) => f.toLowerCase())),
    startRequest(headers) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, headerGetter);
      const span = tracer.startSpan(REQUEST_SPAN, { kind: SpanKind.SERVER, attributes: { 'commit-sha': commit } }, parent);
      return new OtelRequestSpan(tracer, span, trace.setSpan(parent, span), (ctx, carrier) => propagator.inject(ctx, carrier, headerSetter));
    },
    async shutdown() {
      await provider.shutdown();
    },
  };
}

class OtelRequestSpan implements RequestSpan {
  readonly #tracer: Tracer;
  readonly #span: Span;
  readonly #ctx: Context;
  readonly #inject: (ctx: Context, carrier: Record<string, string>) => void;
  #ended = false;

  constructor(tracer: Tracer, span: Span, ctx: Context, inject: (ctx: Context, carrier: Record<string, string>) => void) {
    this.#tracer = tracer;
    this.#span = span;
    this.#ctx = ctx;
    this.#inject = inject;
  }

  async orchestrate<T>(fn: () => Promise<T>): Promise<T> {
    const span = this.#tracer.startSpan(ORCHESTRATION_SPAN, undefined, this.#ctx);
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  }

  inject(): Array<[string, string]> {
    const carrier: Record<string, string> = {};
    this.#inject(this.#ctx, carrier);
    return Object.entries(carrier);
  }

  end(error?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined) this.#span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    this.#span.end();
  }
}

const headerGetter: TextMapGetter<Readonly<Record<string, string>>> = {
  get: (carrier, key) => carrier[key.toLowerCase()],
  keys: (carrier) => Object.keys(carrier),
};

const headerSetter = {
  set: (carrier: Record<string, string>, key: string, value: string): void => {
    carrier[key.toLowerCase()] = value;
  },
};

function exporterName(env: NodeJS.ProcessEnv, injected: SpanExporter | undefined): string {
  if (injected) return 'custom';
  return chosenExporter(env);
}

function chosenExporter(env: NodeJS.ProcessEnv): string {
  const e = env.OTEL_TRACES_EXPORTER;
  if (e !== undefined && e !== '') return e;
  // An endpoint without an exporter name means "send it there"; otherwise upstream's default, the console.
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : 'console';
}

async function exporterFromEnv(env: NodeJS.ProcessEnv, logger: Logger): Promise<SpanExporter | undefined> {
  const name = chosenExporter(env);
  switch (name) {
    case 'none':
      return undefined;
    case 'otlp': {
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
      const url = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://localhost:4317';
      return new OTLPTraceExporter({ url });
    }
    case 'console':
      return new JsonLineSpanExporter((line) => process.stdout.write(line));
    default:
      logger.warn({ exporter: name }, 'OTEL_TRACES_EXPORTER: unknown exporter (expected console, otlp or none); using console');
      return new JsonLineSpanExporter((line) => process.stdout.write(line));
  }
}

/** One JSON object per span and line, so spans interleave cleanly with the pino log lines on stdout. */
export class JsonLineSpanExporter implements SpanExporter {
  readonly #write: (line: string) => void;
  constructor(write: (line: string) => void) {
    this.#write = write;
  }
  export(spans: ReadableSpan[], done: (result: { code: number }) => void): void {
    for (const s of spans) {
      const ctx = s.spanContext();
      this.#write(
        `${JSON.stringify({
          span: s.name,
          traceId: ctx.traceId,
          spanId: ctx.spanId,
          parentSpanId: s.parentSpanContext?.spanId,
          kind: SpanKind[s.kind],
          startTime: hrToIso(s.startTime),
          durationMs: s.duration[0] * 1e3 + s.duration[1] / 1e6,
          status: s.status.code === SpanStatusCode.ERROR ? { error: s.status.message ?? '' } : 'ok',
          attributes: s.attributes,
          resource: s.resource.attributes,
        })}\n`,
      );
    }
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

function hrToIso(t: readonly [number, number]): string {
  return new Date(t[0] * 1e3 + t[1] / 1e6).toISOString();
}
