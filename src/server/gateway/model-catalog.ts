/**
 * The models the pool serves: the union of every endpoint's `GET /v1/models`, refreshed in the background.
 * Used for the gateway's aggregated `/v1/models` and, through `admissionCheck()`, to answer an unknown model with
 * 404 before routing.
 *
 * Contract:
 * - A routed request never waits on the network here: `admits(model)` answers synchronously from the last list.
 *   When that list is older than `ttlMs`, or misses the model and is older than `minRefreshMs`, it starts one
 *   refresh in the background (concurrent callers share it): a flood of unknown names costs at most one round of
 *   `GET /v1/models` per `minRefreshMs`, and a model newly added to the pool is found by the round its first
 *   request started (that request itself still gets the 404).
 * - Fail-open while the catalog knows no model — not loaded yet, or no endpoint answers `/v1/models` (servers
 *   without it): every model is admitted and the model server decides, as it does behind ext_proc. Refusing
 *   instead would turn the first second after a start (or a pool whose servers lack the route) into errors for
 *   valid requests, while admitting costs at most the model server's own 404. The first round starts with the
 *   first request that is checked (nothing is fetched from a pool that serves no request).
 * - Each endpoint's fetch is bounded by `timeoutMs`; an endpoint that fails or times out contributes nothing.
 * - Time comes from the injected `now` (tests drive it; no timers are armed here).
 */
import http from 'node:http';
import type { Endpoint } from '../../framework/datalayer.ts';
import { EppError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import type { AdmissionCheck } from '../../runtime/request-path.ts';

export interface ModelEntry {
  readonly id: string;
  readonly object: 'model';
  readonly owned_by: string;
  readonly [k: string]: unknown;
}

export interface ModelCatalogOptions {
  /** The pool (from startup wiring). */
  readonly endpoints: () => readonly Endpoint[];
  readonly agent: http.Agent;
  readonly logger: Logger;
  readonly now: () => number;
  /** A list older than this is refreshed in the background on its next use. Default 5 s. */
  readonly ttlMs?: number;
  /** Bound of one endpoint's `GET /v1/models`. Default 1 s. */
  readonly timeoutMs?: number;
  /** A miss starts a refresh only when the list is older than this. Default 1 s. */
  readonly minRefreshMs?: number;
}

export class ModelCatalog {
  readonly #o: ModelCatalogOptions;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #minRefreshMs: number;
  #models: ModelEntry[] = [];
  #ids = new Set<string>();
  #fetchedAt = -Infinity;
  #inflight: Promise<void> | undefined;

  constructor(options: ModelCatalogOptions) {
    this.#o = options;
    this.#ttlMs = options.ttlMs ?? 5000;
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#minRefreshMs = options.minRefreshMs ?? 1000;
  }

  /** The served model ids as last fetched (no refresh): for bounding metric labels. */
  has(model: string): boolean {
    return this.#ids.has(model);
  }

  /** The list for `GET /v1/models`: the client asked for it, so it waits for a fresh round (shared if one runs). */
  async list(): Promise<ModelEntry[]> {
    await this.refresh();
    return this.#models;
  }

  /** Starts a round of `GET /v1/models` (or joins the one in flight); resolves when it ended. Never rejects. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#refresh().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  /** Resolves when no refresh is in flight (tests, shutdown). */
  whenSettled(): Promise<void> {
    return this.#inflight ?? Promise.resolve();
  }

  /** Synchronous: true when the model is served or the catalog knows no model (fail-open). See the contract. */
  admits(model: string): boolean {
    const age = this.#o.now() - this.#fetchedAt;
    if (age >= this.#ttlMs) void this.refresh();
    if (this.#ids.has(model)) return true;
    if (age >= this.#minRefreshMs) void this.refresh();
    return this.#models.length === 0;
  }

  /**
   * The gateway's admission-phase participant: 404 for a model the pool does not serve. Checked on the name sent
   * upstream (after the rewrite header or an InferenceModelRewrite rule), so aliases pass when their target is
   * served.
   */
  admissionCheck(): AdmissionCheck {
    return {
      name: 'gateway-model-catalog',
      check: (request) => {
        if (request.targetModel === '' || this.admits(request.targetModel)) return;
        throw new EppError('NotFound', `The model \`${request.targetModel}\` does not exist.`);
      },
    };
  }

  async #refresh(): Promise<void> {
    const lists = await Promise.all(this.#o.endpoints().map((e) => this.#fetch(e)));
    const byId = new Map<string, ModelEntry>();
    for (const list of lists) for (const m of list) if (!byId.has(m.id)) byId.set(m.id, m);
    this.#models = [...byId.values()];
    this.#ids = new Set(byId.keys());
    this.#fetchedAt = this.#o.now();
  }

  #fetch(e: Endpoint): Promise<ModelEntry[]> {
    return new Promise((resolve) => {
      const req = http.get({ host: e.metadata.address, port: e.metadata.port, path: '/v1/models', agent: this.#o.agent, timeout: this.#timeoutMs }, (res) => {
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
        this.#o.logger.debug({ endpoint: e.hostPort, err: err.message }, 'model list unavailable');
        resolve([]);
      });
    });
  }
}
