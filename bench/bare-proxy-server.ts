/**
 * Child process of bench/gateway.bench.ts: the floor of a streaming HTTP proxy on this stack, as the bare
 * grpc-js echo is the ext_proc floor. node:http in, node:http out to one upstream (argv[2] = its port), the
 * request body forwarded, and each upstream chunk written to the client as it arrives (`res.write`, chunked
 * encoding, as the gateway does). No routing, no body parsing, no hooks, no metrics, no limits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { announce } from './support/child.ts';

const upstreamPort = Number(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const server = http.createServer((req, res) => {
  const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    ur.on('data', (chunk: Buffer) => res.write(chunk));
    ur.on('end', () => res.end());
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => {
  announce((server.address() as AddressInfo).port, () => new Promise((resolve) => server.close(() => resolve())));
});
