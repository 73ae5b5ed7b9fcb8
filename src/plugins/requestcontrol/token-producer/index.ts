/**
 * `token-producer`: the request's prompt as token ids, exactly as the model server will tokenize it (chat
 * template included), for the precise prefix producer. Writes `TokenizedPrompt` on every candidate.
 *
 * Backends:
 * - `render` (default): POST the request body (model stamped) to the engine's `/v1/completions/render` or
 *   `/v1/chat/completions/render` (vLLM `serve`, a `vllm launch render` sidecar, or the simulator), at
 *   `render.url` or, when unset, the first candidate endpoint itself. Keep-alive (fetch's pool), timeout
 *   `render.timeoutMs`. Any failure (refused, timeout, non-2xx, bad body) leaves the attribute unset: the request
 *   falls back to approximate matching, counted in `failures` (`epp_token_source_failures_total`).
 * - `sim`: an in-process port of the simulator's tokenizer (tests, benchmarks against the simulated fleet).
 */
import { z } from 'zod';
import { TokenizedPromptKey, type TokenizedPrompt } from '../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { Clock, Logger, PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../framework/request.ts';
import type { DataProducer } from '../../../framework/requestcontrol.ts';
import type { Candidate } from '../../../framework/scheduling.ts';
import type { TokenSourceMetricsSource } from '../../../framework/plugin-metrics.ts';
import { simTokenize } from './sim-tokenizer.ts';

export const TOKEN_PRODUCER_TYPE = 'token-producer';

const parametersSchema = z.strictObject({
  backend: z.enum(['render', 'sim'], { error: 'expected "render" (the engine\'s render endpoints) or "sim" (the simulator\'s tokenizer)' }).default('render'),
  render: z
    .strictObject({
      /** Base URL of the render server (`http://host:port`); unset = the first candidate endpoint. */
      url: z.url({ error: 'expected an http(s) URL such as http://10.0.0.5:8000' }).optional(),
      timeoutMs: z.number({ error: 'expected a number of milliseconds > 0' }).positive('expected a number of milliseconds > 0').default(5000),
    })
    .default({ timeoutMs: 5000 }),
  sim: z
    .strictObject({ tokenizer: z.enum(['chars4', 'words'], { error: 'expected chars4 or words (the simulator\'s --tokenizer)' }).default('chars4') })
    .default({ tokenizer: 'chars4' }),
});

export type TokenProducerConfig = z.infer<typeof parametersSchema>;

export interface TokenSourceStats {
  requests: number;
  failures: number;
  /** Latency of every tokenization (seconds), for `epp_token_source_latency_seconds`; drained by the metrics. */
  readonly latencies: number[];
}

export class TokenProducer implements DataProducer {
  readonly typedName: TypedName;
  readonly produces: readonly string[] = [TokenizedPromptKey];
  readonly consumes: readonly string[] = [];
  readonly config: Readonly<TokenProducerConfig>;
  readonly stats: TokenSourceStats = { requests: 0, failures: 0, latencies: [] };
  readonly #logger: Logger;
  readonly #clock: Clock;

  constructor(name: string, config: TokenProducerConfig, handle: { logger: Logger; clock: Clock }) {
    this.typedName = { type: TOKEN_PRODUCER_TYPE, name };
    this.config = Object.freeze({ ...config });
    this.#logger = handle.logger;
    this.#clock = handle.clock;
  }

  /** The view the metrics layer reads at scrape time (`epp_token_source_*`). */
  metricsSource(): TokenSourceMetricsSource {
    const stats = this.stats;
    return {
      name: this.typedName.name,
      backend: this.config.backend,
      get requests() {
        return stats.requests;
      },
      get failures() {
        return stats.failures;
      },
      drainLatencies: () => stats.latencies.splice(0),
    };
  }

  async prepareData(request: InferenceRequest, candidates: readonly Candidate[], signal: AbortSignal): Promise<void> {
    if (candidates.length === 0) return;
    const start = this.#clock.now();
    this.stats.requests++;
    let ids: ArrayLike<number> | undefined;
    try {
      ids = this.config.backend === 'sim' ? simTokenize(request.body, this.config.sim.tokenizer) : await this.#render(request, candidates, signal);
    } catch (err) {
      this.stats.failures++;
      this.#logger.debug({ requestId: request.requestId, err: (err as Error).message }, 'tokenization failed; the request falls back to approximate prefix matching');
      return;
    } finally {
      if (this.stats.latencies.length < 10_000) this.stats.latencies.push((this.#clock.now() - start) / 1000);
    }
    if (ids === undefined) return;
    if (!(ids instanceof Uint32Array)) ids = Uint32Array.from(ids);
    const value: TokenizedPrompt = Object.freeze({ tokenIds: ids, source: this.config.backend });
    for (const c of candidates) c.attributes.set(TokenizedPromptKey, value);
  }

  async #render(request: InferenceRequest, candidates: readonly Candidate[], signal: AbortSignal): Promise<ArrayLike<number> | undefined> {
    const api = request.body.apiType;
    if (api !== 'completions' && api !== 'chat-completions') return undefined;
    const base = this.config.render.url ?? `http://${(candidates[0] as Candidate).endpoint.hostPort}`;
    const path = api === 'chat-completions' ? '/v1/chat/completions/render' : '/v1/completions/render';
    const body = JSON.stringify({ ...request.body.payload, model: request.targetModel, stream: false });
    const res = await fetch(`${base.replace(/\/$/, '')}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.config.render.timeoutMs)]),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`render answered ${res.status}: ${text.slice(0, 200)}`);
    const parsed = JSON.parse(text) as unknown;
    const first = Array.isArray(parsed) ? parsed[0] : parsed;
    const ids = (first as { token_ids?: unknown } | undefined)?.token_ids;
    if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'number')) throw new Error('render response has no token_ids array');
    return Uint32Array.from(ids as number[]);
  }
}

export const tokenProducerFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: TOKEN_PRODUCER_TYPE, name };
  const producer = new TokenProducer(name, parsePluginParameters(typedName, parametersSchema, parameters), handle);
  handle.metrics.tokenSource(producer.metricsSource());
  return producer;
};
