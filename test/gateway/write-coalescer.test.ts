/** The gateway's per-turn write batching: one uncork per response per turn, after the turn, never later. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WriteCoalescer, type CorkableResponse } from '../../src/server/gateway/write-coalescer.ts';

class FakeResponse implements CorkableResponse {
  readonly log: string[] = [];
  corks = 0;
  destroyed = false;
  get writableCorked(): number {
    return this.corks;
  }
  cork(): void {
    this.corks++;
    this.log.push('cork');
  }
  uncork(): void {
    this.corks--;
    this.log.push('uncork');
  }
  write(chunk: Uint8Array | string): boolean {
    this.log.push(`write:${String(chunk)}`);
    return true;
  }
}

test('chunks of one turn leave in one batch per response; the batch is released at the end of that turn', async () => {
  const c = new WriteCoalescer();
  const a = new FakeResponse();
  const b = new FakeResponse();
  c.write(a, '1');
  c.write(b, 'x');
  c.write(a, '2');
  assert.deepEqual(a.log, ['cork', 'write:1', 'write:2'], 'held while the turn runs');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(a.log, ['cork', 'write:1', 'write:2', 'uncork']);
  assert.deepEqual(b.log, ['cork', 'write:x', 'uncork']);
  assert.equal(a.writableCorked, 0);
});

test('a lone chunk is released as soon as its turn ends (no timer, no wait for company); the next turn is a new batch', async () => {
  const c = new WriteCoalescer();
  const a = new FakeResponse();
  c.write(a, 'only');
  await new Promise((r) => setImmediate(r));
  assert.equal(a.writableCorked, 0);
  c.write(a, 'again');
  assert.equal(a.writableCorked, 1);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(a.log, ['cork', 'write:only', 'uncork', 'cork', 'write:again', 'uncork']);
});

test('a response destroyed during the turn is not touched again', async () => {
  const c = new WriteCoalescer();
  const a = new FakeResponse();
  c.write(a, '1');
  a.destroyed = true;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(a.log, ['cork', 'write:1']);
});
