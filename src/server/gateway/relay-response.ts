/**
 * The gateway's response side: relays one upstream response to the client through the response relay
 * (runtime/response-relay.ts) — header hooks awaited, then streamed chunk by chunk (pump.ts) or buffered for the
 * hooks up to the cap and passed through beyond it; the client's model name restored. Contract: the client's
 * end waits for completion; after a write the client did not absorb, nothing more is read from upstream until
 * it drained; hop-by-hop headers are never relayed; an upstream that sends nothing for `idleMs` fails the
 * returned promise with an UpstreamTimeout (the caller ends the response).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RoutingDecision } from '../../runtime/request-path.ts';
import type { ResponseRelay } from '../../runtime/response-relay.ts';
import { UpstreamTimeout } from './limits.ts';
import { pump } from './pump.ts';

/** Response headers not relayed to the client (hop-by-hop; the gateway frames the body itself). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);

/** A message's headers as one string per (lower-case) name; repeated values are joined with ', '. */
export function joinedHeaders(msg: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/**
 * Relays the upstream response through the response relay (hooks, streamed or buffered, model restore); the
 * client's end waits for completion. Pipeline semantics: after a write the client did not absorb, nothing more
 * is read from upstream until it drained.
 */
export async function relayResponse(decision: RoutingDecision, relay: ResponseRelay, up: IncomingMessage, res: ServerResponse, idleMs: number): Promise<void> {
  const status = up.statusCode ?? 502;
  const upHeaders = joinedHeaders(up);

  const h = relay.start(status, upHeaders);
  if (h) await h;
  if (res.destroyed) return void up.destroy();
  const streaming = relay.streaming;
  const outHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(decision.response.info.headers)) if (!HOP_BY_HOP.has(k)) outHeaders[k] = v;
  if (!relay.rewritesBody && !streaming && upHeaders['content-length'] !== undefined) outHeaders['content-length'] = upHeaders['content-length'];
  outHeaders['x-request-id'] = decision.request.requestId;
  res.writeHead(status, outHeaders);
  res.flushHeaders();

  if (streaming) {
    await pump(up, res, {
      onChunk: (chunk) => relay.chunk(chunk),
      write: (chunk) => res.write(relay.restore(chunk)),
      idleMs: idleMs,
      onIdle: () => new UpstreamTimeout('idle', idleMs),
    });
    if (res.destroyed) return;
    await relay.end();
    res.end();
    return;
  }
  const chunks = idleGuarded(up, idleMs);
  // Buffered: hooks see the whole body once, as with ext_proc — up to the cap. Beyond it the body passes through
  // (with backpressure) and the hooks see only the end of the stream (usage unknown; counted by the relay).
  for await (const chunk of chunks) {
    if (!relay.passingThrough) {
      const held = relay.hold(chunk);
      if (held === undefined) continue;
      if (held.length > 0 && !res.write(held)) await drained(res);
      if (res.destroyed) return void up.destroy();
    }
    if (!res.write(chunk)) await drained(res);
    if (res.destroyed) return void up.destroy();
  }
  if (res.destroyed) return;
  if (relay.passingThrough) {
    await relay.end();
    res.end();
    return;
  }
  const whole = relay.takeHeld();
  await relay.end(whole);
  res.end(relay.restore(whole));
}


/** Resolves when `res` drained its buffer or closed. */
function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed || !res.writableNeedDrain) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * The chunks of `up`; when the next chunk takes longer than `idleMs` to arrive (time spent waiting for the client
 * to drain does not count), `up` is destroyed and the iteration throws an UpstreamTimeout.
 */
async function* idleGuarded(up: IncomingMessage, idleMs: number): AsyncGenerator<Buffer> {
  const it = (up as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    if (idleMs > 0) {
      timer = setTimeout(() => up.destroy(new UpstreamTimeout('idle', idleMs)), idleMs);
      timer.unref();
    }
    let r: IteratorResult<Buffer>;
    try {
      r = await it.next();
    } finally {
      clearTimeout(timer);
    }
    if (r.done) return;
    yield r.value;
  }
}
