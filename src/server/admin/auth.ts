/**
 * `--metrics-endpoint-auth`: who may read `/metrics` (epp-spec §7.1). Upstream wraps its metrics server in
 * controller-runtime's authentication/authorization filter: the scraper's bearer token is checked with a
 * Kubernetes TokenReview, then a SubjectAccessReview asks whether that user may `get` the non-resource URL
 * `/metrics`. We do the same when a cluster is reachable, or compare against a static token
 * (`--metrics-auth-token-file`) outside Kubernetes. `/healthz` and `/readyz` stay open (probes carry no token).
 *
 * Decisions are cached per token for `cacheTtlMs` (bounded number of entries), so a scrape every few seconds
 * costs the API server two requests per token per TTL, not per scrape.
 *
 * The Kubernetes client (the slowest and largest module to load) is loaded only when a KubernetesAuthorizer is
 * created (`KubernetesAuthorizer.create`), not by importing this module.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AuthenticationV1Api, AuthorizationV1Api } from '@kubernetes/client-node';
import { EppConfigError } from '../../framework/errors.ts';
import { systemClock } from '../../util/clock.ts';

export type AuthResult =
  | { readonly ok: true; readonly user?: string }
  | { readonly ok: false; readonly status: 401 | 403 | 503; readonly reason: 'missing' | 'invalid' | 'forbidden' | 'error'; readonly message: string };

export interface MetricsAuthorizer {
  /** Decides on the request's `Authorization` header value. Never throws. */
  check(authorization: string | undefined): Promise<AuthResult>;
}

const MISSING: AuthResult = { ok: false, status: 401, reason: 'missing', message: 'a bearer token is required (Authorization: Bearer <token>)' };
const INVALID: AuthResult = { ok: false, status: 401, reason: 'invalid', message: 'the bearer token is not valid' };

function bearer(authorization: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return m?.[1];
}

/** A static token (or several, one per line) read once from a file. */
export class StaticTokenAuthorizer implements MetricsAuthorizer {
  readonly #tokens: readonly Buffer[];

  constructor(tokens: readonly string[]) {
    this.#tokens = tokens.map((t) => Buffer.from(t));
  }

  static fromFile(path: string): StaticTokenAuthorizer {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new EppConfigError(`--metrics-auth-token-file ${path}: ${(err as Error).message}`, 'point it at a readable file holding the token');
    }
    const tokens = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    if (tokens.length === 0) throw new EppConfigError(`--metrics-auth-token-file ${path}: the file holds no token`, 'write the token (one per line) into the file');
    return new StaticTokenAuthorizer(tokens);
  }

  check(authorization: string | undefined): Promise<AuthResult> {
    const token = bearer(authorization);
    if (token === undefined) return Promise.resolve(MISSING);
    const given = Buffer.from(token);
    const ok = this.#tokens.some((t) => t.length === given.length && timingSafeEqual(t, given));
    return Promise.resolve(ok ? { ok: true } : INVALID);
  }
}

export interface KubernetesAuthorizerOptions {
  /** kubeconfig path; default in-cluster, then $KUBECONFIG, then ~/.kube/config. */
  readonly kubeconfig?: string;
  readonly cacheTtlMs?: number;
  readonly maxCacheEntries?: number;
  readonly now?: () => number;
}

type KubernetesClient = typeof import('@kubernetes/client-node');

/** TokenReview + SubjectAccessReview (`get` on the non-resource URL `/metrics`), as upstream. */
export class KubernetesAuthorizer implements MetricsAuthorizer {
  /** Loads the Kubernetes client, then the kubeconfig; a bad kubeconfig is an EppConfigError. */
  static async create(o: KubernetesAuthorizerOptions = {}): Promise<KubernetesAuthorizer> {
    return new KubernetesAuthorizer(await import('@kubernetes/client-node'), o);
  }

  readonly #authn: AuthenticationV1Api;
  readonly #authz: AuthorizationV1Api;
  readonly #ttl: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { result: AuthResult; expires: number }>();

  private constructor(k8s: KubernetesClient, o: KubernetesAuthorizerOptions) {
    const kc = new k8s.KubeConfig();
    try {
      if (o.kubeconfig !== undefined && o.kubeconfig !== '') kc.loadFromFile(o.kubeconfig);
      else kc.loadFromDefault();
    } catch (err) {
      throw new EppConfigError(`--metrics-endpoint-auth: cannot load kubeconfig: ${(err as Error).message}`, 'run in-cluster, pass --kubeconfig, or use --metrics-auth-token-file outside Kubernetes');
    }
    if (kc.getCurrentCluster() === null) {
      throw new EppConfigError('--metrics-endpoint-auth: no Kubernetes cluster configured', 'run in-cluster, pass --kubeconfig, or use --metrics-auth-token-file outside Kubernetes');
    }
    this.#authn = kc.makeApiClient(k8s.AuthenticationV1Api);
    this.#authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    this.#ttl = o.cacheTtlMs ?? 10_000;
    this.#max = o.maxCacheEntries ?? 256;
    this.#now = o.now ?? systemClock.now;
  }

  async check(authorization: string | undefined): Promise<AuthResult> {
    const token = bearer(authorization);
    if (token === undefined) return MISSING;
    const now = this.#now();
    const hit = this.#cache.get(token);
    if (hit !== undefined && hit.expires > now) return hit.result;
    const result = await this.#review(token);
    if (result.ok || result.reason !== 'error') {
      this.#cache.delete(token);
      this.#cache.set(token, { result, expires: now + this.#ttl });
      while (this.#cache.size > this.#max) this.#cache.delete(this.#cache.keys().next().value as string);
    }
    return result;
  }

  async #review(token: string): Promise<AuthResult> {
    try {
      const review = await this.#authn.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } });
      const user = review.status?.user;
      if (review.status?.authenticated !== true || user === undefined) return INVALID;
      const sar = await this.#authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: user.username,
            groups: user.groups,
            uid: user.uid,
            ...(user.extra ? { extra: user.extra } : {}),
            nonResourceAttributes: { path: '/metrics', verb: 'get' },
          },
        },
      });
      if (sar.status?.allowed === true) return { ok: true, user: user.username ?? '' };
      return { ok: false, status: 403, reason: 'forbidden', message: `user "${user.username ?? ''}" may not get /metrics${sar.status?.reason ? `: ${sar.status.reason}` : ''}` };
    } catch (err) {
      return { ok: false, status: 503, reason: 'error', message: `cannot review the token with the Kubernetes API: ${(err as Error).message.split('\n', 1)[0] ?? ''}` };
    }
  }
}
