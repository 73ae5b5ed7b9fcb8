/**
 * The routing benchmark's load generator, run as its own process (`child_process.fork`) so its CPU does not
 * share an event loop with the gateway or the simulators. The parent sends one `run` message; the generator
 * replays the seeded schedule (workload.ts) against the gateway in real time (simulated seconds × time scale),
 * streams every request, and reports phase changes, progress and finally per-stage client statistics.
 *
 * Measured per request (client side, like inference-perf): TTFT to the first non-empty token chunk, the gaps
 * between token chunks (ITL), e2e, NTPOT = e2e / output tokens, status, timeout, the serving pod. A request
 * belongs to the stage in which it was sent; throughput counts the requests that completed inside the stage.
 */
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { buildSchedule, PromptBook, stageStarts, type LoadSpec, type ScenarioSpec, type ScheduledRequest } from './workload.ts';
import { mean, quantiles, type ClientStageStats } from './stats.ts';

export interface LoadgenRun {
  readonly type: 'run';
  readonly scenario: ScenarioSpec;
  readonly load: LoadSpec;
  readonly gatewayUrl: string;
  /** The servers' base URLs (`http://host:port`), for the requests of bypass scenarios. */
  readonly serverUrls?: readonly string[];
  readonly model: string;
  readonly timeScale: number;
  /** Stop the ladder after a stage that ends with more than `backlogS` × rate requests outstanding (0 = never). */
  readonly earlyStopBacklogS: number;
  /** After an early stop, abort what is still outstanding after this many simulated seconds. */
  readonly drainS: number;
}

export type LoadgenMessage =
  | { readonly type: 'phase'; readonly stage: number; readonly realMs: number }
  | { readonly type: 'progress'; readonly stage: number; readonly sent: number; readonly done: number; readonly outstanding: number }
  | { readonly type: 'stopped'; readonly afterStage: number; readonly outstanding: number }
  | { readonly type: 'result'; readonly stages: ClientStageStats[]; readonly totalRealMs: number };

interface Outcome {
  readonly r: ScheduledRequest;
  sendMs: number;
  firstMs: number;
  endMs: number;
  outTokens: number;
  itls: number[];
  error: string | undefined;
  pod: string;
}

interface Session {
  context: { role: string; content: string }[];
  tokens: number;
}

const MAX_SESSION_TOKENS = 12_000;

