// Text of generated tokens. Random mode draws from 4-byte word pieces ("the ", "and ", ...): re-tokenizing the
// output with either tokenizer yields exactly one token per piece, so usage stays consistent when a client sends
// the answer back in the next turn (sim-spec §6.4). Echo mode replays the input's own tokens.

import { fnv1a32 } from './tokenizer.ts';

const PIECES = [
  'the ', 'and ', 'you ', 'for ', 'are ', 'was ', 'can ', 'sim ', 'new ', 'one ', 'all ', 'any ', 'big ', 'day ',
  'get ', 'has ', 'her ', 'him ', 'how ', 'its ', 'let ', 'may ', 'now ', 'old ', 'our ', 'out ', 'see ', 'two ',
  'way ', 'who ', 'why ', 'yes ',
] as const;

const encoder = new TextEncoder();
const PIECE_IDS = PIECES.map((p) => fnv1a32(encoder.encode(p)));
/** Pieces pre-escaped as JSON string literals, so SSE chunks are built by concatenation. */
const PIECE_JSON = PIECES.map((p) => JSON.stringify(p));

/** Supplies the text of each generated token. Methods must be called with increasing `index` for echo sources. */
export interface OutputText {
  /** Number of tokens this source can produce (Infinity for random text). */
  readonly maxTokens: number;
  tokenId(index: number): number;
  /** The token's text as a JSON string literal, quotes included. */
  tokenJson(index: number): string;
  tokenText(index: number): string;
}

/** Random-looking text that cycles through the word pieces from a per-request offset. */
export class RandomOutputText implements OutputText {
  readonly maxTokens = Number.POSITIVE_INFINITY;
  readonly #offset: number;

  constructor(offset: number) {
    this.#offset = offset;
  }

  #piece(index: number): number {
    // A stride coprime with the table size makes consecutive tokens differ.
    return (this.#offset + index * 7) % PIECES.length;
  }

  tokenId(index: number): number {
    return PIECE_IDS[this.#piece(index)] as number;
  }

  tokenJson(index: number): string {
    return PIECE_JSON[this.#piece(index)] as string;
  }

  tokenText(index: number): string {
    return PIECES[this.#piece(index)] as string;
  }
}

/**
 * Replays `text` as 4-byte tokens (chars4 boundaries). Multi-byte characters cut by a boundary are carried over
 * to the next token by a streaming decoder, so every emitted text is valid UTF-8.
 */
export class EchoOutputText implements OutputText {
  readonly maxTokens: number;
  readonly #bytes: Uint8Array;
  readonly #decoder = new TextDecoder('utf-8');
  readonly #texts: string[] = [];

  constructor(text: string) {
    this.#bytes = encoder.encode(text);
    this.maxTokens = Math.ceil(this.#bytes.length / 4);
  }

  tokenId(index: number): number {
    const start = index * 4;
    return fnv1a32(this.#bytes, start, Math.min(start + 4, this.#bytes.length));
  }

  tokenText(index: number): string {
    while (this.#texts.length <= index) {
      const i = this.#texts.length;
      const last = i === this.maxTokens - 1;
      const chunk = this.#bytes.subarray(i * 4, Math.min(i * 4 + 4, this.#bytes.length));
      this.#texts.push(this.#decoder.decode(chunk, { stream: !last }));
    }
    return this.#texts[index] as string;
  }

  tokenJson(index: number): string {
    return JSON.stringify(this.tokenText(index));
  }
}
