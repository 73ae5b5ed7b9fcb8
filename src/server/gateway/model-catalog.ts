/**
 * The models the pool serves: the union of every endpoint's `GET /v1/models`, cached for `ttlMs`.
 * Used for the gateway's aggregated `/v1/models` and to answer an unknown model with 404 before routing.
 * When no endpoint answers (e.g. servers without /v1/models), the catalog is empty and every model is
 * accepted: the model server then decides.
 */
import http from 'node:http';
import type { Endpoint } from '../../framework/datalayer.ts';
import type { Logger } from '../../framework/plugin.ts';
import { systemClock } from '../../util/clock.ts';

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
  #ids = new Set<string>();
  #fetchedAt = -Infinity;
  #inflight: Promise<void> | undefined;
  readonly #minRefreshMs: number;
  readonly #now: () => number;

  /**
   * `minRefreshMs`: a miss forces a refresh only when the list is older than this, so a flood of unknown names
   * costs at most one round of `GET /v1/models` per interval, not one per name.
   */
  constructor(endpoints: () => readonly Endpoint[], agent: http.Agent, logger: Logger, ttlMs = 5000, timeoutMs = 1000, minRefreshMs = 1000, now: () => number = systemClock.now) {
    this.#endpoints = endpoints;
    this.#agent = agent;
    this.#logger = logger;
    this.#ttlMs = ttlMs;
    this.#timeoutMs = timeoutMs;
    this.#minRefreshMs = minRefreshMs;
    this.#now = now;
  }

  /** The served model ids as last fetched (no refresh): for bounding metric labels. */
  has(model: string): boolean {
    return this.#ids.has(model);
  }

  async list(refresh = false): Promise<ModelEntry[]> {
    await this.#ensure(refresh);
    return this.#models;
  }

  /**
   * True when the model is served, or when the catalog is unknown (empty). On a miss, refreshes once — unless
   * the list is younger than `minRefreshMs` (a concurrent miss shares the refresh in flight).
   */
  async knows(model: string): Promise<boolean> {
    await this.#ensure(false);
    if (this.#models.length === 0 || this.#ids.has(model)) return true;
    if (this.#inflight === undefined && this.#now() - this.#fetchedAt < this.#minRefreshMs) return false;
    await this.#ensure(true);
    return this.#models.length === 0 || this.#ids.has(model);
  }

  #ensure(force: boolean): Promise<void> {
    if (!force && this.#now() - this.#fetchedAt < this.#ttlMs) return Promise.resolve();
    this.#inflight ??= this.#refresh().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #refresh(): Promise<void> {
    const lists = await Promise.all(this.#endpoints().map((e) => this.#fetch(e)));
    const byId = new Map<string, ModelEntry>();
    for (const list of lists) for (const m of list) if (!byId.has(m.id)) byId.set(m.id, m);
    this.#models = [...byId.values()];
    this.#ids = new Set(byId.keys());
    this.#fetchedAt = this.#now();
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
