/**
 * Prompt block hashing for the approximate prefix cache (epp-spec §3.4).
 *
 * The request's user input (API-specific, below) is taken as UTF-8 bytes, cut into blocks of
 * `blockSizeTokens × 4` bytes (4 bytes per token on average), capped at `maxBlocks` blocks. Block i's hash
 * is XXH64(block bytes ‖ hash(i−1) as 8 bytes little-endian), chained from a seed hash over the target
 * model name and the request's `cache_salt`, so equal hashes mean equal model, salt and whole prefix. A
 * trailing partial block is hashed the same way; input shorter than one block yields no hashes.
 *
 * The input encoding only has to be deterministic: indexes are never shared with a Go EPP, so we do not
 * reproduce Go's JSON encoding byte for byte.
 */
import xxhash from 'xxhash-wasm';
import type { InferenceRequest } from '../../../framework/request.ts';
import { promptText } from '../../../framework/request.ts';

// The wasm module instantiates asynchronously; doing it once at module load keeps factories and hooks
// synchronous (every importer awaits this module's evaluation).
const { h64Raw } = await xxhash();

/** Average prompt bytes per token, used to turn a token block size into a byte block size. */
export const BYTES_PER_TOKEN = 4;

const encoder = new TextEncoder();

/**
 * UTF-16 code units of user input that can reach the hash: the byte cap, since every code unit is at least one
 * UTF-8 byte. Input beyond it is never built.
 */
export function inputCapChars(blockSizeTokens: number, maxBlocks: number): number {
  return Math.max(0, blockSizeTokens * BYTES_PER_TOKEN * maxBlocks);
}

/**
 * The text whose prefix a model server would cache for this request, by API type. With `maxChars`, only a
 * prefix is built: the first `maxChars` code units (or all, if shorter) are exactly those of the whole text,
 * and a surrogate pair is never cut — so the hashes of a capped input equal those of the whole one (the
 * hash reads at most `maxChars` bytes). A 256 KB prompt costs what its first 16 KB cost.
 */
export function userInput(request: InferenceRequest, maxChars = Number.POSITIVE_INFINITY): string {
  const parts = userInputParts(request, maxChars);
  return parts.length === 1 ? (parts[0] as string) : parts.join('');
}

/**
 * `userInput` as the pieces it is written in (their concatenation is `userInput`, and no surrogate pair spans two
 * pieces): what `PromptHasher.hash` takes without joining them, so a long prompt is copied once, into the hash
 * input's bytes, and never into a joined string first.
 */
export function userInputParts(request: InferenceRequest, maxChars = Number.POSITIVE_INFINITY): readonly string[] {
  const body = request.body;
  const p = body.payload;
  switch (body.apiType) {
    case 'completions':
      return [promptText(body)];
    case 'chat-completions':
      return chatInput(Array.isArray(p.messages) ? (p.messages as unknown[]) : [], maxChars);
    case 'responses': {
      const parts: unknown[] = [];
      if (p.instructions !== undefined) parts.push({ instructions: p.instructions });
      if (p.tools !== undefined) parts.push({ tools: p.tools });
      parts.push({ input: p.input ?? null });
      return [cappedJson(parts, maxChars)];
    }
    case 'conversations':
      return [cappedJson(p.items ?? null, maxChars)];
    case 'embeddings':
      return [cappedJson(p.input ?? null, maxChars)];
  }
}

/**
 * `JSON.stringify(value)`, stopped once at least `cap` code units are written: the result is the whole text, or
 * a prefix of it at least `cap` long that does not end inside a surrogate pair. Plain arrays and objects are
 * walked here (same key order and the same skipping of undefined, function and symbol members); strings are
 * escaped by JSON.stringify, cut before escaping when they would overrun; anything else is JSON.stringify's.
 */
export function cappedJson(value: unknown, cap: number): string {
  if (!Number.isFinite(cap)) return JSON.stringify(value) ?? '';
  const w = new CappedWriter(cap);
  w.value(value, true);
  return w.text();
}

/**
 * The chat input: the JSON of `[{role, content}, …]` — each message's `role` when it is a string, and its
 * `content` (null when absent) — capped as `cappedJson` caps it, written straight from the messages (no
 * `{role, content}` object per message). The text is `cappedJson` of those objects, or a prefix of their whole
 * JSON at least `maxChars` long: the same hashes (prompt-hash.test.ts).
 */
