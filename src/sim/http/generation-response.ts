// Turns engine callbacks for one HTTP generation request into the OpenAI response: SSE chunks (sim-spec §1.3,
// §1.4, §1.5) or one JSON body. Chunks are built by string concatenation from per-request templates; token
// texts come pre-escaped from `OutputText.tokenJson`, so there is no per-token object graph or JSON.stringify.

import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { SimError, errorBody } from '../errors.ts';
import type { FinishReason, Sequence, SequenceObserver } from '../sequence.ts';
import type { Admission, SimServer, StreamFault } from '../sim-server.ts';
import type { ParsedGeneration } from './openai-request.ts';

interface ChoiceState {
  sequence: Sequence | null;
  text: string;
  finishReason: FinishReason | null;
}

const DONE = 'data: [DONE]\n\n';

export class GenerationResponse {
  readonly #server: SimServer;
  readonly #res: ServerResponse;
  readonly #parsed: ParsedGeneration;
  readonly #headers: Record<string, string>;
  readonly #choices: ChoiceState[] = [];
  readonly #id: string;
  #admission: Admission | null = null;
  #chunkHead = '';
  #chunkTail = '';
  #fault: StreamFault | null = null;
  #finished = 0;
  #ended = false;

  constructor(server: SimServer, res: ServerResponse, parsed: ParsedGeneration, headers: Record<string, string>) {
    this.#server = server;
    this.#res = res;
    this.#parsed = parsed;
    this.#headers = headers;
    this.#id = `${parsed.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`;
    res.on('close', () => this.#onClientClose());
  }

  /** Observer for choice `index`; pass as `observerFor` to `SimServer.admit`. */
  readonly observerFor = (index: number): SequenceObserver => {
    const state: ChoiceState = { sequence: null, text: '', finishReason: null };
    this.#choices[index] = state;
    return {
      onToken: (tokenIndex) => this.#onToken(index, state, tokenIndex),
      onFinish: (_seq, reason, error) => this.#onFinish(index, state, reason, error),
    };
  };

  /** Called once `admit` succeeded: binds sequences and, for streams, commits the 200 + SSE headers. */
  start(admission: Admission): void {
    this.#admission = admission;
    for (const c of admission.choices) (this.#choices[c.index] as ChoiceState).sequence = c.sequence;
    if (!this.#parsed.stream) return;
    const created = Math.floor(this.#server.clock.unixNowMs() / 1000);
    const object = this.#parsed.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    this.#chunkHead = `data: {"id":"${this.#id}","object":"${object}","created":${created},"model":${JSON.stringify(admission.displayedModel)},"choices":[`;
    this.#chunkTail = this.#parsed.includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
    const first = admission.choices[0];
    if (first !== undefined) this.#fault = this.#server.drawStreamFault(first.sequence.targetTokens);
    this.#res.writeHead(200, { ...this.#headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    this.#res.flushHeaders();
    if (this.#fault !== null && this.#fault.afterTokens === 0 && first !== undefined) this.#applyFault(this.#fault);
  }

  #onToken(index: number, state: ChoiceState, tokenIndex: number): void {
    if (this.#ended) return;
    const seq = state.sequence;
    if (seq === null) return;
    if (!this.#parsed.stream) {
      state.text += seq.output.tokenText(tokenIndex);
      return;
    }
    if (index === 0 && this.#fault !== null && tokenIndex === this.#fault.afterTokens) {
      this.#applyFault(this.#fault);
      return;
    }
    let out = '';
    if (this.#parsed.kind === 'chat') {
      if (tokenIndex === 0) out += `${this.#chunkHead}{"index":${index},"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}${this.#chunkTail}`;
      out += `${this.#chunkHead}{"index":${index},"delta":{"content":${seq.output.tokenJson(tokenIndex)}},"logprobs":null,"finish_reason":null}${this.#chunkTail}`;
    } else {
      out += `${this.#chunkHead}{"index":${index},"text":${seq.output.tokenJson(tokenIndex)},"logprobs":null,"finish_reason":null}${this.#chunkTail}`;
    }
    this.#res.write(out);
  }

  #onFinish(index: number, state: ChoiceState, reason: FinishReason, error?: { status: number; message: string }): void {
    state.finishReason = reason;
    this.#finished++;
    if (this.#ended) return;
    if (reason === 'error' || reason === 'abort') {
      this.#fail(new SimError(error?.status ?? 500, error?.message ?? 'request aborted'));
      return;
    }
    if (this.#parsed.stream) {
      const final = this.#parsed.kind === 'chat'
        ? `{"index":${index},"delta":{},"logprobs":null,"finish_reason":"${reason}"}`
        : `{"index":${index},"text":"","logprobs":null,"finish_reason":"${reason}"}`;
      this.#res.write(this.#chunkHead + final + this.#chunkTail);
    }
    if (this.#finished === this.#choices.length) this.#complete();
  }

  #complete(): void {
    const admission = this.#admission;
    if (admission === null) return;
    this.#ended = true;
    const usage = this.#usageJson(admission);
    if (this.#parsed.stream) {
      let out = '';
      if (this.#parsed.includeUsage) {
        const object = this.#parsed.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
        const created = Math.floor(this.#server.clock.unixNowMs() / 1000);
        out += `data: {"id":"${this.#id}","object":"${object}","created":${created},"model":${JSON.stringify(admission.displayedModel)},"choices":[],"usage":${usage}}\n\n`;
      }
      this.#res.end(out + DONE);
      return;
    }
    const created = Math.floor(this.#server.clock.unixNowMs() / 1000);
    const choices = this.#choices.map((c, index) =>
      this.#parsed.kind === 'chat'
        ? { index, message: { role: 'assistant', content: c.text }, logprobs: null, finish_reason: c.finishReason }
        : { index, text: c.text, logprobs: null, finish_reason: c.finishReason },
    );
    const body = JSON.stringify({
      id: this.#id,
      object: this.#parsed.kind === 'chat' ? 'chat.completion' : 'text_completion',
      created,
      model: admission.displayedModel,
      choices,
    });
    // Splice the pre-serialised usage in rather than re-parsing it.
    const json = `${body.slice(0, -1)},"usage":${usage}}`;
    this.#res.writeHead(200, { ...this.#headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
    this.#res.end(json);
  }

  #usageJson(admission: Admission): string {
    let promptTokens = 0;
    for (const p of admission.promptTokens) promptTokens += p;
    let completionTokens = 0;
    let cachedTokens = 0;
    const n = admission.choices.length / Math.max(1, admission.promptTokens.length);
    for (const c of admission.choices) {
      completionTokens += c.sequence.deliveredTokens;
      if (c.index % n === 0) cachedTokens += c.sequence.cachedTokens;
    }
    return `{"prompt_tokens":${promptTokens},"completion_tokens":${completionTokens},"total_tokens":${promptTokens + completionTokens},"prompt_tokens_details":{"cached_tokens":${cachedTokens}}}`;
  }

  /** Ends the response with an error: JSON status before headers, SSE error frame + [DONE] after. */
  #fail(error: SimError): void {
    this.#ended = true;
    this.#abortSequences();
    if (this.#res.headersSent) {
      this.#res.end(`data: ${errorBody(error)}\n\n${DONE}`);
      return;
    }
    const body = errorBody(error);
    this.#res.writeHead(error.status, { ...this.#headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    this.#res.end(body);
  }

  #applyFault(fault: StreamFault): void {
    if (fault.kind === 'error') {
      this.#fail(new SimError(500, 'Injected mid-stream error.'));
      return;
    }
    this.#ended = true;
    this.#abortSequences();
    this.#res.destroy();
  }

  #onClientClose(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#abortSequences();
  }

  #abortSequences(): void {
    for (const c of this.#choices) if (c.sequence !== null) this.#server.engine.abort(c.sequence);
  }
}
