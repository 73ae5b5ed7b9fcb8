/**
 * vLLM's (and SGLang's) KV-cache event wire format, decoded into one normalised shape.
 *
 * A ZeroMQ message is three frames: `[topic (utf-8), seq (u64 big-endian), payload (msgpack)]`. The payload is
 * a batch `[ts, events, data_parallel_rank?]` (or a map `{ts, events, data_parallel_rank | attn_dp_rank}`).
 * Each event is either the legacy positional form `[tag, field1, field2, …]` (trailing defaults omitted) or
 * the map form `{type: tag, field: value, …}` (vLLM ≥ #42892). Fields are picked by name (map) or by their
 * position (array); unknown fields are ignored and unknown tags are skipped — both counted, never fatal.
 *
 * Block hashes arrive as small msgpack ints, uint64 (decoded as bigint, never a lossy JS number) or raw bytes
 * (`VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0`: the last 8 bytes big-endian, as vLLM's int form). All are
 * normalised to an unsigned 64-bit `bigint`: engine hashes are opaque ids to us.
 */
import { Decoder } from '@msgpack/msgpack';

export type Hash64 = bigint;

export interface BlockStored {
  readonly type: 'BlockStored';
  readonly blockHashes: readonly Hash64[];
  readonly parent: Hash64 | null;
  /** Tokens of all stored blocks, concatenated (empty for a tier copy, e.g. GPU → CPU offload). */
  readonly tokenIds: Uint32Array;
  readonly blockSize: number;
  readonly loraId: number | null;
  /** `GPU`, `CPU`, … as sent (null = GPU). */
  readonly medium: string | null;
  readonly loraName: string | null;
  /** One entry per block (vLLM's extra keys: LoRA name, multimodal ids, cache salt…), or null. */
  readonly extraKeys: readonly (readonly unknown[] | null)[] | null;
  readonly groupIdx: number | null;
  readonly specKind: string | null;
}

export interface BlockRemoved {
  readonly type: 'BlockRemoved';
  readonly blockHashes: readonly Hash64[];
  readonly medium: string | null;
  readonly groupIdx: number | null;
}

export interface AllBlocksCleared {
  readonly type: 'AllBlocksCleared';
}

export type KvEvent = BlockStored | BlockRemoved | AllBlocksCleared;

export interface KvEventBatch {
  readonly seq: bigint;
  readonly topic: string;
  /** Unix seconds. */
  readonly ts: number;
  readonly dpRank: number | null;
  readonly events: readonly KvEvent[];
}

/** What the decoder skipped, for counters (`epp_kv_events_skipped_total{reason}`). */
export interface DecodeStats {
  unknownTags: number;
  unknownFields: number;
  malformedEvents: number;
}

export class KvEventDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvEventDecodeError';
  }
}

const U64 = (1n << 64n) - 1n;

/** Normalises a wire hash (int, bigint or bytes) to an unsigned 64-bit bigint. */
export function toHash64(v: unknown): Hash64 {
  if (typeof v === 'bigint') return v & U64;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new KvEventDecodeError(`block hash is not an integer: ${v}`);
    return BigInt(v) & U64;
  }
  if (v instanceof Uint8Array) {
    if (v.length === 0) throw new KvEventDecodeError('block hash is an empty byte string');
    let h = 0n;
    for (let i = Math.max(0, v.length - 8); i < v.length; i++) h = (h << 8n) | BigInt(v[i] as number);
    return h;
  }
  throw new KvEventDecodeError(`block hash has an unexpected type (${v === null ? 'null' : typeof v})`);
}

/** Reads a seq frame: 8 bytes big-endian, unsigned (END_SEQ = 2^64 − 1, i.e. −1 signed). */
export function readSeq(frame: Uint8Array): bigint {
  if (frame.length !== 8) throw new KvEventDecodeError(`sequence frame has ${frame.length} bytes, expected 8`);
  return new DataView(frame.buffer, frame.byteOffset, 8).getBigUint64(0, false);
}

export function writeSeq(seq: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, seq), false);
  return out;
}

/** Replay end marker: seq −1 (all ones). */
export const END_SEQ = (1n << 64n) - 1n;

const BLOCK_STORED_FIELDS = [
  'block_hashes', 'parent_block_hash', 'token_ids', 'block_size', 'lora_id', 'medium', 'lora_name', 'extra_keys',
  'group_idx', 'kv_cache_spec_kind', 'kv_cache_spec_sliding_window',
] as const;
const BLOCK_REMOVED_FIELDS = ['block_hashes', 'medium', 'group_idx'] as const;
const KNOWN_FIELDS: Record<string, ReadonlySet<string>> = {
  BlockStored: new Set(['type', ...BLOCK_STORED_FIELDS]),
  BlockRemoved: new Set(['type', ...BLOCK_REMOVED_FIELDS]),
  AllBlocksCleared: new Set(['type']),
};

const hashList = (v: unknown, what: string): Hash64[] => {
  if (!Array.isArray(v)) throw new KvEventDecodeError(`${what}: expected a list of block hashes`);
  return v.map(toHash64);
};
const optString = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const optInt = (v: unknown): number | null =>
  typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'bigint' ? Number(v) : null;