function chatInput(messages: readonly unknown[], maxChars: number): readonly string[] {
  const w = new CappedWriter(maxChars);
  w.put('[');
  for (let i = 0; i < messages.length && !w.done; i++) {
    const msg = (messages[i] ?? {}) as { role?: unknown; content?: unknown };
    const role = msg.role;
    const content = msg.content ?? null;
    // Content JSON.stringify would leave out or convert (a function, a symbol, a non-plain object): the general path.
    if (skipped(content) || (typeof content === 'object' && content !== null && !Array.isArray(content) && !isPlainObject(content))) {
      return [
        cappedJson(
          messages.map((m: unknown) => {
            const mm = (m ?? {}) as { role?: unknown; content?: unknown };
            return typeof mm.role === 'string' ? { role: mm.role, content: mm.content ?? null } : { content: mm.content ?? null };
          }),
          maxChars,
        ),
      ];
    }
    if (typeof role === 'string') {
      w.put(i === 0 ? '{"role":' : ',{"role":');
      w.value(role, false);
      if (w.done) break;
      w.put(',"content":');
    } else w.put(i === 0 ? '{"content":' : ',{"content":');
    w.value(content, false);
    w.put('}');
  }
  w.put(']');
  return w.parts();
}

const skipped = (v: unknown): boolean => v === undefined || typeof v === 'function' || typeof v === 'symbol';

class CappedWriter {
  readonly #parts: string[] = [];
  #length = 0;
  /** Set once `cap` code units are written: every caller returns at once. */
  done = false;

  constructor(readonly cap: number) {
    if (cap <= 0) this.done = true;
  }

  text(): string {
    return this.#parts.join('');
  }

  /** What was written, in pieces (no surrogate pair spans two). */
  parts(): readonly string[] {
    return this.#parts;
  }

  /** Appends `s` unless `cap` was reached already. */
  put(s: string): void {
    if (!this.done) this.#put(s);
  }

  #put(s: string): void {
    this.#parts.push(s);
    this.#length += s.length;
    if (this.#length >= this.cap) this.done = true;
  }

  value(v: unknown, top: boolean): void {
    if (this.done) return;
    if (typeof v === 'string') return this.#string(v);
    if (Array.isArray(v) && !('toJSON' in v)) {
      this.#put('[');
      for (let i = 0; i < v.length; i++) {
        if (i > 0) this.#put(',');
        const e: unknown = v[i];
        if (skipped(e)) this.#put('null');
        else this.value(e, false);
        if (this.done) return;
      }
      return this.#put(']');
    }
    if (v !== null && typeof v === 'object' && isPlainObject(v)) {
      this.#put('{');
      let first = true;
      for (const k of Object.keys(v)) {
        const e = (v as Record<string, unknown>)[k];
        if (skipped(e)) continue;
        // A member JSON.stringify leaves out (its toJSON gave undefined) is left out here too.
        const other = typeof e === 'object' && e !== null && !Array.isArray(e) && !isPlainObject(e) ? (JSON.stringify(e) as string | undefined) : '';
        if (other === undefined) continue;
        this.#put(`${first ? '' : ','}${JSON.stringify(k)}:`);
        first = false;
        if (other !== '') this.#put(other);
        else this.value(e, false);
        if (this.done) return;
      }
      return this.#put('}');
    }
    const s = JSON.stringify(v) as string | undefined;
    this.#put(s ?? (top ? '' : 'null'));
  }

  #string(v: string): void {
    const room = this.cap - this.#length;
    if (v.length < room) {
      if (NEEDS_ESCAPE.test(v)) return this.#put(JSON.stringify(v));
      // Quotes as pieces of their own: the string itself is not copied into a quoted one.
      this.#put('"');
      this.#put(v);
      return this.#put('"');
    }
    // Only the first `room` characters can be reached: escape those (a pair kept whole), leave the quote open.
    let end = room;
    const last = v.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff && end < v.length) end++;
    const quoted = JSON.stringify(v.slice(0, end));
    this.#put(quoted.slice(0, -1));
    this.done = true;
  }
}

