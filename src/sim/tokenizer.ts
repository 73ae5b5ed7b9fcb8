// Weight-free tokenizers (sim-spec §6.4). `chars4` cuts the UTF-8 bytes into 4-byte pieces, matching the
// endpoint picker's "4 characters per token" assumption, so one 16-token block is one 64-byte router block.
// `chars3.2` cuts them into pieces of 3, 3, 3, 3, 4 bytes (3.2 bytes per token, as real tokenizers give on source
// code): a 16-token block is 51.2 bytes, while the approximate index still counts 64-byte blocks as 16 tokens.
// `words` splits word runs and punctuation, each keeping its trailing whitespace (llm-d's simulated tokenizer).
// Token id = FNV-1a-32 of the piece's bytes in both cases.

export type TokenizerName = 'chars4' | 'chars3.2' | 'words';

export interface Tokenizer {
  readonly name: TokenizerName;
  /** Token ids of `text`. */
  encode(text: string): Uint32Array;
}

const FNV_OFFSET_32 = 0x811c9dc5;
const FNV_PRIME_32 = 0x01000193;

/** FNV-1a, 32-bit, over `bytes[start, end)`. */
export function fnv1a32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let hash = FNV_OFFSET_32;
  for (let i = start; i < end; i++) {
    hash ^= bytes[i] as number;
    hash = Math.imul(hash, FNV_PRIME_32);
  }
  return hash >>> 0;
}

const encoder = new TextEncoder();

class Chars4Tokenizer implements Tokenizer {
  readonly name = 'chars4';

  encode(text: string): Uint32Array {
    const bytes = encoder.encode(text);
    const ids = new Uint32Array(Math.ceil(bytes.length / 4));
    for (let t = 0; t < ids.length; t++) {
      const start = t * 4;
      ids[t] = fnv1a32(bytes, start, Math.min(start + 4, bytes.length));
    }
    return ids;
  }
}

/** Piece lengths of `chars3.2`, repeating: 16 bytes per 5 tokens. */
const CODE_PIECES = [3, 3, 3, 3, 4] as const;

class Chars32Tokenizer implements Tokenizer {
  readonly name = 'chars3.2';

  encode(text: string): Uint32Array {
    const bytes = encoder.encode(text);
    const ids = new Uint32Array(Math.ceil((bytes.length * 5) / 16));
    let start = 0;
    let t = 0;
    for (; start < bytes.length; t++) {
      const end = Math.min(start + (CODE_PIECES[t % 5] as number), bytes.length);
      ids[t] = fnv1a32(bytes, start, end);
      start = end;
    }
    return ids.subarray(0, t);
  }
}

const WORD_PIECE = /\w+\s*|[^\w\s]\s*|\s+/gu;

class WordsTokenizer implements Tokenizer {
  readonly name = 'words';

  encode(text: string): Uint32Array {
    const pieces = text.match(WORD_PIECE) ?? [];
    const ids = new Uint32Array(pieces.length);
    for (let i = 0; i < pieces.length; i++) ids[i] = fnv1a32(encoder.encode(pieces[i] as string));
    return ids;
  }
}

export function createTokenizer(name: TokenizerName): Tokenizer {
  return name === 'words' ? new WordsTokenizer() : name === 'chars3.2' ? new Chars32Tokenizer() : new Chars4Tokenizer();
}

/** A chat message after request validation: content already flattened to text. */
export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

/**
 * Renders chat messages with a fixed, prefix-stable template (`### <role>: <content>\n` per message, as the llm-d
 * sim does): appending a message only appends text, so multi-turn conversations share prefix blocks.
 */
export function renderChatPrompt(messages: readonly ChatMessage[]): string {
  let out = '';
  for (const m of messages) out += `### ${m.role}: ${m.content}\n`;
  return out;
}
