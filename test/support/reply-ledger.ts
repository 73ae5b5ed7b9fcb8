/**
 * What Envoy's ext_proc filter would accept as a reply, given the messages it has sent so far. Envoy treats a
 * reply it did not ask for as a protocol error (it fails the stream): every reply must answer a message of the
 * same kind that was sent earlier.
 *
 *   request_headers   → exactly one request-headers reply per request_headers sent
 *   request_body      → streamed body replies once a request_body was sent, none after the end_of_stream one
 *   request_trailers  → at most one trailers reply per request_trailers sent
 *   response_headers  → exactly one response-headers reply per response_headers sent
 *   response_body     → like request_body
 *   response_trailers → at most one trailers reply per response_trailers sent
 *   immediate_response → accepted any time, and nothing may follow it
 *
 * Both Envoy-like test clients (fake-envoy.ts and the byte-level hardening client) feed their traffic through
 * one ledger per stream; `violations` lists every unsolicited reply.
 */
import type { ProcessingRequest, ProcessingResponse } from '../../src/gen/envoy/service/ext_proc/v3/external_processor_pb.ts';

type Kind = 'requestHeaders' | 'requestBody' | 'requestTrailers' | 'responseHeaders' | 'responseBody' | 'responseTrailers';

export class ReplyLedger {
  readonly violations: string[] = [];
  readonly #sent = new Map<Kind, number>();
  readonly #answered = new Map<Kind, number>();
  readonly #bodyClosed = new Set<Kind>();
  #immediate = false;
  #replies = 0;
  readonly #onViolation: ((reason: string) => void) | undefined;

  constructor(onViolation?: (reason: string) => void) {
    this.#onViolation = onViolation;
  }

  /** Records a message sent to the EPP. */
  sent(msg: Pick<ProcessingRequest, 'request'>): void {
    const kind = msg.request.case;
    if (kind === undefined) return;
    this.#sent.set(kind, (this.#sent.get(kind) ?? 0) + 1);
  }

  /** Records a reply; returns the reason when Envoy would not have accepted it (also kept in `violations`). */
  received(reply: ProcessingResponse): string | undefined {
    const n = this.#replies++;
    const why = this.#check(reply);
    if (why !== undefined) {
      const v = `reply #${n} (${String(reply.response.case)}): ${why}`;
      this.violations.push(v);
      this.#onViolation?.(v);
    }
    return why;
  }

  #check(reply: ProcessingResponse): string | undefined {
    if (this.#immediate) return 'sent after an immediate_response';
    const kind = reply.response.case;
    if (kind === undefined) return 'reply carries no response';
    if (kind === 'immediateResponse') {
      this.#immediate = true;
      return undefined;
    }
    const sent = this.#sent.get(kind) ?? 0;
    if (sent === 0) return `no ${kind} message was sent`;
    if (kind === 'requestBody' || kind === 'responseBody') {
      if (this.#bodyClosed.has(kind)) return `${kind} reply after the end_of_stream reply`;
      const v = reply.response.value as { response?: { bodyMutation?: { mutation: { case: string | undefined; value?: unknown } } } };
      const m = v.response?.bodyMutation?.mutation;
      if (m?.case === 'streamedResponse' && (m.value as { endOfStream: boolean }).endOfStream) this.#bodyClosed.add(kind);
      return undefined;
    }
    const answered = this.#answered.get(kind) ?? 0;
    if (answered >= sent) return `${answered + 1} ${kind} replies for ${sent} message(s)`;
    this.#answered.set(kind, answered + 1);
    return undefined;
  }
}
