/**
 * The snapshot field codec: one endpoint's blocks in a snapshot hash (`transport.ts`), capacity (u32) then each
 * hash as a little-endian u64, low word first, oldest block first. Built and read piece by piece, so the syncer
 * can yield to the event loop inside a large endpoint on both sides.
 */
import type { BlockHashHalves } from '../../framework/replication.ts';
import { readHashHalves, WireFormatError } from './codec.ts';

/** A snapshot field: capacity (u32) then each hash as a little-endian u64 (low word first), from halves. */
export function encodeSnapshotField(capacityBlocks: number, hashes: BlockHashHalves): Uint8Array {
  const b = new SnapshotFieldBuilder(capacityBlocks);
  b.add(hashes);
  return b.finish();
}

/**
 * A snapshot field built from an endpoint's pieces (`IndexSnapshotEntry`s of one endpoint, oldest first), each
 * encoded as it arrives, so the syncer can yield between pieces; `finish` joins them (one copy).
 */
export class SnapshotFieldBuilder {
  readonly #parts: Uint8Array[] = [];
  #bytes = 0;
  constructor(readonly capacityBlocks: number) {}

  add(hashes: BlockHashHalves): void {
    const part = new Uint8Array(8 * hashes.n);
    const v = new DataView(part.buffer);
    for (let i = 0, o = 0; i < hashes.n; i++, o += 8) {
      v.setUint32(o, hashes.lo[i] as number, true); // u64 little-endian: low half first
      v.setUint32(o + 4, hashes.hi[i] as number, true);
    }
    this.#parts.push(part);
    this.#bytes += part.length;
  }

  finish(): Uint8Array {
    const buf = new Uint8Array(4 + this.#bytes);
    new DataView(buf.buffer).setUint32(0, this.capacityBlocks >>> 0, true);
    let o = 4;
    for (const p of this.#parts) {
      buf.set(p, o);
      o += p.length;
    }
    return buf;
  }
}

/**
 * A snapshot field read piece by piece: the syncer imports a large endpoint in several pieces, yielding to the
 * event loop between them, instead of decoding and importing it whole.
 */
export class SnapshotFieldReader {
  readonly capacityBlocks: number;
  /** Hashes in the field. */
  readonly n: number;
  readonly #v: DataView;

  constructor(buf: Uint8Array) {
    if (buf.length < 4 || (buf.length - 4) % 8 !== 0) throw new WireFormatError(`snapshot field of ${buf.length} bytes is not 4 + 8n`);
    this.#v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.n = (buf.length - 4) / 8;
    this.capacityBlocks = this.#v.getUint32(0, true);
  }

  /** Hashes [from, from + count) (clipped to the field) as halves, in new arrays. */
  read(from: number, count: number): BlockHashHalves {
    const n = Math.max(0, Math.min(count, this.n - from));
    const hi = new Uint32Array(n);
    const lo = new Uint32Array(n);
    readHashHalves(this.#v, 4 + 8 * from, n, hi, lo);
    return { n, hi, lo };
  }
}

export function decodeSnapshotField(buf: Uint8Array): { capacityBlocks: number; hashes: BlockHashHalves } {
  const r = new SnapshotFieldReader(buf);
  return { capacityBlocks: r.capacityBlocks, hashes: r.read(0, r.n) };
}
