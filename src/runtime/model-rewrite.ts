/**
 * Restores the client's model name in responses when the request was sent upstream under another name
 * (epp-spec §1.7): every `"model":"<target>"` becomes `"model":"<incoming>"`; only if that changed nothing,
 * the one-space form `"model": "<target>"` is tried. Applied per streamed chunk (a pattern split across
 * chunks is left alone, as upstream) or once to a buffered body.
 */
import type { InferenceRequest } from '../framework/request.ts';

export function rewriteModelInResponse(data: Uint8Array, request: InferenceRequest): Uint8Array {
  const { incomingModel, targetModel } = request;
  if (incomingModel === '' || targetModel === '' || incomingModel === targetModel || data.length === 0) return data;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const compact = JSON.stringify(targetModel);
  for (const sep of [':', ': ']) {
    const needle = Buffer.from(`"model"${sep}${compact}`);
    if (buf.indexOf(needle) < 0) continue;
    const replacement = Buffer.from(`"model"${sep}${JSON.stringify(incomingModel)}`);
    const parts: Buffer[] = [];
    let from = 0;
    for (let at = buf.indexOf(needle, from); at >= 0; at = buf.indexOf(needle, from)) {
      parts.push(buf.subarray(from, at), replacement);
      from = at + needle.length;
    }
    parts.push(buf.subarray(from));
    return Buffer.concat(parts);
  }
  return data;
}
