/**
 * `destination-endpoint-served-verifier` (epp-spec §2.4, Gateway API Inference Extension conformance): on the
 * response headers, copies the endpoint the proxy reports having served the request — filter metadata
 * `envoy.lb` / `x-gateway-destination-endpoint-served` — into the response header
 * `x-conformance-test-served-endpoint`, so a conformance test can check that the request went where the EPP said.
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { ResponseHeadersHook, ResponseInfo } from '../../../framework/requestcontrol.ts';

export const DESTINATION_ENDPOINT_SERVED_VERIFIER_TYPE = 'destination-endpoint-served-verifier';
const SERVED_ENDPOINT_RESPONSE_HEADER = 'x-conformance-test-served-endpoint';
const LB_NAMESPACE = 'envoy.lb';
const SERVED_KEY = 'x-gateway-destination-endpoint-served';

export class DestinationEndpointServedVerifier implements ResponseHeadersHook {
  readonly typedName: TypedName;
  constructor(name: string) {
    this.typedName = { type: DESTINATION_ENDPOINT_SERVED_VERIFIER_TYPE, name };
  }

  onResponseHeaders(response: ResponseInfo): void {
    const lb = response.proxyMetadata[LB_NAMESPACE];
    let value: string;
    if (lb === undefined) value = 'fail: missing envoy lb metadata';
    else {
      const served = lb[SERVED_KEY];
      value = typeof served === 'string' && served !== '' ? served : 'fail: missing destination endpoint served metadata';
    }
    response.headers[SERVED_ENDPOINT_RESPONSE_HEADER] = value;
  }
}

export const destinationEndpointServedVerifierFactory: PluginFactory = (name, parameters) => {
  const v = new DestinationEndpointServedVerifier(name);
  parsePluginParameters(v.typedName, z.strictObject({}), parameters);
  return v;
};
