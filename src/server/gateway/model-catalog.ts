/**
 * The models the pool serves: the union of every endpoint's `GET /v1/models`, cached for `ttlMs`.
 * Used for the gateway's aggregated `/v1/models` and to answer an unknown model with 404 before routing.
 * When no endpoint answers (e.g. servers without /v1/models), the catalog is empty and every model is
 * accepted: the model server then decides.
 */
import http from 'node:http';
import type { Endpoint } from '../../framework/datalayer.ts';
import type { Logger } from '../../framework/plugin.ts';

export interface ModelEntry {
  readonly id: string;
  readonly object: 'model';
  readonly owned_by: string;
  readonly [k: string]: unknown;
}

export class ModelCatalog {
  readonly #endpoints: () => readonly Endpoint[];
  readonly #agent: http.Agent;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  #models: ModelEntry[] = [];
  #fetchedAt = -Infinity;
  #inflight: Promise<void> | undefined;

  constructor(endpoints: () => readonly Endpoint[], agent: http.Agent, logger: Logger, ttlMs = 5000, timeoutMs = 1000) {
    this.#endpoints = endpoints;
    this.#agent = agent;
    this.#logger = logger;
    this.#ttlMs = ttlMs;
    this.#timeoutMs = timeoutMs;
  }

  async list(refresh = false): Promise<ModelEntry[]> {
    await this.#ensure(refresh);
    return this.#models;
  }

  /** True when the model is served, or when the catalog is unknown (empty). Refreshes once on a miss. */
  async knows(model: string): Promise<boolean> {
    await this.#ensure(false);
    if (this.#models.length === 0 || this.#models.some((m) => m.id === model)) return true;
    await this.#ensure(true);
    return this.#models.length === 0 || this.#models.some((m) => m.id === model);
  }

  #ensure(force: boolean): Promise<void> {
    if (!force && Date.now() - this.#fetchedAt < this.#ttlMs) return Promise.resolve();
    this.#inflight ??= this.#refresh().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #refresh(): Promise<void> {
    const lists = await Promise.all(this.#endpoints().map((e) => this.#fetch(e)));
    const byId = new Map<string, ModelEntry>();
    for (const list of lists) for (const m of list) if (!byId.has(m.id)) byId.set(m.id, m);
    this.#models = [...byId.values()];
    this.#fetchedAt = Date.now();
  }

  #fetch(e: Endpoint): Promise<ModelEntry[]> {
    return new Promise((resolve) => {
      const req = http.get({ host: e.metadata.address, port: e.metadata.port, path: '/v1/models', agent: this.#agent, timeout: this.#timeoutMs }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { data?: unknown };
            resolve(Array.isArray(body.data) ? (body.data as ModelEntry[]).filter((m) => typeof m?.id === 'string') : []);
          } catch {
            resolve([]);
          }
        });
        res.on('error', () => resolve([]));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        this.#logger.debug({ endpoint: e.hostPort, err: err.message }, 'model list unavailable');
        resolve([]);
      });
    });
  }
}