/** Field accessor over either form: by name for maps, by position (1-based after the tag) for arrays. */
function fieldsOf(raw: unknown, names: readonly string[], stats: DecodeStats): ((name: string) => unknown) | undefined {
  if (Array.isArray(raw)) {
    if (raw.length - 1 > names.length) stats.unknownFields += raw.length - 1 - names.length;
    return (name) => raw[names.indexOf(name) + 1];
  }
  if (raw instanceof Map) return fieldsOf(Object.fromEntries(raw), names, stats);
  if (raw !== null && typeof raw === 'object') {
    const obj = raw as Record<string, unknown>;
    const known = KNOWN_FIELDS[String(obj.type)];
    if (known !== undefined) for (const k of Object.keys(obj)) if (!known.has(k)) stats.unknownFields++;
    return (name) => obj[name];
  }
  return undefined;
}

function tagOf(raw: unknown): unknown {
  if (Array.isArray(raw)) return raw[0];
  if (raw !== null && typeof raw === 'object') return (raw as Record<string, unknown>).type;
  return undefined;
}

/** Decodes one event; undefined (and counted) for an unknown tag or a malformed event. */
function decodeEvent(raw: unknown, stats: DecodeStats): KvEvent | undefined {
  const tag = tagOf(raw);
  try {
    switch (tag) {
      case 'BlockStored': {
        const f = fieldsOf(raw, BLOCK_STORED_FIELDS, stats);
        if (f === undefined) break;
        const tokens = f('token_ids');
        const blockSize = optInt(f('block_size'));
        if (!Array.isArray(tokens) || blockSize === null || blockSize <= 0) {
          throw new KvEventDecodeError('BlockStored: token_ids and block_size are required');
        }
        const extra = f('extra_keys');
        const parent = f('parent_block_hash');
        return {
          type: 'BlockStored',
          blockHashes: hashList(f('block_hashes'), 'BlockStored.block_hashes'),
          parent: parent === null || parent === undefined ? null : toHash64(parent),
          // A typed array: request keys are hashed from typed arrays on both sides (monomorphic, compact).
          tokenIds: Uint32Array.from(tokens as unknown[], (t) => (typeof t === 'bigint' ? Number(t) : (t as number))),
          blockSize,
          loraId: optInt(f('lora_id')),
          medium: optString(f('medium')),
          loraName: optString(f('lora_name')),
          extraKeys: Array.isArray(extra) ? extra.map((e) => (Array.isArray(e) ? e : null)) : null,
          groupIdx: optInt(f('group_idx')),
          specKind: optString(f('kv_cache_spec_kind')),
        };
      }
      case 'BlockRemoved': {
        const f = fieldsOf(raw, BLOCK_REMOVED_FIELDS, stats);
        if (f === undefined) break;
        return {
          type: 'BlockRemoved',
          blockHashes: hashList(f('block_hashes'), 'BlockRemoved.block_hashes'),
          medium: optString(f('medium')),
          groupIdx: optInt(f('group_idx')),
        };
      }
      case 'AllBlocksCleared':
        fieldsOf(raw, [], stats);
        return { type: 'AllBlocksCleared' };
      default:
        stats.unknownTags++;
        return undefined;
    }
  } catch (err) {
    if (!(err instanceof KvEventDecodeError)) throw err;
  }
  stats.malformedEvents++;
  return undefined;
}

const decoder = new Decoder({ useBigInt64: true });

/**
 * Decodes one batch payload. Throws `KvEventDecodeError` when the payload is not a batch at all (the caller
 * counts it and treats the seq as lost); bad events inside a good batch are skipped and counted.
 */
export function decodeBatch(topic: string, seq: bigint, payload: Uint8Array, stats: DecodeStats): KvEventBatch {
  let raw: unknown;
  try {
    raw = decoder.decode(payload);
  } catch (err) {
    throw new KvEventDecodeError(`payload is not valid msgpack: ${(err as Error).message}`);
  }
  let ts: unknown;
  let events: unknown;
  let dp: unknown = null;
  if (Array.isArray(raw)) {
    if (raw.length < 2) throw new KvEventDecodeError(`batch array has ${raw.length} elements, expected [ts, events, dp_rank?]`);
    [ts, events, dp = null] = raw as unknown[];
  } else if (raw !== null && typeof raw === 'object' && !(raw instanceof Uint8Array)) {
    const m = raw as Record<string, unknown>;
    ts = m.ts;
    events = m.events;
    dp = m.data_parallel_rank ?? m.attn_dp_rank ?? null;
  } else {
    throw new KvEventDecodeError('batch is neither an array nor a map');
  }
  if (!Array.isArray(events)) throw new KvEventDecodeError('batch.events is not a list');
  const out: KvEvent[] = [];
  for (const e of events) {
    const ev = decodeEvent(e, stats);
    if (ev !== undefined) out.push(ev);
  }
  return {
    seq,
    topic,
    ts: typeof ts === 'number' ? ts : typeof ts === 'bigint' ? Number(ts) : 0,
    dpRank: optInt(dp),
    events: out,
  };
}

/**
 * The `<ip>:<port>` of llm-d's topic convention `kv@<ip>:<port>@<model>` (IPv6 as `[addr]:port`; the model part may
 * be missing), or undefined when the topic has no non-empty second part. Routes messages of the bound socket.
 */
export function topicHostPort(topic: string): string | undefined {
  const first = topic.indexOf('@');
  if (first < 0) return undefined;
  const second = topic.indexOf('@', first + 1);
  const hp = second < 0 ? topic.slice(first + 1) : topic.slice(first + 1, second);
  return hp === '' ? undefined : hp;
}
