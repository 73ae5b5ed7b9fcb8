/**
 * Passive reachability: endpoints that refused a connection are left out of scheduling until they prove
 * alive again — a successful connection, or a metrics scrape newer than the failure — or `cooldownMs` passes.
 * If every candidate is excluded, all are kept (fail open). Only the embedded gateway reports failures
 * (behind Envoy, Envoy sees connection errors, not us).
 */
import type { Endpoint } from '../framework/datalayer.ts';

export class Reachability {
  readonly #failedAt = new Map<string, number>();
  readonly #now: () => number;
  readonly #cooldownMs: number;

  constructor(now: () => number, cooldownMs = 10_000) {
    this.#now = now;
    this.#cooldownMs = cooldownMs;
  }

  unreachable(e: Endpoint): void {
    this.#failedAt.set(e.hostPort, this.#now());
  }

  reachable(e: Endpoint): void {
    if (this.#failedAt.size > 0) this.#failedAt.delete(e.hostPort);
  }

  /** The endpoints worth scheduling on. Returns `endpoints` itself when nothing is excluded. */
  filter(endpoints: readonly Endpoint[]): readonly Endpoint[] {
    if (this.#failedAt.size === 0) return endpoints;
    const now = this.#now();
    const ok = endpoints.filter((e) => {
      const at = this.#failedAt.get(e.hostPort);
      if (at === undefined) return true;
      if (now - at > this.#cooldownMs || e.metrics.updateTime > at) {
        this.#failedAt.delete(e.hostPort);
        return true;
      }
      return false;
    });
    return ok.length === 0 ? endpoints : ok;
  }
}
