/**
 * `header-based-testing-filter` (conformance tests only): keeps the endpoints named in the request header
 * `test-epp-endpoint-selection` (epp-spec §3.3). The header is a comma-separated list of `ip` or `ip:port`
 * (IPv6 bracketed or bare); `ip:port` requires an exact address and port match, a bare `ip` takes the first
 * candidate with that address. At most one endpoint per IP is kept, in header order. A missing or blank header
 * keeps nothing, so a conformance test that forgets the header fails loudly instead of routing anywhere.
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type { Candidate, CycleState, Filter } from '../../../../framework/scheduling.ts';

export const HEADER_BASED_TESTING_FILTER_TYPE = 'header-based-testing-filter';
export const ENDPOINT_SELECTION_HEADER = 'test-epp-endpoint-selection';

const parametersSchema = z.strictObject({});

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Splits `host:port`, `[v6]:port`, bare `host` or bare IPv6 into host (unbracketed) and port ('' if none). */
export function splitHostPort(item: string): { host: string; port: string } {
  if (item.startsWith('[')) {
    const close = item.indexOf(']');
    if (close > 0 && item[close + 1] === ':') return { host: item.slice(1, close), port: item.slice(close + 2) };
    return { host: stripBrackets(item), port: '' };
  }
  const first = item.indexOf(':');
  // Exactly one colon: host:port. None, or several (a bare IPv6 literal): no port.
  if (first >= 0 && item.indexOf(':', first + 1) < 0) return { host: item.slice(0, first), port: item.slice(first + 1) };
  return { host: item, port: '' };
}

export class HeaderBasedTestingFilter implements Filter {
  readonly typedName: TypedName;

  constructor(name: string = HEADER_BASED_TESTING_FILTER_TYPE) {
    this.typedName = { type: HEADER_BASED_TESTING_FILTER_TYPE, name };
  }

  filter(_cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): readonly Candidate[] {
    const header = request.headers[ENDPOINT_SELECTION_HEADER];
    if (header === undefined || header.trim() === '') return [];
    const kept: Candidate[] = [];
    const seenIps = new Set<string>();
    for (const raw of header.split(',')) {
      const item = raw.trim();
      if (item === '') continue;
      const { host, port } = splitHostPort(item);
      const match = candidates.find((c) => {
        const md = c.endpoint.metadata;
        return stripBrackets(md.address) === host && (port === '' || String(md.port) === port);
      });
      if (match === undefined) continue;
      const ip = stripBrackets(match.endpoint.metadata.address);
      if (seenIps.has(ip)) continue;
      seenIps.add(ip);
      kept.push(match);
    }
    return kept;
  }
}

export const headerBasedTestingFilterFactory: PluginFactory = (name, parameters) => {
  const filter = new HeaderBasedTestingFilter(name);
  parsePluginParameters(filter.typedName, parametersSchema, parameters);
  return filter;
};
