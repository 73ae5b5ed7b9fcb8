/**
 * The snapshot field codec: one endpoint's blocks in a snapshot hash (`transport.ts`), capacity (u32) then each
 * hash as a little-endian u64, low word first, oldest block first. Built and read piece by piece, so the syncer
 * can yield to the event loop inside a large endpoint on both sides.
 */
import type { BlockHashHalves } from '../../framework/replication.ts';
import { readHashHalves, WireFormatError } from './codec.ts';

/** A snapshot field: capacity (u32) then each hash as a little-endian u64 (low word first), from halves. */
export function encodeSnapshotField(capacityBlocks: number, hashes: BlockHashHalves): Uint8Array {
  const b = new SnapshotFieldBuilder(capacityBlocks, new Uint8Array(4 + 8 * hashes.n));
  b.add(hashes);
  return b.finish();
}

/**
 * A snapshot field built from an endpoint's pieces (`IndexSnapshotEntry`s of one endpoint, oldest first), each
 * encoded as it arrives, so the syncer can yield between pieces. The pieces are written into one buffer —
 * `reuse`, the buffer of the same field in the previous snapshot, when given, grown by doubling only when a
 * piece does not fit — and `finish` returns a view of it: a snapshot of an index in steady state then allocates
 * nothing. (Each piece in a part of its own, joined at the end, and a new array per piece made every snapshot
 * of a 250k-entry index 4–6 MB of short-lived array buffers; V8 counts array buffers allocated since the last
 * full collection against the old generation's headroom, so each snapshot started one: a 2–7 ms mark-compact
 * pause, measured in bench:replicas-path.)
 */
export class SnapshotFieldBuilder {
  #buf: Uint8Array;
  #view: DataView;
  #bytes = 4;

  /**
   * `reuse`: the buffer to write into (grown if too small). Without it, a buffer for `expectBlocks` blocks (the
   * endpoint's size when its export began) plus 1/16 for blocks a walk repeats, or for 1,024 blocks.
   */
  constructor(
    readonly capacityBlocks: number,
    reuse?: Uint8Array,
    expectBlocks?: number,
  ) {
    const blocks = expectBlocks !== undefined && expectBlocks > 0 ? Math.ceil(expectBlocks * 1.0625) : 1024;
    this.#buf = reuse !== undefined && reuse.byteLength >= 4 ? reuse : new Uint8Array(4 + 8 * blocks);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  /** The buffer the field is written into (the syncer hands it back as `reuse` for the next snapshot). */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  add(hashes: BlockHashHalves): void {
    const need = this.#bytes + 8 * hashes.n;
    if (need > this.#buf.byteLength) {
      const grown = new Uint8Array(Math.max(need, 2 * this.#buf.byteLength));
      grown.set(this.#buf.subarray(0, this.#bytes));
      this.#buf = grown;
      this.#view = new DataView(grown.buffer);
    }
    const v = this.#view;
    for (let i = 0, o = this.#bytes; i < hashes.n; i++, o += 8) {
      v.setUint32(o, hashes.lo[i] as number, true); // u64 little-endian: low half first
      v.setUint32(o + 4, hashes.hi[i] as number, true);
    }
    this.#bytes = need;
  }

  /** The field: a view of `buffer`, valid until the buffer is reused. */
  finish(): Uint8Array {
    this.#view.setUint32(0, this.capacityBlocks >>> 0, true);
    return this.#buf.subarray(0, this.#bytes);
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
