/** Helpers shared by the observability, golden and hardening tests. */
import { request } from 'node:http';
import type { EnvoyStream } from '../support/fake-envoy.ts';

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A plain HTTP request to 127.0.0.1:port (no keep-alive, so nothing lingers after a test). */
export function http(port: number, path: string, method = 'GET'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export const CHAT_PATH = '/v1/chat/completions';

export function chatBody(content: string, stream = true, model = 'm1'): string {
  return JSON.stringify({ model, stream, messages: [{ role: 'user', content }] });
}

export function sseChunk(i: number): string {
  return `data: {"id":"c","object":"chat.completion.chunk","model":"m1","choices":[{"index":0,"delta":{"content":"t${i}"}}]}\n\n`;
}

export const USAGE_TAIL = 'data: {"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}\n\ndata: [DONE]\n\n';

/** One complete streamed request through the fake Envoy: route, response headers, `chunks` chunks, usage, end. */
export async function fullStreamedRequest(s: EnvoyStream, content: string, chunks = 3, headers: Record<string, string> = {}): Promise<void> {
  s.requestHeaders({ ':path': CHAT_PATH, ':method': 'POST', 'content-type': 'application/json', ...headers });
  s.requestBody(chatBody(content), true);
  await s.nextN(2);
  s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
  await s.next();
  for (let i = 0; i < chunks; i++) {
    s.responseBody(sseChunk(i), false);
    await s.next();
  }
  s.responseBody(USAGE_TAIL, true);
  await s.next();
  s.end();
  await s.ended;
}

/** Sample lines of one family from a text exposition (`name{labels} value`), HELP/TYPE excluded. */
export function samples(text: string, family: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(family) && (l[family.length] === '{' || l[family.length] === ' ' || l.slice(family.length).startsWith('_')));
}

/** The value of the sample with exactly this name and label set (`name{a="b"}`), or undefined. */
export function sampleValue(text: string, series: string): number | undefined {
  for (const l of text.split('\n')) {
    if (l.startsWith(`${series} `)) return Number(l.slice(series.length + 1));
  }
  return undefined;
}
