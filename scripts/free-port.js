// A free loopback TCP port for a process the script starts (plain JavaScript twin of src/util/free-port.ts, for
// scripts that run without tsx: pack-smoke.js, dockerfile-rehearsal.js).
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
