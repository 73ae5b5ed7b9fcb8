/** The `epp` command line: Go-style flags as upstream manifests pass them, and clear errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { discoveryFromFlags, normalizeGoFlags } from '../src/cli/main.ts';

const EPP = new URL('../bin/epp.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [EPP, ...args], { encoding: 'utf8', env: { ...process.env, EPP_LOG_LEVEL: 'silent' } });

test('single-dash flags become double-dash (Go accepts both); values are untouched', () => {
  assert.deepEqual(normalizeGoFlags(['-grpc-port=9002', '-v', '4', '--pool-name', 'p', '-secure-serving=false', 'x']), [
    '--grpc-port=9002',
    '--v',
    '4',
    '--pool-name',
    'p',
    '--secure-serving=false',
    'x',
  ]);
});

test('exactly one discovery mode is required, with a message naming the flags', () => {
  assert.throws(() => discoveryFromFlags({}), /no endpoint discovery configured.*--endpoints, --endpoints-file, --pool-name or --endpoint-selector/);
  assert.throws(() => discoveryFromFlags({ endpoints: 'a:1', poolName: 'p' }), /more than one endpoint discovery mode/);
  assert.throws(() => discoveryFromFlags({ endpointSelector: 'app=x' }), /--endpoint-target-ports is required/);
  const k = discoveryFromFlags({ endpointSelector: 'app=x', endpointTargetPorts: '8000,8001,8000', refreshMetricsInterval: 50 });
  assert.deepEqual(k.kubernetes?.targetPorts, [8000, 8001]);
});

test('unknown flags, removed metric flags and bad values are errors that name the flag', () => {
  const unknown = run('serve', '--bogus-flag=1');
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /unknown option '--bogus-flag=1'|unknown option '--bogus-flag'/);
  const removed = run('serve', '--endpoints=127.0.0.1:1', '--total-queued-requests-metric=x');
  assert.equal(removed.status, 2);
  assert.match(removed.stderr, /--total-queued-requests-metric is no longer supported/);
  const bad = run('serve', '--grpc-port=abc');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--grpc-port: 'abc' is not an integer/);
});

test('every subcommand has --help', () => {
  for (const cmd of ['serve', 'gateway', 'demo', 'sim']) {
    const r = run(cmd, '--help');
    assert.equal(r.status, 0, cmd);
    assert.match(r.stdout, /Usage: epp /);
  }
});