export async function runLoad(run: LoadgenRun, emit: (m: LoadgenMessage) => void): Promise<void> {
  const { scenario, load, timeScale: k } = run;
  const schedule = buildSchedule(scenario, load);
  const book = new PromptBook(scenario, load.seed);
  const starts = stageStarts(load);
  const url = new URL(run.gatewayUrl);
  const path = `${url.pathname.replace(/\/$/, '')}/${scenario.api === 'chat' ? 'chat/completions' : 'completions'}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const sessions = new Map<number, Session>();
  const outcomes: Outcome[] = [];
  const lagByStage = new Map<number, number[]>();
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();

  let currentStage = -1;
  let outstanding = 0;
  let done = 0;
  let stopped = false;
  let cutting = false;
  const inflight = new Set<http.ClientRequest>();
  const t0 = performance.now();
  const simNow = (): number => (performance.now() - t0) / 1000 / k;
  const timeoutMs = load.timeoutS * 1000 * k;

  const lagTimer = setInterval(() => {
    const list = lagByStage.get(currentStage) ?? [];
    list.push(Math.max(0, lag.percentile(99) / 1e6 - 5)); // minus the 5 ms sampling resolution
    lagByStage.set(currentStage, list);
    lag.reset();
  }, 1000);
  const progressTimer = setInterval(() => emit({ type: 'progress', stage: currentStage, sent: outcomes.length, done, outstanding }), 1000);

  let finishAll: () => void = () => {};
  const allDone = new Promise<void>((resolve) => (finishAll = resolve));
  let arrivalsOver = false;
  const settle = (o: Outcome): void => {
    outstanding--;
    done++;
    if (arrivalsOver && outstanding === 0) finishAll();
    void o;
  };

  const send = (r: ScheduledRequest): void => {
    const o: Outcome = { r, sendMs: performance.now(), firstMs: 0, endMs: 0, outTokens: 0, itls: [], error: undefined, pod: '' };
    outcomes.push(o);
    outstanding++;
    let body: string;
    let sessionKey = -1;
    let question = '';
    if (scenario.api === 'chat') {
      sessionKey = r.group * scenario.promptsPerGroup + r.item;
      let s = sessions.get(sessionKey);
      if (s === undefined || s.tokens > MAX_SESSION_TOKENS) {
        s = { context: [{ role: 'system', content: book.system(r.group) }], tokens: scenario.systemTokens };
        sessions.set(sessionKey, s);
      }
      question = book.question(r);
      body = JSON.stringify({
        model: run.model,
        messages: [...s.context, { role: 'user', content: question }],
        max_tokens: r.maxTokens,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      });
    } else {
      body = JSON.stringify({
        model: run.model,
        prompt: book.prompt(r),
        max_tokens: r.maxTokens,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      });
    }
    let answer = '';
    let lastTokenMs = 0;
    let finished = false;
    const finish = (error: string | undefined): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      inflight.delete(req);
      o.endMs = performance.now();
      o.error = error !== undefined && cutting ? 'cut' : error;
      if (error === undefined && sessionKey >= 0) {
        const s = sessions.get(sessionKey);
        if (s !== undefined) {
          s.context.push({ role: 'user', content: question }, { role: 'assistant', content: answer });
          s.tokens += r.questionTokens + o.outTokens;
        }
      }
      settle(o);
    };
    const direct = r.bypass !== undefined ? run.serverUrls?.[r.bypass] : undefined;
    const target = direct !== undefined ? new URL(direct) : url;
    const targetPath = direct !== undefined ? `/v1/${scenario.api === 'chat' ? 'chat/completions' : 'completions'}` : path;
    const req = http.request(
      { host: target.hostname, port: target.port, path: targetPath, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        o.pod = direct !== undefined ? `direct-${r.bypass}` : String(res.headers['x-inference-pod'] ?? '');
        if (res.statusCode !== 200) {
          res.resume();
          res.on('end', () => finish(`http_${res.statusCode}`));
          res.on('error', () => finish(`http_${res.statusCode}`));
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        let sawDone = false;
        let streamError: string | undefined;
        let contentChunks = 0;
        res.on('data', (chunk: string) => {
          buf += chunk;
          let cut: number;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const event = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            if (!event.startsWith('data: ')) continue;
            const data = event.slice(6);
            if (data === '[DONE]') {
              sawDone = true;
              continue;
            }
            if (data.startsWith('{"error"')) {
              streamError = 'stream_error';
              continue;
            }
            const usage = data.indexOf('"completion_tokens":');
            if (usage >= 0) o.outTokens = parseInt(data.slice(usage + 20), 10) || o.outTokens;
            const key = scenario.api === 'chat' ? '"content":"' : '"text":"';
            const at = data.indexOf(key);
            if (at < 0 || data.charCodeAt(at + key.length) === 34 /* " */) continue;
            const now = performance.now();
            contentChunks++;
            if (o.firstMs === 0) o.firstMs = now;
            else o.itls.push((now - lastTokenMs) / 1000 / k);
            lastTokenMs = now;
            if (sessionKey >= 0) {
              const parsed = JSON.parse(data) as { choices?: { delta?: { content?: string } }[] };
              answer += parsed.choices?.[0]?.delta?.content ?? '';
            }
          }
        });
        res.on('end', () => {
          if (o.outTokens === 0) o.outTokens = contentChunks;
          finish(streamError ?? (sawDone ? undefined : 'truncated'));
        });
        res.on('error', () => finish(streamError ?? 'stream_aborted'));
      },
    );
    inflight.add(req);
    const timer = setTimeout(() => {
      finish('timeout');
      req.destroy();
    }, timeoutMs);
    if (r.cancelAfterS !== undefined) {
      // The client gives up before the first token: the gateway sees the connection close and aborts upstream.
      setTimeout(() => {
        if (finished || o.firstMs > 0) return;
        finish('cancelled');
        req.destroy();
      }, r.cancelAfterS * 1000 * k);
    }
    req.on('error', (err: NodeJS.ErrnoException) => finish(finished ? undefined : `client_${err.code ?? 'error'}`));
    req.end(body);
  };

  emit({ type: 'phase', stage: -1, realMs: Date.now() });
  // Stage boundaries: report the phase, and check for overload at the end of each stage.
  const boundaryTimers: NodeJS.Timeout[] = [];
  const stopNow = (afterStage: number): void => {
    stopped = true;
    emit({ type: 'stopped', afterStage, outstanding });
    setTimeout(() => {
      cutting = true;
      for (const req of [...inflight]) req.destroy(new Error('cut'));
    }, run.drainS * 1000 * k).unref();
  };
  starts.forEach((startS, i) => {
    boundaryTimers.push(
      setTimeout(() => {
        if (stopped) return;
        const prev = i === 0 ? load.warmup : load.stages[i - 1];
        if (i > 0 && run.earlyStopBacklogS > 0 && prev !== undefined && outstanding > run.earlyStopBacklogS * prev.rate) {
          stopNow(i - 1);
          return;
        }
        currentStage = i;
        emit({ type: 'phase', stage: i, realMs: Date.now() });
      }, startS * 1000 * k),
    );
  });

  await new Promise<void>((resolve) => {
    let next = 0;
    const tick = (): void => {
      const now = simNow();
      while (next < schedule.length && !stopped && (schedule[next] as ScheduledRequest).atS <= now) send(schedule[next++] as ScheduledRequest);
      if (next >= schedule.length || stopped) {
        resolve();
        return;
      }
      setTimeout(tick, Math.max(0, ((schedule[next] as ScheduledRequest).atS - simNow()) * 1000 * k));
    };
    tick();
  });
  // Let the last stage run to its end before declaring the arrivals over (the overload check of the last stage).
  const endS = starts.length > 0 ? (starts[starts.length - 1] as number) + (load.stages[load.stages.length - 1]?.duration ?? 0) : load.warmup.duration;
  if (!stopped) await new Promise((r) => setTimeout(r, Math.max(0, (endS - simNow()) * 1000 * k)));
  for (const t of boundaryTimers) clearTimeout(t);
  emit({ type: 'phase', stage: load.stages.length, realMs: Date.now() });
  arrivalsOver = true;
  if (outstanding > 0) await allDone;
  clearInterval(lagTimer);
  clearInterval(progressTimer);
  lag.disable();
  agent.destroy();

  const stages = summarize(run, outcomes, t0, starts, lagByStage);
  emit({ type: 'result', stages, totalRealMs: performance.now() - t0 });
}

function summarize(run: LoadgenRun, outcomes: readonly Outcome[], t0: number, starts: readonly number[], lagByStage: Map<number, number[]>): ClientStageStats[] {
  const { load, timeScale: k } = run;
  const toSimS = (ms: number): number => (ms - t0) / 1000 / k;
  return load.stages.map((st, i) => {
    // The policy's own traffic: requests that bypassed the EPP are background load, cancelled ones have no TTFT.
    const all = outcomes.filter((o) => o.r.stage === i && o.r.bypass === undefined);
    const cancelled = all.filter((o) => o.error === 'cancelled').length;
    const mine = all.filter((o) => o.error !== 'cancelled');
    const startS = starts[i] as number;
    const endS = startS + st.duration;
    const ok = mine.filter((o) => o.error === undefined);
    const errorKinds: Record<string, number> = {};
    for (const o of mine) if (o.error !== undefined) errorKinds[o.error] = (errorKinds[o.error] ?? 0) + 1;
    const completedInWindow = outcomes.filter((o) => o.error === undefined && o.r.bypass === undefined && toSimS(o.endMs) >= startS && toSimS(o.endMs) < endS);
    const share: Record<string, number> = {};
    for (const o of mine) if (o.pod !== '') share[o.pod] = (share[o.pod] ?? 0) + 1;
    const withFirst = ok.filter((o) => o.firstMs > 0);
    const itls: number[] = [];
    for (const o of ok) for (const x of o.itls) itls.push(x);
    return {
      stage: i,
      rate: st.rate,
      durationS: st.duration,
      skipped: all.length === 0,
      sent: mine.length,
      cancelled,
      bypassed: outcomes.filter((o) => o.r.stage === i && o.r.bypass !== undefined).length,
      ok: ok.length,
      errors: mine.length - ok.length - (errorKinds.timeout ?? 0) - (errorKinds.cut ?? 0),
      timeouts: (errorKinds.timeout ?? 0) + (errorKinds.cut ?? 0),
      errorKinds,
      achievedReqPerS: completedInWindow.length / st.duration,
      outputTokPerS: completedInWindow.reduce((s, o) => s + o.outTokens, 0) / st.duration,
      ttftS: quantiles(withFirst.map((o) => (o.firstMs - o.sendMs) / 1000 / k)),
      itlS: quantiles(itls),
      ntpotS: quantiles(ok.filter((o) => o.outTokens > 0).map((o) => (o.endMs - o.sendMs) / 1000 / k / o.outTokens)),
      e2eS: quantiles(ok.map((o) => (o.endMs - o.sendMs) / 1000 / k)),
      serverShare: share,
      loadgenLagP99Ms: mean(lagByStage.get(i) ?? []),
    };
  });
}

// Child-process entry: wait for one `run` message, report back over IPC, exit.
if (process.send !== undefined && process.argv.includes('--loadgen-child')) {
  process.once('message', (m: LoadgenRun) => {
    void runLoad(m, (msg) => process.send?.(msg)).then(
      () => process.disconnect?.(),
      (err: unknown) => {
        process.stderr.write(`loadgen failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
