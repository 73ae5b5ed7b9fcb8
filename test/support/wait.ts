/**
 * Waits for a condition that depends on real I/O the test cannot await directly (e.g. a metrics scrape of a
 * real HTTP server). Polls every `stepMs`, fails after `timeoutMs` with `what` in the message.
 */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 5000, stepMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Resolves or rejects with `p`; rejects with `what` in the message if `p` has not settled within `timeoutMs`. A safety
 * net so a promise that never settles fails the test with a reason instead of hanging it; it synchronises nothing.
 */
export function within<T>(p: Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    }),
  ]);
}
