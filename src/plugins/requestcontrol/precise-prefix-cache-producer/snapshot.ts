/**
 * Full-state dump of an engine's prefix cache over HTTP (`GET /kv_state`, served by the simulator; vLLM has no
 * such endpoint yet, vllm-project/vllm#40363). Blocks come parents first and are replayed as BlockStored events.
 */
import type { KvSnapshot } from './endpoint-sync.ts';
import { toHash64, type KvEvent } from './kv-events.ts';

interface DumpBlock {
  hash: string;
  parent: string | null;
  token_ids: number[];
  lora_name: string | null;
  extra_keys: (string | number)[] | null;
  medium: string | null;
  copies?: number;
}

export async function fetchSnapshot(baseUrl: string, timeoutMs: number): Promise<KvSnapshot> {
  const res = await fetch(`${baseUrl}/kv_state`, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${baseUrl}/kv_state answered ${res.status}`);
  const dump = JSON.parse(text) as { seq?: unknown; block_size?: unknown; blocks?: unknown };
  if (typeof dump.seq !== 'string' || typeof dump.block_size !== 'number' || !Array.isArray(dump.blocks)) {
    throw new Error(`GET ${baseUrl}/kv_state: expected {seq, block_size, blocks}`);
  }
  const events: KvEvent[] = [];
  for (const b of dump.blocks as DumpBlock[]) {
    const ev: KvEvent = {
      type: 'BlockStored',
      blockHashes: [toHash64(BigInt(b.hash))],
      parent: b.parent === null ? null : toHash64(BigInt(b.parent)),
      tokenIds: Uint32Array.from(b.token_ids),
      blockSize: dump.block_size,
      loraId: null,
      medium: b.medium,
      loraName: b.lora_name,
      extraKeys: [b.extra_keys],
      groupIdx: null,
      specKind: null,
    };
    for (let c = 0; c < Math.max(1, b.copies ?? 1); c++) events.push(ev);
  }
  // seq −1 = nothing published yet: the next live batch is seq 0.
  const seq = BigInt(dump.seq);
  return { seq: seq < 0n ? -1n : seq, blockSize: dump.block_size, events };
}
