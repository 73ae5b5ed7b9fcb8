/**
 * Wire format of one sync batch (little-endian, hand-written over DataView: no schema library needed, and the
 * fastest thing that works). Everything a reader needs is in the payload, so a transport carries opaque bytes.
 *
 *   u8  version (= 1)          u8  flags (bit0: has gauges, bit1: bye)
 *   u8  originLen, origin utf8 (`<replica>:<incarnation>`)
 *   u32 seq                    (per origin incarnation, +1 per batch; gaps are counted, not repaired)
 *   f64 sentAtMs               (wall clock of the sender, for the lag histogram)
 *   u8  nChannels, per channel: u8 len, utf8 plugin name, u32 fingerprint
 *   u16 nEndpoints, per endpoint: u8 len, utf8 endpoint name
 *   u32 nPlacements, per placement: u8 channel, u16 endpoint, u16 blockSizeTokens, u16 n, n × u64 hash
 *   u16 nGauges, per gauge: u8 channel, u16 endpoint, u32 requests, u32 tokens (absolute values)
 *
 * A snapshot field (one per channel and endpoint) is `u32 capacityBlocks, n × u64 hash` (oldest first).
 */
import { fromHalves, type BlockHashHalves } from '../../framework/replication.ts';

export const WIRE_VERSION = 1;
export const FLAG_GAUGES = 1;
export const FLAG_BYE = 2;

export interface WirePlacement {
  readonly channel: number;
  readonly endpoint: number;
  readonly blockSizeTokens: number;
  readonly hashes: readonly bigint[];
}

export interface WireGauge {
  readonly channel: number;
  readonly endpoint: number;
  readonly requests: number;
  readonly tokens: number;
}

export interface WireChannel {
  readonly name: string;
  readonly fingerprint: number;
}

export interface Batch {
  readonly origin: string;
  readonly seq: number;
  readonly sentAtMs: number;
  readonly flags: number;
  readonly channels: readonly WireChannel[];
  readonly endpoints: readonly string[];
  readonly placements: readonly WirePlacement[];
  readonly gauges: readonly WireGauge[];
}

export class WireFormatError extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function shortString(s: string, what: string): Uint8Array {
  const b = encoder.encode(s);
  if (b.length > 255) throw new WireFormatError(`${what} longer than 255 bytes: ${s.slice(0, 40)}…`);
  return b;
}

export function encodeBatch(b: Batch): Uint8Array {
  const origin = shortString(b.origin, 'origin');
  const channels = b.channels.map((c) => shortString(c.name, 'channel name'));
  const endpoints = b.endpoints.map((e) => shortString(e, 'endpoint name'));
  if (b.channels.length > 255) throw new WireFormatError('more than 255 channels');
  if (b.endpoints.length > 0xffff) throw new WireFormatError('more than 65535 endpoints in one batch');
  let size = 2 + 1 + origin.length + 4 + 8 + 1 + 2 + 4 + 2;
  for (const c of channels) size += 1 + c.length + 4;
  for (const e of endpoints) size += 1 + e.length;
  for (const p of b.placements) size += 7 + 8 * p.hashes.length;
  size += 13 * b.gauges.length;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  let o = 0;
  v.setUint8(o++, WIRE_VERSION);
  v.setUint8(o++, b.flags);
  v.setUint8(o++, origin.length);
  buf.set(origin, o);
  o += origin.length;
  v.setUint32(o, b.seq >>> 0, true);
  o += 4;
  v.setFloat64(o, b.sentAtMs, true);
  o += 8;
  v.setUint8(o++, channels.length);
  for (const [i, c] of channels.entries()) {
    v.setUint8(o++, c.length);
    buf.set(c, o);
    o += c.length;
    v.setUint32(o, (b.channels[i] as WireChannel).fingerprint >>> 0, true);
    o += 4;
  }
  v.setUint16(o, endpoints.length, true);
  o += 2;
  for (const e of endpoints) {
    v.setUint8(o++, e.length);
    buf.set(e, o);
    o += e.length;
  }
  v.setUint32(o, b.placements.length, true);
  o += 4;
  for (const p of b.placements) {
    const n = Math.min(p.hashes.length, 0xffff);
    v.setUint8(o++, p.channel);
    v.setUint16(o, p.endpoint, true);
    v.setUint16(o + 2, Math.min(p.blockSizeTokens, 0xffff), true);
    v.setUint16(o + 4, n, true);
    o += 6;
    for (let i = 0; i < n; i++, o += 8) v.setBigUint64(o, p.hashes[i] as bigint, true);
  }
  v.setUint16(o, b.gauges.length, true);
  o += 2;
  for (const g of b.gauges) {
    v.setUint8(o++, g.channel);
    v.setUint16(o, g.endpoint, true);
    v.setUint32(o + 2, Math.max(0, Math.min(g.requests, 0xffffffff)), true);
    v.setUint32(o + 6, Math.max(0, Math.min(g.tokens, 0xffffffff)), true);
    o += 10;
  }
  return buf.subarray(0, o);
}

