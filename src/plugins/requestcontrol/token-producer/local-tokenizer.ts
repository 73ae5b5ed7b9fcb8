/**
 * The `local` token source: a Hugging Face tokenizer (`tokenizer.json`, and `tokenizer_config.json` for the chat
 * template and special tokens) run in process with `@huggingface/tokenizers` (pure JS: BPE, WordPiece, Unigram;
 * normalizers, pre-tokenizers and post-processors of tokenizer.json) and `@huggingface/jinja` (the chat template).
 *
 * What vLLM's render does, reproduced: completions → the prompt tokenized with special tokens (BOS per the
 * tokenizer's post-processor), token-id prompts passed through; chat → the chat template rendered with
 * `messages`, `tools`, `add_generation_prompt` (default true), `continue_final_message` and `chat_template_kwargs`,
 * then tokenized without special tokens (the template writes them). Parity is never assumed: the token producer
 * uses this only after its self-test against `render` agrees.
 */
import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ParsedRequestBody } from '../../../framework/request.ts';

export interface LocalTokenizerFiles {
  /** Path of the model's `tokenizer.json`. */
  readonly tokenizerFile: string;
  /** Path of its `tokenizer_config.json` (chat template, bos/eos tokens); optional. */
  readonly tokenizerConfigFile?: string | undefined;
  /** A chat template overriding the config's (vLLM `--chat-template`). */
  readonly chatTemplate?: string | undefined;
}

const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);

function readJson(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${what} ${path} is not valid: ${(err as Error).message}`);
  }
}

/** A token's text in tokenizer_config.json: a string or an AddedToken object `{content}`. */
const tokenText = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;

export class LocalTokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #template: Template | undefined;
  readonly #specials: Record<string, string>;

  /** Loads and checks the files; throws an Error naming the file and the problem. */
  constructor(files: LocalTokenizerFiles) {
    const json = readJson(files.tokenizerFile, 'tokenizer file');
    const config = files.tokenizerConfigFile === undefined ? {} : readJson(files.tokenizerConfigFile, 'tokenizer config file');
    try {
      this.#tokenizer = new Tokenizer(json, config);
    } catch (err) {
      throw new Error(`tokenizer file ${files.tokenizerFile} is not supported: ${(err as Error).message}`);
    }
    this.#specials = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      const t = tokenText(config[k]);
      if (t !== undefined) this.#specials[k] = t;
    }
    let source = files.chatTemplate ?? config.chat_template;
    // tokenizer_config.json may hold several named templates: [{name, template}]; vLLM uses "default".
    if (Array.isArray(source)) source = (source as { name?: unknown; template?: unknown }[]).find((t) => t.name === 'default')?.template;
    if (source !== undefined && typeof source !== 'string') throw new Error(`chat template of ${files.tokenizerConfigFile ?? 'the parameters'} is not a string`);
    try {
      this.#template = source === undefined ? undefined : new Template(source);
    } catch (err) {
      throw new Error(`chat template does not parse: ${(err as Error).message}`);
    }
  }

  /** Token ids of text, as the engine's tokenizer produces them. */
  encodeText(text: string, addSpecialTokens: boolean): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /** Token ids of the request's first prompt as the engine's render would compute them; undefined when it has none or no chat template. */
  tokenize(body: ParsedRequestBody): ArrayLike<number> | undefined {
    const p = body.payload;
    if (body.apiType === 'completions') {
      const prompt = Array.isArray(p.prompt) && !isIds(p.prompt) ? (p.prompt as unknown[])[0] : p.prompt;
      if (typeof prompt === 'string') return this.encodeText(prompt, p.add_special_tokens !== false);
      return isIds(prompt) ? prompt : undefined;
    }
    if (body.apiType !== 'chat-completions' || this.#template === undefined || !Array.isArray(p.messages)) return undefined;
    const kwargs = typeof p.chat_template_kwargs === 'object' && p.chat_template_kwargs !== null ? (p.chat_template_kwargs as Record<string, unknown>) : {};
    const text = this.#template.render({
      ...this.#specials,
      ...kwargs,
      messages: p.messages,
      ...(p.tools !== undefined ? { tools: p.tools } : {}),
      add_generation_prompt: p.continue_final_message === true ? false : p.add_generation_prompt !== false,
      continue_final_message: p.continue_final_message === true,
    });
    return this.encodeText(text, p.add_special_tokens === true);
  }
}
