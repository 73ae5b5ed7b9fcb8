// Loaded into the soak's EPP child only (`node --expose-gc --import ./scripts/soak-probe.mjs bin/epp.js serve`),
// never by the EPP itself: on a `{ probe: id }` message over the IPC channel the soak opened, it runs a full GC
// and answers with the process's memory. Plain JavaScript because it loads before bin/epp.js registers tsx.
if (typeof process.send === 'function' && typeof globalThis.gc === 'function') {
  const gc = globalThis.gc;
  process.on('message', (m) => {
    if (m === null || typeof m !== 'object' || typeof m.probe !== 'number') return;
    gc();
    const u = process.memoryUsage();
    process.send({ probe: m.probe, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, rss: u.rss });
  });
  // The channel must not keep the EPP alive: it exits on SIGTERM as it would without the probe.
  process.channel?.unref();
}
