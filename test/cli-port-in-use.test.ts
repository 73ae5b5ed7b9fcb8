/**
 * A busy port: one line naming the port and the flag that moves it, a non-zero exit, no stack trace.
 * Five EPPs start at once (each compiles its TypeScript through tsx), so the limits are generous: on a loaded
 * 2-core machine a start took over 30 s. A limit only bounds a hang; it synchronises nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { portInUse } from '../src/cli/port-in-use.ts';

const EPP = new URL('../bin/epp.js', import.meta.url).pathname;

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [EPP, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, EPP_LOG_LEVEL: 'silent' } }, (_err, _out, stderr) =>
      resolve({ code: child.exitCode, stderr }),
    );
  });
}

let holder: Server;
let busy: number;
before(async () => {
  holder = createServer();
  // All interfaces: the ext_proc server binds 0.0.0.0, the gateway and the simulator 127.0.0.1.
  await new Promise<void>((r) => holder.listen(0, r));
  busy = (holder.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => holder.close(() => r())));

test('epp serve / gateway / sim / demo on a busy port', { timeout: 180_000 }, async () => {
  const cases: Array<[string[], string]> = [
    [['serve', '--endpoints=127.0.0.1:9', '--secure-serving=false', `--grpc-port=${busy}`, '--grpc-health-port=0', '--metrics-port=0'], '--grpc-port'],
    [['serve', '--endpoints=127.0.0.1:9', '--secure-serving=false', '--grpc-port=0', '--grpc-health-port=0', `--metrics-port=${busy}`], '--metrics-port'],
    [['gateway', '--endpoints=127.0.0.1:9', `--port=${busy}`], '--port'],
    [['sim', `--base-port=${busy}`, '--servers=1'], '--base-port'],
    [['demo', `--port=${busy}`, '--base-port=0', '--servers=1'], '--port'],
  ];
  const results = await Promise.all(cases.map(([args]) => run(args)));
  results.forEach((r, i) => {
    const [args, flag] = cases[i]!;
    assert.equal(r.code, 1, `${args.join(' ')}: exit code; stderr: ${r.stderr}`);
    assert.equal(r.stderr, `epp: port ${busy} is already in use; choose another with ${flag} (0 = any free port)\n`, args.join(' '));
  });
});

test('portInUse recognises Node and grpc-js bind errors only', () => {
  assert.equal(portInUse(Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:8080'), { code: 'EADDRINUSE', port: 8080 })), 8080);
  assert.equal(portInUse(new Error('No address added out of total 1 resolved errors: [listen EADDRINUSE: address already in use 0.0.0.0:9002]')), 9002);
  assert.equal(portInUse(new Error('listen EACCES: permission denied 0.0.0.0:80')), undefined);
  assert.equal(portInUse('EADDRINUSE'), undefined);
});
