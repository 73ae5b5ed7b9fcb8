// Closed-loop load against one simulated server in virtual time: `concurrency` clients, each sending its next
// request as soon as the previous one finishes. Used by the acceptance tests (sim-spec §6.5 check 4) and by
// `sweep.ts --virtual`; runs in milliseconds of CPU per simulated second, with no sockets.

import { VirtualClock } from './clock.ts';
import type { SimServerOptions } from './config.ts';
import { SimServer } from './sim-server.ts';
import { mean, percentile } from './stats.ts';

export interface ClosedLoopSpec {
  readonly serverOptions?: Partial<SimServerOptions>;
  readonly concurrency: number;
  /** Prompts used in order, cycling. */
  readonly prompts: readonly string[];
  readonly maxTokens: number;
  /** Simulated time before measurement starts. */
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Scheduler-state sampling period (the EPP's 50 ms scrape interval by default). */
  readonly sampleEveryMs?: number;
}

export interface LoadResult {
  readonly concurrency: number;
  /** Requests that arrived in the window and finished. */
  readonly completed: number;
  /** Output tokens delivered during the window, per simulated second. */
  readonly outputTokensPerSecond: number;
  readonly ttftP50Ms: number;
  readonly ttftP90Ms: number;
  readonly itlP50Ms: number;
  readonly itlP90Ms: number;
  readonly meanRunning: number;
  readonly meanWaiting: number;
  readonly maxWaiting: number;
  readonly meanKvUsage: number;
  /** Preemptions during the window. */
  readonly preemptions: number;
  /** Prefix-cache hit tokens / queried tokens during the window. */
  readonly prefixHitRatio: number;
}

export function runClosedLoop(spec: ClosedLoopSpec): LoadResult {
  const clock = new VirtualClock();
  const server = new SimServer({ id: 'sweep-0', clock, options: spec.serverOptions ?? {}, realNowMs: () => clock.nowMs() });
  const startMs = spec.warmupMs;
  const endMs = spec.warmupMs + spec.measureMs;
  const ttfts: number[] = [];
  const itls: number[] = [];
  let completed = 0;
  let windowTokens = 0;
  let next = 0;
  let stopped = false;

  const send = (): void => {
    if (stopped) return;
    const prompt = spec.prompts[next++ % spec.prompts.length] as string;
    const arrivalMs = clock.nowMs();
    const inWindow = arrivalMs >= startMs;
    let lastMs = arrivalMs;
    server.admit(
      { model: server.baseModel, prompts: [{ text: prompt, tokenIds: null, echoText: prompt }], n: 1, maxTokens: spec.maxTokens, ignoreEos: true, cacheSalt: undefined },
      () => ({
        onToken(index, atMs) {
          if (atMs >= startMs && atMs < endMs) windowTokens++;
          if (inWindow) {
            if (index === 0) ttfts.push(atMs - arrivalMs);
            else itls.push(atMs - lastMs);
          }
          lastMs = atMs;
        },
        onFinish(_seq, _reason) {
          if (inWindow && clock.nowMs() <= endMs) completed++;
          clock.setTimer(clock.nowMs(), send);
        },
      }),
    );
  };
  for (let c = 0; c < spec.concurrency; c++) send();

  const running: number[] = [];
  const waiting: number[] = [];
  const kv: number[] = [];
  const sampleEvery = spec.sampleEveryMs ?? 50;
  clock.advanceTo(startMs);
  const before = server.metrics.counters();
  for (let t = startMs; t < endMs; t += sampleEvery) {
    clock.advanceTo(t);
    const s = server.state();
    running.push(s.running);
    waiting.push(s.waiting);
    kv.push(s.kvUsage);
  }
  clock.advanceTo(endMs);
  const after = server.metrics.counters();
  stopped = true;
  server.close();
  const queried = after.prefixQueries - before.prefixQueries;
  return {
    concurrency: spec.concurrency,
    completed,
    outputTokensPerSecond: windowTokens / (spec.measureMs / 1000),
    ttftP50Ms: percentile(ttfts, 50),
    ttftP90Ms: percentile(ttfts, 90),
    itlP50Ms: percentile(itls, 50),
    itlP90Ms: percentile(itls, 90),
    meanRunning: mean(running),
    meanWaiting: mean(waiting),
    maxWaiting: Math.max(...waiting),
    meanKvUsage: mean(kv),
    preemptions: after.preemptions - before.preemptions,
    prefixHitRatio: queried === 0 ? 0 : (after.prefixHits - before.prefixHits) / queried,
  };
}
