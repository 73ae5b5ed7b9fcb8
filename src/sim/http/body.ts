// Request bodies: read fully (with a size cap) and parse as JSON.

import type { IncomingMessage } from 'node:http';
import { SimError } from '../errors.ts';

/** Bodies above this are refused with 413; prompts at max-model-len are well below it. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new SimError(413, `Request body larger than ${maxBytes} bytes.`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Parses a JSON object body; anything else is the llm-d sim's 400 "Failed to read and parse request body". */
export function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SimError(400, `Failed to read and parse request body, ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SimError(400, 'Failed to read and parse request body, expected a JSON object');
  }
  return value as Record<string, unknown>;
}
