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
 * - `local`: the model's Hugging Face tokenizer in process (`local-tokenizer.ts`), trusted only while a parity
 *   check against `render` agrees: the probe prompts are tokenized both ways on start (first chance: at
 *   construction when `render.url` is set or the pool has endpoints, else the first request) and every
 *   `local.parity.intervalMs`, and a sample (`local.parity.sampleRate`) of live requests is rendered too and
 *   compared. Until a check passes, and from the first disagreement on, requests go to `render`; a disagreement is
 *   counted (`parityFailures`) and logged once per change of trust.
 */
import { z } from 'zod';
import { TokenizedPromptKey, type TokenizedPrompt } from '../../../framework/attributes.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { Clock, Logger, PluginFactory, PluginHandle, RandomSource, TypedName } from '../../../framework/plugin.ts';
import type { InferenceRequest, ParsedRequestBody } from '../../../framework/request.ts';
import type { DataProducer } from '../../../framework/requestcontrol.ts';
import type { Candidate } from '../../../framework/scheduling.ts';
import type { TokenSourceMetricsSource } from '../../../framework/plugin-metrics.ts';
import { LocalTokenizer } from './local-tokenizer.ts';
import { simTokenize } from './sim-tokenizer.ts';

export const TOKEN_PRODUCER_TYPE = 'token-producer';

const probe = z.union(
  [z.strictObject({ prompt: z.string() }), z.strictObject({ messages: z.array(z.record(z.string(), z.unknown())).min(1) })],
  { error: 'expected {prompt: "text"} or {messages: [{role, content}, …]}' },
);

/** Probe requests of the parity self-test: plain text, code, numbers, Unicode, and a chat with a system prompt. */
export const DEFAULT_PARITY_PROBES: readonly (z.infer<typeof probe>)[] = [
  { prompt: 'The quick brown fox jumps over the lazy dog. It was 3:45 p.m. on 2024-06-01, and 1,234.5 units remained.' },
  { prompt: 'def add(a, b):\n    # Return a + b.\n    return a + b\n\n\tprint(add(2, 40))' },
  { prompt: 'Ünïcödé: naïve café, 東京 and emoji 🚀 — “quotes” ‘and’ dashes… <tags>&amp;' },
  {
    messages: [
      { role: 'system', content: 'You are a careful assistant. Answer in one sentence.' },
      { role: 'user', content: 'What is the capital of France, and why is it famous?' },
    ],
  },
];

const parametersSchema = z.strictObject({
  backend: z
    .enum(['render', 'sim', 'local'], { error: 'expected "render" (the engine\'s render endpoints), "local" (the model\'s tokenizer in process, checked against render) or "sim" (the simulator\'s tokenizer)' })
    .default('render'),
  local: z
    .strictObject({
      /** The model's tokenizer.json (as on the Hugging Face Hub). */
      tokenizerFile: z.string({ error: 'expected the path of the model\'s tokenizer.json' }).min(1),
      /** Its tokenizer_config.json (chat template, special tokens); without it chat requests go to render. */
      tokenizerConfigFile: z.string({ error: 'expected the path of tokenizer_config.json' }).optional(),
      /** A chat template overriding the config's (what vLLM's --chat-template serves). */
      chatTemplate: z.string({ error: 'expected a Jinja template' }).optional(),
      /** Served model name for the probes' render calls; set, the self-test runs at startup, else at the first request (its model). */
      model: z.string({ error: 'expected the served model name' }).min(1).optional(),
      parity: z
        .strictObject({
          probes: z.array(probe).min(1, 'expected at least one probe').default([...DEFAULT_PARITY_PROBES]),
          /** Re-run the probes this often (also after a failure: the engine may have been fixed). */
          intervalMs: z.number({ error: 'expected milliseconds > 0' }).positive('expected milliseconds > 0').default(300_000),
          /** Fraction of requests tokenized locally that are also rendered and compared (in the background). */
          sampleRate: z.number({ error: 'expected a fraction in [0, 1]' }).min(0).max(1).default(0.01),
        })
        .default({ probes: [...DEFAULT_PARITY_PROBES], intervalMs: 300_000, sampleRate: 0.01 }),
    })
    .optional(),
  render: z
    .strictObject({
      /** Base URL of the render server (`http://host:port`); unset = the first candidate endpoint. */
      url: z.url({ error: 'expected an http(s) URL such as http://10.0.0.5:8000' }).optional(),
      timeoutMs: z.number({ error: 'expected a number of milliseconds > 0' }).positive('expected a number of milliseconds > 0').default(5000),
    })
    .default({ timeoutMs: 5000 }),
  sim: z
    .strictObject({ tokenizer: z.enum(['chars4', 'chars3.2', 'words'], { error: 'expected chars4, chars3.2 or words (the simulator\'s --tokenizer)' }).default('chars4') })
    .default({ tokenizer: 'chars4' }),
});

