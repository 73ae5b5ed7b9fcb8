/**
 * Stream driver shared by the abort-storm test and `npm run soak`: many ext_proc streams through a raw HTTP/2
 * client, a share of them cancelled (RST_STREAM, as Envoy does) at a random point of the exchange.
 */
import { chatBody, CHAT_PATH, sseChunk, USAGE_TAIL } from '../observability/helpers.ts';
import type { RawExtProcClient, RawStream } from './raw-ext-proc.ts';

export interface StormOptions {
  readonly client: RawExtProcClient;
  readonly streams: number;
  /** Share of streams cancelled, in [0, 1]. */
  readonly abortRatio: number;
  /** Streams in flight at once. */
  readonly concurrency: number;
  /** Uniform [0, 1) source (seeded in tests). */
  readonly random: () => number;
  /** Response chunks per completed stream. */
  readonly chunks?: number;
  /** Called after every `every` finished streams. */
  readonly progress?: { readonly every: number; readonly fn: (done: number) => void | Promise<void> };
}

export interface StormResult {
  readonly completed: number;
  readonly aborted: number;
  /** Streams ended by the loss of their connection (Node's HTTP/2 rapid-reset protection closes it). */
  readonly lost: number;
  /** Streams that ended with any other unexpected status (must be 0). */
  readonly failed: number;
}

/** Points at which a stream can be cancelled, in exchange order. */
const ABORT_POINTS = 7;

type Result = 'completed' | 'aborted' | 'lost' | 'failed';

async function one(s: RawStream, abortAt: number, chunks: number, id: number): Promise<Result> {
  const fail = async (): Promise<Result> => ((await s.ended).code === 14 ? 'lost' : 'failed');
  const stop = (p: number): boolean => {
    if (p !== abortAt) return false;
    s.cancel();
    return true;
  };
  s.requestHeaders({ ':path': CHAT_PATH, 'content-type': 'application/json', 'x-request-id': `storm-${id}` });
  if (stop(0)) return 'aborted';
  s.requestBody(chatBody(`prompt ${id % 97} `.repeat(8)), true);
  if (stop(1)) return 'aborted'; // while the request is being scheduled
  if ((await s.waitReplies(2)) < 2) return fail();
  if (stop(2)) return 'aborted';
  s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
  if (stop(3)) return 'aborted'; // while header hooks run
  if ((await s.waitReplies(3)) < 3) return fail();
  for (let i = 0; i < chunks; i++) {
    s.responseBody(sseChunk(i), false);
    if (i === Math.floor(chunks / 2) && stop(4)) return 'aborted'; // mid-stream
  }
  if ((await s.waitReplies(3 + chunks)) < 3 + chunks) return fail();
  if (stop(5)) return 'aborted';
  s.responseBody(USAGE_TAIL, true);
  if (stop(6)) return 'aborted'; // while completion hooks run
  if ((await s.waitReplies(4 + chunks)) < 4 + chunks) return fail();
  s.end();
  const end = await s.ended;
  return end.code === 0 ? 'completed' : end.code === 14 ? 'lost' : 'failed';
}

export async function runStorm(o: StormOptions): Promise<StormResult> {
  const chunks = o.chunks ?? 4;
  let next = 0;
  let done = 0;
  const counts = { completed: 0, aborted: 0, lost: 0, failed: 0 };
  const worker = async (): Promise<void> => {
    while (next < o.streams) {
      const id = next++;
      const abortAt = o.random() < o.abortRatio ? Math.floor(o.random() * ABORT_POINTS) : -1;
      const s = o.client.open();
      const r = await one(s, abortAt, chunks, id);
      if (r === 'aborted') await s.ended;
      counts[r]++;
      done++;
      if (o.progress && done % o.progress.every === 0) await o.progress.fn(done);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return counts;
}
