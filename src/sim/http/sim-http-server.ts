// The HTTP surface of one simulated server (sim-spec §1) on `node:http`: OpenAI endpoints, health, LoRA
// management, `/metrics`, `/tokenize`, render endpoints, `/kv_events` (SSE), `/kv_state` and `/admin/config`.
// With `kv-events-endpoint` set, KV events are also published over ZeroMQ (kv-publisher.ts) once listening.

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseDurationMs } from '../duration.ts';
import { SimError, errorBody } from '../errors.ts';
import type { SimServer } from '../sim-server.ts';
import { renderChatPrompt } from '../tokenizer.ts';
import { parseJsonObject, readBody } from './body.ts';
import { GenerationResponse } from './generation-response.ts';
import { KvEventPublisher, kvStateJson } from '../kv-publisher.ts';
import { parseGenerationBody, requireModel } from './openai-request.ts';
import type { ApiKind } from './openai-request.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export class SimHttpServer {
  readonly sim: SimServer;
  readonly #http: Server;
  readonly #routes: ReadonlyMap<string, Handler>;
  #closing = false;
  #host = '127.0.0.1';
  /** The ZeroMQ publisher, when `kv-events-endpoint` is set (started by `listen`). */
  kvPublisher: KvEventPublisher | undefined;

  constructor(sim: SimServer) {
    this.sim = sim;
    this.#routes = new Map<string, Handler>([
      ['POST /v1/completions', (q, r) => this.#generation('completion', q, r)],
      ['POST /v1/chat/completions', (q, r) => this.#generation('chat', q, r)],
      ['GET /v1/models', (_q, r) => this.#models(r)],
      ['GET /health', (_q, r) => this.#send(r, 200, '', 'application/json')],
      ['GET /health/ready', (_q, r) => this.#ready(r)],
      ['GET /ready', (_q, r) => this.#ready(r)],
      ['GET /metrics', (_q, r) => this.#metrics(r)],
      ['POST /v1/load_lora_adapter', (q, r) => this.#loadLora(q, r)],
      ['POST /v1/unload_lora_adapter', (q, r) => this.#unloadLora(q, r)],
      ['POST /tokenize', (q, r) => this.#tokenize(q, r)],
      ['GET /kv_events', (q, r) => this.#kvEvents(q, r)],
      ['GET /kv_state', (_q, r) => this.#sendJson(r, 200, kvStateJson(this.sim.kvState(), this.kvTopic))],
      ['POST /v1/completions/render', (q, r) => this.#render('completion', q, r)],
      ['POST /v1/chat/completions/render', (q, r) => this.#render('chat', q, r)],
      ['POST /admin/restart', (_q, r) => this.#restart(r)],
      ['GET /admin/config', (_q, r) => this.#sendJson(r, 200, this.sim.configView())],
      ['POST /admin/config', (q, r) => this.#updateConfig(q, r)],
      ['POST /admin/stall', (q, r) => this.#stall(q, r)],
      ['POST /reset_prefix_cache', (q, r) => this.#resetPrefixCache(q, r)],
    ]);
    this.#http = createServer({ keepAliveTimeout: 60_000 }, (req, res) => this.#dispatch(req, res));
  }

  /** Listens on `port` (0 = ephemeral) and records the bound port on the `SimServer`. */
  listen(port: number, host: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#http.once('error', onError);
      this.#http.listen(port, host, () => {
        this.#http.off('error', onError);
        const bound = (this.#http.address() as AddressInfo).port;
        this.sim.port = bound;
        this.#host = host;
        resolve(bound);
      });
    }).then(async (bound) => {
      if (this.sim.options.kvEventsEndpoint !== '') {
        this.kvPublisher = new KvEventPublisher(this.sim, this.kvTopic);
        try {
          await this.kvPublisher.start();
        } catch (err) {
          this.kvPublisher.close();
          await new Promise<void>((r) => this.#http.close(() => r()));
          throw err;
        }
      }
      return bound;
    });
  }

  /** The KV event topic: `kv-events-topic`, or llm-d's `kv@<host>:<port>@<model>`. */
  get kvTopic(): string {
    const t = this.sim.options.kvEventsTopic;
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    return t !== '' ? t : `kv@${host}:${this.sim.port}@${this.sim.baseModel}`;
  }

  /** Stops accepting, aborts in-flight requests, drops open connections. Resolves when the socket is closed. */
  close(): Promise<void> {
    this.#closing = true;
    this.kvPublisher?.close();
    return new Promise((resolve) => {
      this.#http.close(() => resolve());
      this.sim.close();
      this.#http.closeAllConnections();
    });
  }

  #baseHeaders(req: IncomingMessage): Record<string, string> {
    const headers: Record<string, string> = { 'x-inference-pod': this.sim.id, 'x-inference-port': String(this.sim.port) };
    const requestId = req.headers['x-request-id'];
    if (this.sim.options.enableRequestIdHeaders && typeof requestId === 'string') headers['x-request-id'] = requestId;
    return headers;
  }

  #dispatch(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0] as string;
    const handler = this.#routes.get(`${req.method ?? 'GET'} ${path}`);
    for (const [k, v] of Object.entries(this.#baseHeaders(req))) res.setHeader(k, v);
    if (handler === undefined) {
      this.#sendError(res, new SimError(404, `Not found: ${req.method ?? ''} ${path}`));
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err: unknown) => {
        const error = err instanceof SimError ? err : new SimError(500, (err as Error).message ?? String(err));
        if (!res.headersSent) this.#sendError(res, error);
        else res.destroy();
      });
  }

  /** Generation endpoints, in the llm-d sim's order of checks (sim-spec §1.2). */
  async #generation(kind: ApiKind, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#closing || this.sim.closed) throw new SimError(503, 'The server is shutting down.');
    const body = parseJsonObject(await readBody(req));
    const forced = req.headers['x-return-error'];
    if (typeof forced === 'string') {
      const status = Number.parseInt(forced, 10);
      const valid = Number.isInteger(status) && String(status) === forced.trim() && status >= 100 && status <= 599;
      throw valid ? new SimError(status, `Synthetic error ${status} requested by X-Return-Error.`) : new SimError(400, 'X-Return-Error must be an HTTP status code.');
    }
    const model = requireModel(body);
    const injected = this.sim.drawInjectedFailure(model);
    if (injected !== null) throw injected;
    if (!this.sim.hasModel(model)) {
      throw new SimError(404, `The model \`${model}\` does not exist.`, 'model', 'NotFoundError');
    }
    const parsed = parseGenerationBody(kind, body);
    const response = new GenerationResponse(this.sim, res, parsed, this.#baseHeaders(req));
    const admission = this.sim.admit(parsed.request, response.observerFor);
    response.start(admission);
  }

  #models(res: ServerResponse): void {
    const created = Math.floor(this.sim.clock.unixNowMs() / 1000);
    const o = this.sim.options;
    const base = o.servedModelNames.map((id) => ({
      id, object: 'model', created, owned_by: 'vllm', root: this.sim.baseModel, parent: null, max_model_len: o.maxModelLen,
    }));
    const loras = [...this.sim.loras()].map(([id, path]) => ({
      id, object: 'model', created, owned_by: 'vllm', root: path, parent: this.sim.baseModel, max_model_len: o.maxModelLen,
    }));
    this.#sendJson(res, 200, { object: 'list', data: [...base, ...loras] });
  }

  #ready(res: ServerResponse): void {
    if (this.sim.isReady()) this.#send(res, 200, '', 'application/json');
    else this.#sendError(res, new SimError(503, 'The server is not ready yet.'));
  }

  #metrics(res: ServerResponse): void {
    const respond = (): void => {
      if (this.sim.drawMetricsFailure()) {
        this.#send(res, 500, 'injected /metrics failure\n', 'text/plain; charset=utf-8');
        return;
      }
      this.#send(res, 200, this.sim.metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
    };
    const delayMs = this.sim.options.metricsDelayMs;
    if (delayMs <= 0) {
      respond();
      return;
    }
    const timer = this.sim.clock.setTimer(this.sim.clock.nowMs() + delayMs, () => {
      if (!res.destroyed) respond();
    });
    res.on('close', () => timer.cancel());
  }

  async #loadLora(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonObject(await readBody(req));
    const name = body['lora_name'];
    const path = body['lora_path'] ?? name;
    if (typeof name !== 'string' || name === '' || typeof path !== 'string') {
      throw new SimError(400, 'lora_name and lora_path must be non-empty strings', 'lora_name');
    }
    this.sim.loadLora(name, path);
    const text = this.sim.options.loraStatusCodes === 'vllm' ? `Success: LoRA adapter '${name}' added successfully.` : '';
    this.#send(res, 200, text, 'text/plain; charset=utf-8');
  }

  async #unloadLora(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonObject(await readBody(req));
    const name = body['lora_name'];
    if (typeof name !== 'string' || name === '') throw new SimError(400, 'lora_name must be a non-empty string', 'lora_name');
    this.sim.unloadLora(name);
    const text = this.sim.options.loraStatusCodes === 'vllm' ? `Success: LoRA adapter '${name}' removed successfully.` : '';
    this.#send(res, 200, text, 'text/plain; charset=utf-8');
  }

  async #tokenize(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonObject(await readBody(req));
    let text: string;
    if (typeof body['prompt'] === 'string') {
      text = body['prompt'];
    } else if (Array.isArray(body['messages'])) {
      const parsed = parseGenerationBody('chat', { model: this.sim.baseModel, messages: body['messages'] });
      text = parsed.request.prompts[0]?.text ?? renderChatPrompt([]);
    } else {
      throw new SimError(400, 'prompt (string) or messages (array) is required', 'prompt');
    }
    const tokens = [...this.sim.tokenizer.encode(text)];
    this.#sendJson(res, 200, { count: tokens.length, tokens, max_model_len: this.sim.options.maxModelLen });
  }

  /** vLLM's render endpoints: the token ids the server would use for this request, without generating. */
  async #render(kind: ApiKind, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonObject(await readBody(req));
    const model = requireModel(body);
    if (!this.sim.hasModel(model)) throw new SimError(404, `The model \`${model}\` does not exist.`, 'model', 'NotFoundError');
    const parsed = parseGenerationBody(kind, body);
    const ids = parsed.request.prompts.map((p) => (p.tokenIds !== null ? [...p.tokenIds] : [...this.sim.tokenizer.encode(p.text ?? '')]));
    if (kind === 'chat') this.#sendJson(res, 200, { token_ids: ids[0] ?? [], features: null });
    else this.#sendJson(res, 200, ids.map((token_ids) => ({ token_ids })));
  }

  /** vLLM's `POST /reset_prefix_cache[?reset_running_requests=true]`: 409 when refused (blocks held, no forcing). */
  #resetPrefixCache(req: IncomingMessage, res: ServerResponse): void {
    const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    const resetRunningRequests = parseQueryBool(query.get('reset_running_requests'), 'reset_running_requests');
    if (this.sim.resetPrefixCache({ resetRunningRequests })) this.#send(res, 200, '', 'application/json');
    else this.#sendError(res, new SimError(409, 'Failed to reset prefix cache because some blocks are not freed yet.'));
  }

  #restart(res: ServerResponse): void {
    if (this.sim.restart()) this.#sendJson(res, 200, { restarted: true });
    else this.#sendError(res, new SimError(409, 'Cannot restart the engine while requests are in flight.'));
  }

  #kvEvents(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    const unsubscribe = this.sim.kvEvents.subscribe((batch) => {
      res.write(`data: ${JSON.stringify(batch)}\n\n`);
    });
    req.on('close', unsubscribe);
    res.on('close', unsubscribe);
  }

  async #updateConfig(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const patch = parseJsonObject(await readBody(req));
    this.sim.updateConfig(patch);
    this.#sendJson(res, 200, this.sim.configView());
  }

  async #stall(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJsonObject(await readBody(req));
    const raw = body['duration'];
    if (typeof raw !== 'number' && typeof raw !== 'string') throw new SimError(400, 'duration is required', 'duration');
    let ms: number;
    try {
      ms = parseDurationMs(raw, 'duration');
    } catch (err) {
      throw new SimError(400, (err as Error).message, 'duration');
    }
    this.sim.stall(ms);
    this.#sendJson(res, 200, { stalled_for_ms: ms });
  }

  #send(res: ServerResponse, status: number, body: string, contentType: string): void {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  #sendJson(res: ServerResponse, status: number, value: unknown): void {
    this.#send(res, status, JSON.stringify(value), 'application/json');
  }

  #sendError(res: ServerResponse, error: SimError): void {
    this.#send(res, error.status, errorBody(error), 'application/json');
  }
}

/** A boolean query parameter as FastAPI reads one (vLLM's routes): absent → false; anything else unknown → 400. */
function parseQueryBool(raw: string | null, name: string): boolean {
  if (raw === null) return false;
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new SimError(400, `${name} must be a boolean (true/false), got ${JSON.stringify(raw)}`, name);
}