export type TokenProducerConfig = z.infer<typeof parametersSchema>;

export interface TokenSourceStats {
  requests: number;
  failures: number;
  /** Requests tokenized by the local tokenizer (backend `local`, while trusted). */
  localRequests: number;
  /** Parity checks (probe sets and sampled requests) that agreed / disagreed with render. */
  parityPasses: number;
  parityFailures: number;
  /** Latency of every tokenization (seconds), for `epp_token_source_latency_seconds`; drained by the metrics. */
  readonly latencies: number[];
}

export class TokenProducer implements DataProducer {
  readonly typedName: TypedName;
  readonly produces: readonly string[] = [TokenizedPromptKey];
  readonly consumes: readonly string[] = [];
  readonly config: Readonly<TokenProducerConfig>;
  readonly stats: TokenSourceStats = { requests: 0, failures: 0, localRequests: 0, parityPasses: 0, parityFailures: 0, latencies: [] };
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #random: RandomSource | undefined;
  readonly #local: LocalTokenizer | undefined;
  /** The local tokenizer agreed with render at the last check (and no sample disagreed since). */
  #trusted = false;
  #nextCheckAt = Number.NEGATIVE_INFINITY;
  #checking: Promise<boolean> | undefined;

  constructor(
    name: string,
    config: TokenProducerConfig,
    handle: { logger: Logger; clock: Clock; random?: RandomSource; endpoints?: PluginHandle['endpoints'] },
    local?: LocalTokenizer,
  ) {
    this.typedName = { type: TOKEN_PRODUCER_TYPE, name };
    this.config = Object.freeze({ ...config });
    this.#logger = handle.logger;
    this.#clock = handle.clock;
    this.#random = handle.random;
    this.#local = local;
    if (local !== undefined) {
      const first = handle.endpoints?.()[0];
      const base = config.render.url ?? (first === undefined ? undefined : `http://${first.hostPort}`);
      const model = config.local?.model;
      if (base !== undefined && model !== undefined) void this.checkParity(base, model);
    }
  }

  /** Whether requests are tokenized locally now (backend `local` after a passing parity check). */
  get localTrusted(): boolean {
    return this.#trusted;
  }