/**
 * Characters JSON.stringify escapes in a string: `"`, `\`, controls, and surrogates (a lone one is escaped). A
 * string with none of them is written between quotes as it is (a regex scan is half the cost of JSON.stringify's
 * on a long prompt, and nothing is copied).
 */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === null) && !('toJSON' in v);
}

/**
 * Hashes prompts; owns a scratch buffer reused across calls (hashing is synchronous, so calls never
 * interleave).
 */
export class PromptHasher {
  #scratch = new Uint8Array(4096);
  #view = new DataView(this.#scratch.buffer);
  /** Seed hash per model (+ salt): a pool serves few models, so each is hashed once (bounded: cleared when full). */
  readonly #seeds = new Map<string, bigint>();

  /**
   * Block hashes of `text` for `model` (+ `salt`), `blockSizeTokens × 4` bytes per block, at most
   * `maxBlocks` blocks. `text` may come in pieces (`userInputParts`): the hashes are those of their
   * concatenation, as long as no surrogate pair spans two pieces.
   */
  hash(model: string, salt: string, text: string | readonly string[], blockSizeTokens: number, maxBlocks: number): bigint[] {
    const blockBytes = blockSizeTokens * BYTES_PER_TOKEN;
    if (blockBytes <= 0 || maxBlocks <= 0 || text.length === 0) return [];
    const limitBytes = blockBytes * maxBlocks;
    // Room for the capped input and, right after it, one block + 8 bytes of chaining scratch.
    const needed = limitBytes + blockBytes + 8;
    if (this.#scratch.length < needed) {
      this.#scratch = new Uint8Array(Math.max(needed, this.#scratch.length * 2));
      this.#view = new DataView(this.#scratch.buffer);
    }
    const buf = this.#scratch;
    // encodeInto writes at most limitBytes (it stops before a character that does not fit entirely).
    const inputBytes = typeof text === 'string' ? encoder.encodeInto(text, buf.subarray(0, limitBytes)).written : encodePieces(text, buf, limitBytes);
    if (inputBytes < blockBytes) return [];

    let prev = this.#seed(salt.length > 0 ? model + salt : model);
    const view = this.#view;
    // The chaining area (block ‖ previous hash) sits right after the input region; one view of it serves
    // every full block, so the loop allocates nothing but the hashes themselves.
    const work = limitBytes;
    const fullBlock = buf.subarray(work, work + blockBytes + 8);
    const fullBlocks = Math.floor(inputBytes / blockBytes);
    const hashes: bigint[] = new Array(Math.ceil(inputBytes / blockBytes));
    for (let b = 0; b < fullBlocks; b++) {
      buf.copyWithin(work, b * blockBytes, (b + 1) * blockBytes);
      view.setBigUint64(work + blockBytes, prev, true);
      prev = h64Raw(fullBlock, 0n);
      hashes[b] = prev;
    }
    const tail = inputBytes - fullBlocks * blockBytes;
    if (tail > 0) {
      buf.copyWithin(work, fullBlocks * blockBytes, inputBytes);
      view.setBigUint64(work + tail, prev, true);
      hashes[fullBlocks] = h64Raw(buf.subarray(work, work + tail + 8), 0n);
    }
    return hashes;
  }

  /** XXH64 of the seed string's UTF-8 bytes (model name, then cache_salt). */
  #seed(seedText: string): bigint {
    let h = this.#seeds.get(seedText);
    if (h === undefined) {
      if (this.#seeds.size >= SEED_CACHE_LIMIT) this.#seeds.clear();
      h = h64Raw(encoder.encode(seedText), 0n);
      this.#seeds.set(seedText, h);
    }
    return h;
  }
}

/**
 * Writes `pieces` one after another into `buf` up to `limit` bytes, as encodeInto writes their concatenation: it
 * stops at the first character that does not fit entirely (and writes nothing of the pieces after it).
 */
function encodePieces(pieces: readonly string[], buf: Uint8Array, limit: number): number {
  let at = 0;
  for (const piece of pieces) {
    if (piece.length === 0) continue;
    const { read, written } = encoder.encodeInto(piece, buf.subarray(at, limit));
    at += written;
    if (read < piece.length) break;
  }
  return at;
}

/** Distinct model (+ salt) seeds kept; a salt per tenant or user can make many, so the cache is bounded. */
const SEED_CACHE_LIMIT = 1024;
