/** Test fixtures for flow-control policy tests: queue items, flows and bands. Never imported by a plugin. */
import type { BandView, FlowQueueView, OrderingPolicy, QueueItem } from '../../src/framework/flowcontrol.ts';
import { makeRequest } from './plugin-fixtures.ts';

let seq = 0;

export function makeItem(opts: { enqueuedAt?: number; ttlMs?: number; receivedAt?: number; headers?: Record<string, string>; fairnessId?: string } = {}): QueueItem {
  const request = { ...makeRequest({ headers: opts.headers ?? {} }), receivedAt: opts.receivedAt ?? 0, fairnessId: opts.fairnessId ?? 'default-flow' };
  return { request, enqueuedAt: opts.enqueuedAt ?? 0, ttlMs: opts.ttlMs ?? 0, byteSize: 10, seq: seq++ };
}

/** A flow over a fixed item list (already in dispatch order). */
export function makeFlow(fairnessId: string, items: QueueItem[]): FlowQueueView & { items: QueueItem[] } {
  return {
    fairnessId,
    priority: 0,
    items,
    get length() {
      return items.length;
    },
    bytes: items.length * 10,
    peek: () => items[0],
  };
}

export function makeBand(flows: FlowQueueView[], ordering: OrderingPolicy): BandView {
  return { priority: 0, flows, ordering, state: new Map() };
}
