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
