/**
 * The request as plugins see it: the parsed OpenAI body and the routing attributes the director resolved.
 */
import type { SchedulingResult } from './scheduling.ts';

/** API type, from the request path (epp-spec §1.8): suffix match, first hit wins, default completions. */
export type ApiType = 'completions' | 'chat-completions' | 'embeddings' | 'responses' | 'conversations';

/**
 * A parsed request body. `payload` is the JSON object as received.
 *
 * What is forwarded: the request's own bytes, unchanged, unless the body changed — then the director
 * re-serialises `payload` (with `model` set to the target model). The body changed when
 * - the target model differs from the incoming one (a rewrite), or
 * - a plugin added, removed or replaced a top-level field of `payload` (detected: the director compares the
 *   top-level keys and values, by identity, with those it saw after parsing), or
 * - a plugin set `mutated` to true. A change below the top level (e.g. editing `payload.messages[0].content`
 *   in place, or pushing to `payload.messages`) is not detected by itself: the plugin must set `mutated`.
 */
export interface ParsedRequestBody {
  readonly apiType: ApiType;
  /** The JSON object. On re-serialisation the director writes `payload.model` (the target model) first. */
  readonly payload: Record<string, unknown>;
  /**
   * Set to true by a plugin that changed `payload` below its top level, so the body is re-serialised instead
   * of forwarded as received (top-level changes are detected without it).
   */
  mutated?: boolean;
  /** True iff the top-level `stream` field is boolean `true`. */
  readonly stream: boolean;
  /**
   * Set by parsers that keep the body opaque (`passthrough-parser`, `vllmgrpc-parser`): these exact bytes are
   * forwarded unchanged, no model is read from the body and none is rewritten (epp-spec §2.1 step 11).
   * `payload` then carries only what the parser could read for plugins (e.g. `prompt`), never sent.
   */
  readonly raw?: Uint8Array;
}

/** Token usage reported by the model server (OpenAI `usage`). */
export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly totalTokens: number;
  /** `usage.prompt_tokens_details.cached_tokens` when reported. */
  readonly cachedTokens?: number;
}

/**
 * One inference request, created by the director once the body is parsed. The same object is passed to every
 * hook of the request, request path and response path alike, so plugins can key private per-request state by
 * it (`WeakMap<InferenceRequest, T>`): it is never shared between streams, whatever `x-request-id` says.
 */
export interface InferenceRequest {
  /** `x-request-id` (generated when the client sent none). Informational: never use it as a key. */
  readonly requestId: string;
  /** The model name the client asked for. */
  readonly incomingModel: string;
  /** The model sent upstream (after rewrites). */
  readonly targetModel: string;
  readonly body: ParsedRequestBody;
  /**
   * Request headers (lower-case keys). PreRequest hooks may add or change entries: every non-system header
   * here is forwarded upstream.
   */
  readonly headers: Record<string, string>;
  /** Priority of the request's InferenceObjective (0 when none). Negative means sheddable. */
  readonly priority: number;
  /** `x-gateway-inference-fairness-id`, default `default-flow`. */
  readonly fairnessId: string;
  /** `x-gateway-inference-objective` (empty when absent). */
  readonly objectiveKey: string;
  /** Length of the request body as received, in bytes. */
  readonly requestSizeBytes: number;
  /** When the request headers arrived (ms since epoch, from the injected clock). */
  readonly receivedAt: number;
  /** Set by the director after scheduling; undefined before. */
  schedulingResult: SchedulingResult | undefined;
  /**
   * Aborted when the request ends abnormally (client gone, stream error, shutdown). May be created on first read
   * (a getter, on the request's class): the same signal on every read, and read after the request ended
   * abnormally it is already aborted, with the same reason. Do not copy the request: a spread or `Object.keys`
   * does not carry the getter.
   */
  readonly signal: AbortSignal;
  /**
   * True once the request ended abnormally (what `signal.aborted` would say), read without creating the signal:
   * a synchronous hook that only needs to know uses this and leaves its signal parameter out (hook-scope.ts).
   * Set by the runtime on every request it routes; absent on a request built elsewhere (tests): not aborted.
   */
  readonly aborted?: boolean;
}

/**
 * The user-visible prompt text (upstream `PromptText()`), used by token estimators: completions → the prompt
 * (array elements joined by a space); chat → each message's text followed by a space; responses → `input`
 * (or its JSON); conversations → JSON of `items`; embeddings → `input` (or its JSON).
 */
export function promptText(body: ParsedRequestBody): string {
  const p = body.payload;
  switch (body.apiType) {
    case 'completions': {
      const prompt = p.prompt;
      if (typeof prompt === 'string') return prompt;
      if (Array.isArray(prompt)) return prompt.filter((x) => typeof x === 'string').join(' ');
      return '';
    }
    case 'chat-completions': {
      const messages = Array.isArray(p.messages) ? p.messages : [];
      let out = '';
      for (const m of messages) {
        const content = (m as { content?: unknown } | null)?.content;
        if (typeof content === 'string') out += content;
        else if (Array.isArray(content)) {
          for (const block of content) {
            const text = (block as { text?: unknown } | null)?.text;
            if (typeof text === 'string') out += `${text} `;
          }
        }
        out += ' ';
      }
      return out;
    }
    case 'responses':
      return typeof p.input === 'string' ? p.input : JSON.stringify(p.input ?? null);
    case 'conversations':
      return JSON.stringify(p.items ?? null);
    case 'embeddings':
      return typeof p.input === 'string' ? p.input : JSON.stringify(p.input ?? null);
  }
}
