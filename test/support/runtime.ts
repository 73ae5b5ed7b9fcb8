/** Builds the runtime without a server: a Director over a fixed pool, with hand-written hooks and manual timers. */
import { loadConfig } from './config.ts';
import type { Plugin } from '../../src/framework/plugin.ts';
import { EppMetrics } from '../../src/observability/metrics.ts';
import { Director } from '../../src/runtime/director.ts';
import type { RequestInput } from '../../src/runtime/request-path.ts';
import type { CompiledHooks } from '../../src/runtime/hooks.ts';
import { TimerWheel, type TimerSource } from '../../src/util/timer-wheel.ts';
import { DEFAULT_RESPONSE_PATH_OPTIONS, type ResponsePathOptions } from '../../src/runtime/response-path.ts';
import { Scheduler } from '../../src/runtime/scheduler.ts';
import { InFlightTracker } from '../../src/runtime/inflight.ts';
import { PluginMetricSources } from '../../src/runtime/plugin-metrics.ts';
import { createRandomSource } from '../../src/util/random.ts';
import { configText, fixedStore } from './epp.ts';
import { ManualClock, RecordingLogger } from './doubles.ts';
import { ManualTime } from '../flowcontrol/helpers.ts';
import { builtinRegistry } from './registry.ts';

/** Native timers that only fire when told (`advance`); `started` counts setTimeout calls, `armed` the pending ones. */
export class ManualTimers extends ManualTime implements TimerSource {
  started = 0;
  override setTimeout(fn: () => void, ms: number): unknown {
    this.started++;
    return super.setTimeout(fn, ms);
  }
}

export interface TestDirector {
  readonly director: Director;
  readonly metrics: EppMetrics;
  readonly timers: ManualTimers;
  readonly wheel: TimerWheel;
  readonly logger: RecordingLogger;
  readonly clock: ManualClock;
}

/** A Director over a fixed 3-endpoint pool, a random picker, and exactly the hooks given (config order). */
export function testDirector(
  hooks: Partial<CompiledHooks> = {},
  options: { responsePath?: Partial<ResponsePathOptions>; requestHookTimeoutMs?: number; yieldToLoop?: (fn: () => void) => void } = {},
): TestDirector {
  const clock = new ManualClock();
  const random = createRandomSource(7);
  const logger = new RecordingLogger();
  const store = fixedStore();
  const config = loadConfig(
    { text: configText(), origin: 'test' },
    { registry: builtinRegistry(), handle: (lookup) => ({ logger, clock, random, plugin: lookup, endpoints: () => store.endpoints(), inflight: new InFlightTracker(), metrics: new PluginMetricSources() }) },
  );
  const metrics = new EppMetrics();
  const timers = new ManualTimers();
  const wheel = new TimerWheel(10, timers);
  const director = new Director({
    store,
    parser: config.parser,
    scheduler: new Scheduler(config.profileHandler, config.profiles, metrics),
    hooks: { prepareData: null, admit: null, preRequest: null, responseHeaders: null, responseChunk: null, responseComplete: null, ...hooks },
    metrics,
    logger,
    random,
    now: () => clock.now(),
    responsePath: { ...DEFAULT_RESPONSE_PATH_OPTIONS, ...options.responsePath },
    ...(options.requestHookTimeoutMs !== undefined ? { requestHookTimeoutMs: options.requestHookTimeoutMs } : {}),
    ...(options.yieldToLoop !== undefined ? { yieldToLoop: options.yieldToLoop } : {}),
    timerWheel: wheel,
  });
  return { director, metrics, timers, wheel, logger, clock };
}

const encoder = new TextEncoder();

/** A chat request's RoutingInput (streaming unless told otherwise). */
export function chatInput(signal: AbortSignal = new AbortController().signal, stream = true): RequestInput {
  return {
    headers: { 'x-request-id': 'r-1' },
    requestId: 'r-1',
    body: encoder.encode(JSON.stringify({ model: 'm', stream, messages: [{ role: 'user', content: 'hi' }] })),
    path: '/v1/chat/completions',
    proxyMetadata: {},
    receivedAt: 1_700_000_000_000,
    signal,
  };
}

/** A plugin with the given typed name and hook methods. */
export function hookPlugin<T extends object>(name: string, methods: T): Plugin & T {
  return { typedName: { type: 'test-hook', name }, ...methods };
}

/** The value of one counter series, 0 when absent. */
export async function counterValue(metrics: EppMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await metrics.registry.metrics();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}
