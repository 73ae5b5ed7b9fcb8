// A free loopback TCP port for a process a script, benchmark or test starts (Prometheus, Redis, a child EPP).
// Plain JavaScript so scripts that run without tsx (pack-smoke.js, dockerfile-rehearsal.js) share it with the
// TypeScript ones; types in free-port.d.ts. Not part of src/: the EPP itself never needs it.
import { createServer } from 'node:net';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