  /**
   * Tokenizes every probe locally and with render at `base` (an `http://host:port`, model name `model`), and trusts the local
   * tokenizer iff all agree. Concurrent calls share one check. Resolves to the outcome (false on render errors,
   * which leave the trust as it was).
   */
  checkParity(base: string, model: string): Promise<boolean> {
    const local = this.#local;
    if (local === undefined) return Promise.resolve(false);
    if (this.#checking !== undefined) return this.#checking;
    const parity = (this.config.local as NonNullable<TokenProducerConfig['local']>).parity;
    this.#nextCheckAt = this.#clock.now() + parity.intervalMs;
    this.#checking = (async () => {
      try {
        for (let i = 0; i < parity.probes.length; i++) {
          const p = parity.probes[i] as z.infer<typeof probe>;
          const body: ParsedRequestBody = 'prompt' in p ? { apiType: 'completions', payload: { ...p }, stream: false } : { apiType: 'chat-completions', payload: { ...p }, stream: false };
          const want = await this.#renderIds(base, body, model, AbortSignal.timeout(this.config.render.timeoutMs));
          if (want === undefined) continue;
          if (!this.#agrees(local.tokenize(body), want, `probe ${i + 1}`)) return false;
        }
        this.stats.parityPasses++;
        if (!this.#trusted) this.#logger.info({ plugin: this.typedName.name, probes: parity.probes.length }, 'local tokenizer agrees with render on every probe: tokenizing locally');
        this.#trusted = true;
        return true;
      } catch (err) {
        this.#logger.debug({ plugin: this.typedName.name, err: (err as Error).message }, 'tokenizer parity check could not reach render; will retry');
        this.#nextCheckAt = Math.min(this.#nextCheckAt, this.#clock.now() + 5000);
        return false;
      } finally {
        this.#checking = undefined;
      }
    })();
    return this.#checking;
  }

  /** Compares local ids with render's; a disagreement ends the trust (counted; logged once per change). */
  #agrees(local: ArrayLike<number> | undefined, render: ArrayLike<number>, what: string): boolean {
    let at = -1;
    if (local === undefined) at = 0;
    else {
      const n = Math.max(local.length, render.length);
      for (let i = 0; i < n && at < 0; i++) if (local[i] !== render[i]) at = i;
    }
    if (at < 0) return true;
    this.stats.parityFailures++;
    const wasTrusted = this.#trusted;
    this.#trusted = false;
    if (wasTrusted || this.stats.parityFailures === 1) {
      this.#logger.warn(
        {
          plugin: this.typedName.name, check: what, firstDifference: at,
          local: local === undefined ? null : Array.from(local).slice(at, at + 8), render: Array.from(render).slice(at, at + 8),
          localLength: local?.length ?? null, renderLength: render.length,
        },
        `local tokenizer disagrees with render (${what}, token ${at}): requests are tokenized by render until a parity check passes`,
      );
    }
    return false;
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
      get localRequests() {
        return stats.localRequests;
      },
      get parityPasses() {
        return stats.parityPasses;
      },
      get parityFailures() {
        return stats.parityFailures;
      },
      drainLatencies: () => stats.latencies.splice(0),
    };
  }

  async prepareData(request: InferenceRequest, candidates: readonly Candidate[], signal: AbortSignal): Promise<void> {
    if (candidates.length === 0) return;
    const start = this.#clock.now();
    this.stats.requests++;
    let ids: ArrayLike<number> | undefined;
    let source: string = this.config.backend;
    try {
      if (this.config.backend === 'sim') ids = simTokenize(request.body, this.config.sim.tokenizer);
      else if (this.#local !== undefined) {
        const base = this.#renderBase(candidates);
        if (this.#clock.now() >= this.#nextCheckAt) void this.checkParity(base, this.config.local?.model ?? request.targetModel);
        ids = this.#trusted ? this.#local.tokenize(request.body) : undefined;
        if (ids !== undefined) {
          this.stats.localRequests++;
          const rate = (this.config.local as NonNullable<TokenProducerConfig['local']>).parity.sampleRate;
          if (rate > 0 && (this.#random?.next() ?? 1) < rate) void this.#sample(base, request.body, request.targetModel, ids);
        } else {
          source = 'render';
          ids = await this.#renderIds(base, request.body, request.targetModel, signal);
        }
      } else ids = await this.#renderIds(this.#renderBase(candidates), request.body, request.targetModel, signal);
    } catch (err) {
      this.stats.failures++;
      this.#logger.debug({ requestId: request.requestId, err: (err as Error).message }, 'tokenization failed; the request falls back to approximate prefix matching');
      return;
    } finally {
      if (this.stats.latencies.length < 10_000) this.stats.latencies.push((this.#clock.now() - start) / 1000);
    }
    if (ids === undefined) return;
    if (!(ids instanceof Uint32Array)) ids = Uint32Array.from(ids);
    const value: TokenizedPrompt = Object.freeze({ tokenIds: ids, source });
    for (const c of candidates) c.attributes.set(TokenizedPromptKey, value);
  }

  #renderBase(candidates: readonly Candidate[]): string {
    return this.config.render.url ?? `http://${(candidates[0] as Candidate).endpoint.hostPort}`;
  }

  /** A sampled live request: render it too and compare (in the background; the request is not delayed). */
  async #sample(base: string, body: ParsedRequestBody, model: string, local: ArrayLike<number>): Promise<void> {
    try {
      const want = await this.#renderIds(base, body, model, AbortSignal.timeout(this.config.render.timeoutMs));
      if (want !== undefined && this.#agrees(local, want, 'sampled request')) this.stats.parityPasses++;
    } catch (err) {
      this.#logger.debug({ plugin: this.typedName.name, err: (err as Error).message }, 'sampled tokenizer parity check could not reach render');
    }
  }

  async #renderIds(base: string, req: ParsedRequestBody, model: string, signal: AbortSignal): Promise<ArrayLike<number> | undefined> {
    const api = req.apiType;
    if (api !== 'completions' && api !== 'chat-completions') return undefined;
    const path = api === 'chat-completions' ? '/v1/chat/completions/render' : '/v1/completions/render';
    const body = JSON.stringify({ ...req.payload, model, stream: false });
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
  const config = parsePluginParameters(typedName, parametersSchema, parameters);
  let local: LocalTokenizer | undefined;
  if (config.backend === 'local') {
    const fail = (message: string): never => {
      parsePluginParameters(typedName, z.strictObject({ local: z.never({ error: message }) }), { local: null });
      throw new Error(message);
    };
    if (config.local === undefined) fail('backend local needs local.tokenizerFile (the model\'s tokenizer.json)');
    try {
      local = new LocalTokenizer(config.local as NonNullable<TokenProducerConfig['local']>);
    } catch (err) {
      fail((err as Error).message);
    }
  }
  const producer = new TokenProducer(name, config, handle, local);
  handle.metrics.tokenSource(producer.metricsSource());
  return producer;
};