class Reader {
  o = 0;
  readonly v: DataView;
  constructor(readonly buf: Uint8Array) {
    this.v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number): void {
    if (this.o + n > this.buf.length) throw new WireFormatError(`truncated batch at byte ${this.o} (needs ${n} more)`);
  }
  u8(): number {
    this.need(1);
    return this.v.getUint8(this.o++);
  }
  u16(): number {
    this.need(2);
    const x = this.v.getUint16(this.o, true);
    this.o += 2;
    return x;
  }
  u32(): number {
    this.need(4);
    const x = this.v.getUint32(this.o, true);
    this.o += 4;
    return x;
  }
  f64(): number {
    this.need(8);
    const x = this.v.getFloat64(this.o, true);
    this.o += 8;
    return x;
  }
  str(): string {
    const n = this.u8();
    this.need(n);
    const s = decoder.decode(this.buf.subarray(this.o, this.o + n));
    this.o += n;
    return s;
  }
}

/** The header only: enough to skip one's own batches without decoding them. */
export function peekOrigin(payload: Uint8Array): { version: number; origin: string } {
  const r = new Reader(payload);
  const version = r.u8();
  r.u8();
  return { version, origin: r.str() };
}

/**
 * A batch decoded except for its placements' hashes: everything is validated (a malformed batch throws here,
 * before anything is applied), and the placements stay in the payload for a `PlacementCursor` to walk. The
 * apply path uses this to hand each placement's hashes to the index in one reused array, without a decoded
 * copy of the whole batch.
 */
export interface BatchView extends Omit<Batch, 'placements'> {
  readonly payload: Uint8Array;
  readonly placementCount: number;
  /** Byte offset of the first placement in `payload`. */
  readonly placementsAt: number;
}

export function decodeBatchView(payload: Uint8Array): BatchView {
  const r = new Reader(payload);
  const version = r.u8();
  if (version !== WIRE_VERSION) throw new WireFormatError(`unsupported batch version ${version} (this replica speaks ${WIRE_VERSION})`);
  const flags = r.u8();
  const origin = r.str();
  const seq = r.u32();
  const sentAtMs = r.f64();
  const channels: WireChannel[] = [];
  for (let i = r.u8(); i > 0; i--) channels.push({ name: r.str(), fingerprint: r.u32() });
  const endpoints: string[] = [];
  for (let i = r.u16(); i > 0; i--) endpoints.push(r.str());
  const placementCount = r.u32();
  const placementsAt = r.o;
  for (let i = placementCount; i > 0; i--) {
    const channel = r.u8();
    const endpoint = r.u16();
    r.u16();
    const n = r.u16();
    r.need(8 * n);
    r.o += 8 * n;
    if (channel >= channels.length || endpoint >= endpoints.length) throw new WireFormatError('placement refers to an unknown channel or endpoint');
  }
  const gauges: WireGauge[] = [];
  for (let i = r.u16(); i > 0; i--) {
    const channel = r.u8();
    const endpoint = r.u16();
    const requests = r.u32();
    const tokens = r.u32();
    if (channel >= channels.length || endpoint >= endpoints.length) throw new WireFormatError('gauge refers to an unknown channel or endpoint');
    gauges.push({ channel, endpoint, requests, tokens });
  }
  return { payload, origin, seq, sentAtMs, flags, channels, endpoints, placementCount, placementsAt, gauges };
}

