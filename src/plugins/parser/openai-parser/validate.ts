/**
 * Request validation as upstream's typed decoding does it (epp-spec §1.8). Upstream decodes the body into typed
 * structs per API type, then checks the required fields; a field of the wrong JSON type fails the decoding, and
 * either failure answers 400 with the API type's message. JSON `null` decodes to the zero value (accepted) for
 * every typed field, as Go's decoder does; untyped fields (`tools`, `input`, ...) accept anything.
 */
import { EppError } from '../../../framework/errors.ts';
import type { ApiType } from '../../../framework/request.ts';

type Check = (v: unknown) => boolean;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const absent = (v: unknown): boolean => v === undefined || v === null;
const string: Check = (v) => absent(v) || typeof v === 'string';
const boolean: Check = (v) => absent(v) || typeof v === 'boolean';
const anything: Check = () => true;
const map: Check = (v) => absent(v) || isObject(v);
const list = (item: Check): Check => (v) => absent(v) || (Array.isArray(v) && v.every(item));
/** A struct: an object (or null) whose known fields pass their checks; unknown fields are ignored. */
const struct =
  (fields: Record<string, Check>): Check =>
  (v) => {
    if (absent(v)) return true;
    if (!isObject(v)) return false;
    for (const k in fields) if (!(fields[k] as Check)(v[k])) return false;
    return true;
  };

const url = struct({ url: string });
const contentBlock = struct({
  type: string,
  text: string,
  image_url: url,
  input_audio: struct({ data: string, format: string }),
  video_url: url,
});
/** Message content: a string or a list of content blocks (null/absent: no content, e.g. tool calls). */
const content: Check = (v) => absent(v) || typeof v === 'string' || (Array.isArray(v) && v.every(contentBlock));
/** A chat message must be an object: upstream needs a role and content to build the prompt. */
const message: Check = (v) => isObject(v) && string(v.role) && content(v.content);

const CACHE_SALT = { cache_salt: string };

/** The typed fields upstream decodes, per API type (§1.8 "typed fields kept"). */
const TYPED: Record<ApiType, Record<string, Check>> = {
  completions: { ...CACHE_SALT },
  'chat-completions': {
    tools: list(map),
    documents: list(map),
    chat_template: string,
    return_assistant_tokens_mask: boolean,
    continue_final_message: boolean,
    add_generation_prompt: boolean,
    chat_template_kwargs: map,
    ...CACHE_SALT,
  },
  responses: { input: anything, instructions: anything, tools: anything, ...CACHE_SALT },
  conversations: { items: list(struct({ type: string, role: string, content: anything })), metadata: map, ...CACHE_SALT },
  embeddings: { input: anything, ...CACHE_SALT },
};

const MESSAGES: Record<ApiType, string> = {
  completions: 'invalid completions request: must have prompt field',
  'chat-completions': 'invalid chat completions request: must have valid messages field',
  responses: 'invalid responses request: must have input field',
  conversations: 'invalid conversations request: must have items field',
  embeddings: 'invalid embeddings request: must have input field',
};

function required(apiType: ApiType, p: Record<string, unknown>): boolean {
  switch (apiType) {
    case 'completions': {
      const prompt = p.prompt;
      return (typeof prompt === 'string' && prompt.length > 0) || (Array.isArray(prompt) && prompt.length > 0 && prompt.every((x) => typeof x === 'string'));
    }
    case 'chat-completions':
      return Array.isArray(p.messages) && p.messages.length > 0 && p.messages.every(message);
    case 'responses':
    case 'embeddings':
      return !absent(p.input);
    case 'conversations':
      return Array.isArray(p.items) && p.items.length > 0;
  }
}

/** Throws EppError('BadRequest', <upstream's message for the API type>) when the payload is invalid. */
export function validateRequest(apiType: ApiType, payload: Record<string, unknown>): void {
  const fields = TYPED[apiType];
  let ok = required(apiType, payload);
  for (const k in fields) if (ok && !(fields[k] as Check)(payload[k])) ok = false;
  if (!ok) throw new EppError('BadRequest', MESSAGES[apiType]);
}
