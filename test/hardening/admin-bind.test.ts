/**
 * `epp gateway --metrics-port N` binds its admin server where the gateway binds (`--host`, loopback by default),
 * not on every interface. Read from the kernel's socket table, so no second network interface is needed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { freePort } from '../../scripts/free-port.js';
import { waitUntil } from '../support/wait.ts';

/** Local address (hex, as in /proc/net/tcp) of the listening socket on `port`, or undefined. */
function listenAddress(port: number): string | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const [addr, p] = (f[1] ?? '').split(':');
    if (p === hexPort && f[3] === '0A') return addr;
  }
  return undefined;
}

test('epp gateway --metrics-port listens on loopback only', async () => {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ['bin/epp.js', 'gateway', '--endpoints=127.0.0.1:9', `--port=${port}`, `--metrics-port=${metricsPort}`], {
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: 'ignore',
    env: { ...process.env, EPP_LOG_LEVEL: 'silent' },
  });
  try {
    await waitUntil(() => listenAddress(metricsPort) !== undefined, 'the admin server to listen', 20_000, 50);
    assert.equal(listenAddress(metricsPort), '0100007F'); // 127.0.0.1, not 00000000 (every interface)
    assert.equal(listenAddress(port), '0100007F');
  } finally {
    child.kill('SIGKILL');
  }
});
