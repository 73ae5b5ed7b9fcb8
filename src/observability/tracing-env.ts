/**
 * When tracing runs, decided without loading OpenTelemetry (the CLI asks before anything else is loaded).
 */

/**
 * An explicit `--tracing` wins; otherwise tracing is on when OTEL_TRACES_EXPORTER names an exporter (not
 * `none`) or an OTLP endpoint is set, and OTEL_SDK_DISABLED is not `true`. Upstream defaults `--tracing` to true;
 * we default to off so that an EPP without an OpenTelemetry setup pays nothing.
 */
export function tracingEnabled(flag: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (flag !== undefined) return flag;
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER;
  if (exporter !== undefined && exporter !== '') return exporter !== 'none';
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