/** Reads `n` little-endian u64 hashes at `o` into `hi` / `lo` (low half first on the wire): no bigint per hash. */
export function readHashHalves(v: DataView, o: number, n: number, hi: Uint32Array, lo: Uint32Array): void {
  for (let j = 0; j < n; j++, o += 8) {
    lo[j] = v.getUint32(o, true);
    hi[j] = v.getUint32(o + 4, true);
  }
}

/** The cursor's reused hash arrays (grown to the largest placement seen). */
class HashHalves implements BlockHashHalves {
  n = 0;
  hi = new Uint32Array(256);
  lo = new Uint32Array(256);
}

/**
 * Walks a validated batch's placements. `hashes` is one object, and one pair of arrays, reused for every placement
 * (valid until the next `next()`): a consumer that keeps hashes copies them. Hashes are read as uint32 halves: no
 * bigint per hash.
 */
export class PlacementCursor {
  channel = 0;
  endpoint = 0;
  blockSizeTokens = 0;
  /** This placement's hashes; the same object for every placement of every batch read by this cursor. */
  readonly hashes: BlockHashHalves = new HashHalves();
  #v: DataView = new DataView(new ArrayBuffer(0));
  #o = 0;
  #left = 0;

  /** Starts walking `view`'s placements (the cursor can be reused for any number of batches). */
  reset(view: BatchView): this {
    this.#v = new DataView(view.payload.buffer, view.payload.byteOffset, view.payload.byteLength);
    this.#o = view.placementsAt;
    this.#left = view.placementCount;
    return this;
  }

  /** Moves to the next placement; false when there is none. */
  next(): boolean {
    if (this.#left === 0) return false;
    this.#left--;
    const v = this.#v;
    let o = this.#o;
    this.channel = v.getUint8(o);
    this.endpoint = v.getUint16(o + 1, true);
    this.blockSizeTokens = v.getUint16(o + 3, true);
    const n = v.getUint16(o + 5, true);
    o += 7;
    const h = this.hashes as HashHalves;
    if (h.hi.length < n) {
      h.hi = new Uint32Array(Math.max(n, h.hi.length * 2));
      h.lo = new Uint32Array(h.hi.length);
    }
    readHashHalves(v, o, n, h.hi, h.lo);
    h.n = n;
    this.#o = o + 8 * n;
    return true;
  }
}

export function decodeBatch(payload: Uint8Array): Batch {
  const view = decodeBatchView(payload);
  const placements: WirePlacement[] = [];
  const c = new PlacementCursor().reset(view);
  while (c.next()) placements.push({ channel: c.channel, endpoint: c.endpoint, blockSizeTokens: c.blockSizeTokens, hashes: fromHalves(c.hashes) });
  return { origin: view.origin, seq: view.seq, sentAtMs: view.sentAtMs, flags: view.flags, channels: view.channels, endpoints: view.endpoints, placements, gauges: view.gauges };
}

/** Stream ids are Redis's `<ms>-<seq>`; ordered numerically. */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = Number(am) - Number(bm);
  return d !== 0 ? Math.sign(d) : Math.sign(Number(as) - Number(bs));
}

/** Milliseconds part of a stream id. */
export function idTimeMs(id: string): number {
  return Number(id.split('-')[0] ?? 0);
}
