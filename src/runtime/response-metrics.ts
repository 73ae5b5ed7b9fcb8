/**
 * What the response path reports (response-stream.ts): token usage, the end-of-response figures, hook time per
 * phase, and hook failures and timeouts (logged once per stream and plugin, always counted). One reason to
 * change: the response path's metrics and logs.
 */
import { toError } from '../framework/errors.ts';
import type { Logger, Plugin } from '../framework/plugin.ts';
import type { Usage } from '../framework/request.ts';
import type { EppMetrics, ResponseHookPhase } from '../observability/metrics.ts';
import type { ExtensionPoint, HookPolicy } from './hook-runner.ts';
import type { HookScope } from './hook-scope.ts';

/** A request's model names as metric labels. */
export interface ModelLabels {
  readonly model_name: string;
  readonly target_model_name: string;
}

/** Usage seen in the response (input, output and cached-prompt tokens). */
export function recordUsage(m: EppMetrics, labels: ModelLabels, usage: Usage): void {
  if (usage.promptTokens > 0) m.inputTokens.observe(labels, usage.promptTokens);
  if (usage.completionTokens > 0) m.outputTokens.observe(labels, usage.completionTokens);
  if (usage.cachedTokens !== undefined) m.promptCachedTokens.observe(labels, usage.cachedTokens);
}

/** The end of a response: its duration since the request arrived, its size, the time per output token. */
export function observeEndOfResponse(m: EppMetrics, labels: ModelLabels, seconds: number, responseBytes: number, usage: Usage | undefined): void {
  m.requestDuration.observe(labels, seconds);
  m.responseSizes.observe(labels, responseBytes);
  const out = usage?.completionTokens ?? 0;
  if (out > 0 && seconds > 0) m.normalizedTimePerOutputToken.observe(labels, seconds / out);
}

/** Time spent in one phase's hooks. */
export function observeHookTime(m: EppMetrics, phase: ResponseHookPhase, seconds: number): void {
  m.responseHookDuration.observe({ extension_point: phase }, seconds);
}

/**
 * The hook policy of one response stream: a failing hook is counted every time and logged once per stream and
 * plugin; a hook that timed out is counted, logged, and — at the chunk phase — quarantined for the rest of the
 * stream (the runner skips it). The stream itself never fails because of a hook. One small object per stream
 * (its methods are shared), made when the stream first runs a hook.
 */
export class ResponseHookPolicy implements HookPolicy {
  constructor(
    readonly metrics: EppMetrics,
    readonly logger: Logger,
    readonly requestId: string,
    readonly chunkPhase: ResponseHookPhase,
  ) {}

  failed(hook: Plugin, point: ExtensionPoint, err: unknown, scope: HookScope): void {
    const tn = hook.typedName;
    this.metrics.responseHookErrors.inc({ extension_point: point, plugin_type: tn.type, plugin_name: tn.name });
    const logged = (scope.logged ??= new Set());
    if (logged.has(hook)) return;
    logged.add(hook);
    this.logger.error(
      { requestId: this.requestId, plugin: tn.name, pluginType: tn.type, extensionPoint: point, err: toError(err) },
      'response hook failed; the stream carries on (further failures of this plugin on this stream are only counted)',
    );
  }

  timedOut(hook: Plugin, point: ExtensionPoint, timeoutMs: number, scope: HookScope): void {
    const tn = hook.typedName;
    this.metrics.responseHookTimeouts.inc({ extension_point: point, plugin_type: tn.type, plugin_name: tn.name });
    if (point === this.chunkPhase) (scope.quarantined ??= new Set()).add(hook);
    this.logger.error(
      { requestId: this.requestId, plugin: tn.name, pluginType: tn.type, extensionPoint: point, timeoutMs },
      'response hook timed out and was abandoned; it is skipped for the rest of this stream',
    );
  }
}
