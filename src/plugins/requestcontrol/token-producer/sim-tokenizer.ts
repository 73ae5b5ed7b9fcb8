/**
 * An exact port of the simulator's tokenization (src/sim/tokenizer.ts, src/sim/http/openai-request.ts): the
 * plugin layer may not import the simulator, and the point of this backend is to tokenize like the sim does in
 * tests and benchmarks without a round trip. `test/precise-prefix/token-producer.test.ts` checks parity against the
 * sim's render endpoints, so a drift of either copy fails CI.
 *
 * chars4: the prompt's UTF-8 bytes cut into 4-byte pieces; chars3.2: into pieces of 3, 3, 3, 3, 4 bytes; words: word runs / punctuation / whitespace runs, each
 * with its trailing whitespace. Token id = FNV-1a-32 of the piece. Chat: `### <role>: <content>\n` per message,
 * content parts' text concatenated.
 */
import type { ParsedRequestBody } from '../../../framework/request.ts';

export type SimTokenizerName = 'chars4' | 'chars3.2' | 'words';

const encoder = new TextEncoder();
const WORD_PIECE = /\w+\s*|[^\w\s]\s*|\s+/gu;

function fnv1a(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return h >>> 0;
}

function simEncode(text: string, tokenizer: SimTokenizerName): Uint32Array {
  if (tokenizer === 'words') {
    const pieces = text.match(WORD_PIECE) ?? [];
    const ids = new Uint32Array(pieces.length);
    for (let i = 0; i < pieces.length; i++) {
      const b = encoder.encode(pieces[i] as string);
      ids[i] = fnv1a(b, 0, b.length);
    }
    return ids;
  }
  const bytes = encoder.encode(text);
  if (tokenizer === 'chars3.2') {
    const out: number[] = [];
    for (let start = 0, t = 0; start < bytes.length; t++) {
      const end = Math.min(start + (t % 5 === 4 ? 4 : 3), bytes.length);
      out.push(fnv1a(bytes, start, end));
      start = end;
    }
    return Uint32Array.from(out);
  }
  const ids = new Uint32Array(Math.ceil(bytes.length / 4));
  for (let t = 0; t < ids.length; t++) ids[t] = fnv1a(bytes, t * 4, Math.min(t * 4 + 4, bytes.length));
  return ids;
}

function contentText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) return undefined;
  let text = '';
  for (const part of content) {
    if (typeof part !== 'object' || part === null) return undefined;
    const t = (part as Record<string, unknown>).text;
    if (typeof t === 'string') text += t;
  }
  return text;
}

const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);

/** Token ids of the request's first prompt as the simulator computes them; undefined when it has none. */
export function simTokenize(body: ParsedRequestBody, tokenizer: SimTokenizerName): ArrayLike<number> | undefined {
  const p = body.payload;
  if (body.apiType === 'completions') {
    const prompt = p.prompt;
    if (typeof prompt === 'string') return simEncode(prompt, tokenizer);
    if (isIds(prompt)) return prompt;
    if (Array.isArray(prompt) && prompt.length > 0) {
      const first: unknown = prompt[0];
      if (typeof first === 'string') return simEncode(first, tokenizer);
      if (isIds(first)) return first;
    }
    return undefined;
  }
  if (body.apiType === 'chat-completions') {
    if (!Array.isArray(p.messages) || p.messages.length === 0) return undefined;
    let text = '';
    for (const m of p.messages as unknown[]) {
      if (typeof m !== 'object' || m === null) return undefined;
      const role = (m as Record<string, unknown>).role;
      const content = contentText((m as Record<string, unknown>).content);
      if (typeof role !== 'string' || content === undefined) return undefined;
      text += `### ${role}: ${content}\n`;
    }
    return simEncode(text, tokenizer);
  }
  return undefined;
}
