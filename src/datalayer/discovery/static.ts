/**
 * Static discovery: `--endpoints ip:port,...` (also host names and bracketed IPv6, `[::1]:8000`).
 */
import { joinHostPort, type EndpointMetadata } from '../../framework/datalayer.ts';
import { EppConfigError } from '../../framework/errors.ts';

export interface HostPort {
  readonly address: string;
  readonly port: number;
}

/** Parses `host:port` / `[v6]:port`. Throws `Error` with the reason. */
export function parseHostPort(text: string): HostPort {
  const s = text.trim();
  let address: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close === -1 || s[close + 1] !== ':') throw new Error(`'${text}' is not [ipv6]:port`);
    address = s.slice(1, close);
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon <= 0) throw new Error(`'${text}' is not host:port`);
    address = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (address.includes(':')) throw new Error(`'${text}': bracket IPv6 addresses, e.g. [${address}]:${portText}`);
  }
  if (!/^\d{1,5}$/.test(portText)) throw new Error(`'${text}': port '${portText}' is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new Error(`'${text}': port ${port} is out of range 1-65535`);
  if (address === '' || /\s/.test(address)) throw new Error(`'${text}': empty or invalid host`);
  return { address, port };
}

/** Metadata for a static endpoint: name and metrics host are `address:port`, podName is the address. */
function staticEndpoint(hp: HostPort, namespace: string, labels: Readonly<Record<string, string>> = {}): EndpointMetadata {
  const hostPort = joinHostPort(hp.address, hp.port);
  return { name: hostPort, namespace, podName: hp.address, address: hp.address, port: hp.port, metricsHost: hostPort, labels };
}

/**
 * Parses the `--endpoints` values (each entry may itself be a comma list). Throws `EppConfigError` naming the
 * bad entry; duplicates are an error too (they would silently collapse into one endpoint).
 */
export function parseStaticEndpoints(values: readonly string[], namespace: string): EndpointMetadata[] {
  const out: EndpointMetadata[] = [];
  const seen = new Set<string>();
  for (const entry of values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')) {
    let hp: HostPort;
    try {
      hp = parseHostPort(entry);
    } catch (err) {
      throw new EppConfigError(`--endpoints: ${(err as Error).message}`, 'list endpoints as ip:port[,ip:port...]');
    }
    const ep = staticEndpoint(hp, namespace);
    if (seen.has(ep.name)) throw new EppConfigError(`--endpoints: '${entry}' is listed twice`, 'remove the duplicate');
    seen.add(ep.name);
    out.push(ep);
  }
  // An explicitly empty list (`--endpoints=`) is an empty pool, as upstream serves one: requests get 503.
  return out;
}
