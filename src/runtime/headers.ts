/**
 * Header names with a meaning to the EPP, and the rules for echoing headers upstream (epp-spec §1.3–§1.4).
 */
import { randomUUID } from 'node:crypto';

const REQUEST_ID_HEADER = 'x-request-id';
export const DESTINATION_ENDPOINT_HEADER = 'x-gateway-destination-endpoint';
const DESTINATION_ENDPOINT_SERVED_HEADER = 'x-gateway-destination-endpoint-served';
export const DESTINATION_SUBSET_HEADER = 'x-gateway-destination-endpoint-subset';
export const FAIRNESS_ID_HEADER = 'x-gateway-inference-fairness-id';
export const OBJECTIVE_HEADER = 'x-gateway-inference-objective';
export const MODEL_REWRITE_HEADER = 'x-gateway-model-name-rewrite';
/** Dynamic-metadata namespace Envoy's load balancer reads. */
export const ENVOY_LB_NAMESPACE = 'envoy.lb';
export const SUBSET_HINT_NAMESPACE = 'envoy.lb.subset_hint';
export const DEFAULT_FAIRNESS_ID = 'default-flow';

/**
 * Headers the EPP owns: consumed from the client, or injected by the EPP. They are never echoed upstream, so a
 * client cannot forge a routing decision (e.g. by sending its own `x-gateway-destination-endpoint`).
 */
const SYSTEM_OWNED = new Set([
  FAIRNESS_ID_HEADER,
  OBJECTIVE_HEADER,
  MODEL_REWRITE_HEADER,
  DESTINATION_SUBSET_HEADER,
  DESTINATION_ENDPOINT_HEADER,
  DESTINATION_ENDPOINT_SERVED_HEADER,
  'content-length',
]);

/** True for headers the EPP owns (`name` must be lower-case). */
export function isSystemOwnedHeader(name: string): boolean {
  return SYSTEM_OWNED.has(name);
}

/**
 * Returns the request id from lower-cased headers, generating a UUID (and storing it in `headers`, so it is
 * forwarded upstream) when it is absent or empty.
 */
export function ensureRequestId(headers: Record<string, string>): string {
  const id = headers[REQUEST_ID_HEADER];
  if (id !== undefined && id.trim() !== '') return id;
  const generated = randomUUID();
  headers[REQUEST_ID_HEADER] = generated;
  return generated;
}

/** The request path used for API-type detection: `:path`, else `x-original-path`, else `x-forwarded-path`. */
export function requestPath(headers: Record<string, string>): string {
  return headers[':path'] || headers['x-original-path'] || headers['x-forwarded-path'] || '/v1/completions';
}
