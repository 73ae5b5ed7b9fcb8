/**
 * Candidate endpoints of a request (epp-spec §5.4): the whole pool, or the subset the proxy names in
 * dynamic metadata `envoy.lb.subset_hint` / `x-gateway-destination-endpoint-subset` (a list of `ip[:port]`).
 *
 * - `--disable-endpoint-subset-filter`, no metadata, no namespace, or no key (or not a list) → all endpoints.
 * - An empty list → no endpoints (the director answers 503).
 * - Otherwise the port is stripped (everything from the last `:`) and endpoints match by IP, so every rank
 *   of a matching pod qualifies. Bracketed IPv6 entries never match (upstream behaviour, kept).
 *
 * With flow control on, results are cached for 50 ms per subset key (upstream), keyed also by the pool
 * snapshot so a membership change is seen at once.
 */
import type { Endpoint, EndpointStore } from '../framework/datalayer.ts';
import type { Clock, RandomSource } from '../framework/plugin.ts';
import type { CandidateLocator, RequestInput } from './request-path.ts';
import { DESTINATION_SUBSET_HEADER, SUBSET_HINT_NAMESPACE } from './headers.ts';

export const SUBSET_CACHE_TTL_MS = 50;
const NONE: readonly Endpoint[] = Object.freeze([]);

export interface SubsetLocatorOptions {
  readonly disabled?: boolean;
  /** Cache results per subset key for this long; 0 = no cache (default mode). */
  readonly cacheTtlMs?: number;
  readonly clock?: Clock;
}

/** The subset hint of a request: undefined = no hint (all endpoints), [] = explicitly empty. */
function subsetHint(proxyMetadata: RequestInput['proxyMetadata']): string[] | undefined {
  const ns = proxyMetadata[SUBSET_HINT_NAMESPACE];
  if (ns === undefined || ns === null) return undefined;
  const list = ns[DESTINATION_SUBSET_HEADER];
  if (!Array.isArray(list)) return undefined;
  return list.filter((x): x is string => typeof x === 'string');
}

function stripPort(entry: string): string {
  const i = entry.lastIndexOf(':');
  return i < 0 ? entry : entry.slice(0, i);
}

export class SubsetLocator implements CandidateLocator {
  readonly #store: EndpointStore;
  readonly #o: SubsetLocatorOptions;
  readonly #cache = new Map<string, { at: number; pool: readonly Endpoint[]; result: readonly Endpoint[] }>();
  #lastPurge = 0;

  constructor(store: EndpointStore, options: SubsetLocatorOptions = {}) {
    this.#store = store;
    this.#o = options;
  }

  locate(proxyMetadata: RequestInput['proxyMetadata']): readonly Endpoint[] {
    const pool = this.#store.endpoints();
    if (this.#o.disabled) return pool;
    const hint = subsetHint(proxyMetadata);
    if (hint === undefined) return pool;
    if (hint.length === 0) return NONE;
    const ttl = this.#o.cacheTtlMs ?? 0;
    if (ttl <= 0 || this.#o.clock === undefined) return match(pool, hint);
    const now = this.#o.clock.now();
    const key = hint.length === 1 ? (hint[0] as string) : [...hint].sort().join('|');
    const hit = this.#cache.get(key);
    if (hit !== undefined && hit.pool === pool && now - hit.at < ttl) return hit.result;
    const result = match(pool, hint);
    this.#cache.set(key, { at: now, pool, result });
    if (now - this.#lastPurge > 60_000) {
      this.#lastPurge = now;
      for (const [k, v] of this.#cache) if (now - v.at >= ttl) this.#cache.delete(k);
    }
    return result;
  }
}

function match(pool: readonly Endpoint[], hint: readonly string[]): readonly Endpoint[] {
  const ips = new Set(hint.map(stripPort));
  return pool.filter((ep) => ips.has(ep.metadata.address));
}

/**
 * A uniformly random endpoint of the pool, or undefined when it is empty: the target of a body-less request
 * (e.g. GET), which skips scheduling and every plugin (upstream behaviour).
 */
export function randomEndpoint(store: EndpointStore, random: RandomSource): Endpoint | undefined {
  const eps = store.endpoints();
  if (eps.length === 0) return undefined;
  return eps[Math.floor(random.next() * eps.length)];
}
