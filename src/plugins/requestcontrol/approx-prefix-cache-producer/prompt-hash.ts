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

/** The text whose prefix a model server would cache for this request, by API type. */
export function userInput(request: InferenceRequest): string {
  const body = request.body;
  const p = body.payload;
  switch (body.apiType) {
    case 'completions':
      return promptText(body);
    case 'chat-completions': {
      const messages = Array.isArray(p.messages) ? p.messages : [];
      return JSON.stringify(
        messages.map((m: unknown) => {
          const msg = (m ?? {}) as { role?: unknown; content?: unknown };
          return typeof msg.role === 'string' ? { role: msg.role, content: msg.content ?? null } : { content: msg.content ?? null };
        }),
      );
    }
    case 'responses': {
      const parts: unknown[] = [];
      if (p.instructions !== undefined) parts.push({ instructions: p.instructions });
      if (p.tools !== undefined) parts.push({ tools: p.tools });
      parts.push({ input: p.input ?? null });
      return JSON.stringify(parts);
    }
    case 'conversations':
      return JSON.stringify(p.items ?? null);
    case 'embeddings':
      return JSON.stringify(p.input ?? null);
  }
}

/**
 * Hashes prompts; owns a scratch buffer reused across calls (hashing is synchronous, so calls never
 * interleave).
 */
export class PromptHasher {
  #scratch = new Uint8Array(4096);

  /**
   * Block hashes of `text` for `model` (+ `salt`), `blockSizeTokens × 4` bytes per block, at most
   * `maxBlocks` blocks.
   */
  hash(model: string, salt: string, text: string, blockSizeTokens: number, maxBlocks: number): bigint[] {
    const blockBytes = blockSizeTokens * BYTES_PER_TOKEN;
    if (blockBytes <= 0 || maxBlocks <= 0 || text.length === 0) return [];
    const limitBytes = blockBytes * maxBlocks;
    // Room for the capped input and, right after it, one block + 8 bytes of chaining scratch.
    const needed = limitBytes + blockBytes + 8;
    if (this.#scratch.length < needed) this.#scratch = new Uint8Array(Math.max(needed, this.#scratch.length * 2));
    const buf = this.#scratch;
    // encodeInto writes at most limitBytes (it stops before a character that does not fit entirely).
    const inputBytes = encoder.encodeInto(text, buf.subarray(0, limitBytes)).written;
    if (inputBytes < blockBytes) return [];

    const seedInput = encoder.encode(salt.length > 0 ? model + salt : model);
    let prev = h64Raw(seedInput, 0n);
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
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
}
