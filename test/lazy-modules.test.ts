/**
 * Heavy libraries load only when a feature uses them (issue 16: start time and footprint). The CEL library of
 * `request-attribute-reporter` (≈ 18 MiB, 140 ms) and the Redis client load on first use: neither `epp --help` nor
 * an EPP serving the default plugins loads them. Each case runs in a fresh process with
 * test/support/loaded-modules-probe.mjs, which lists every module (ES and CommonJS) the process loaded.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const CEL = /[/\\]node_modules[/\\]@bufbuild[/\\]cel[/\\]/;
const REDIS = /[/\\]node_modules[/\\]ioredis[/\\]/;
const ZMQ = /[/\\]node_modules[/\\]zeromq[/\\]/;
const root = new URL('..', import.meta.url).pathname;

/** Runs `node --import tsx --import <probe> ...args` in the repository; returns the modules it loaded. */
function loadedBy(args: readonly string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'epp-lazy-modules-'));
  try {
    const out = join(dir, 'loaded.json');
    const probe = new URL('./support/loaded-modules-probe.mjs', import.meta.url).pathname;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', probe, ...args], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, EPP_FROM_SOURCE: '1', EPP_LOG_LEVEL: 'silent', LOADED_MODULES_OUT: out },
    });
    assert.equal(r.status, 0, r.stderr);
    const loaded = JSON.parse(readFileSync(out, 'utf8')) as string[];
    assert.ok(loaded.some((m) => m.includes('/node_modules/@grpc/grpc-js/')), 'the probe sees the packages the process loads');
    return loaded;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Starts and stops an EPP with `config` (YAML) in a child process. Before stopping, plugins that follow the pool
 * (the precise producer's KV-event subscriptions) reconcile with it once, as on the first request.
 */
const serving = (config: string): string[] =>
  loadedBy([
    '--input-type=module',
    '-e',
    `import { startTestEpp } from './test/support/epp.ts';
     const epp = await startTestEpp({ configText: ${JSON.stringify(config)} });
     for (const p of epp.config.plugins) if (typeof p.reconcile === 'function') p.reconcile();
     await epp.close();`,
  ]);

const heavy = (loaded: string[]): string[] => loaded.filter((m) => CEL.test(m) || REDIS.test(m));
const zeromq = (loaded: string[]): boolean => loaded.some((m) => ZMQ.test(m));

test('`epp --help` loads neither the CEL library, the Redis client nor ZeroMQ', () => {
  const loaded = loadedBy(['bin/epp.js', '--help']);
  assert.deepEqual(heavy(loaded), []);
  assert.equal(zeromq(loaded), false);
});

test('an EPP with the default plugins does not load CEL; one with a request-attribute-reporter does', async () => {
  const { CONFIG_PRESETS } = await import('../src/config/presets.ts');
  // epp-default (the demo's) follows the engines' KV events: ZeroMQ loads, for its subscriber sockets.
  const eppDefault = serving(CONFIG_PRESETS['epp-default'] as string);
  assert.deepEqual(heavy(eppDefault), []);
  assert.equal(zeromq(eppDefault), true, 'epp-default subscribes to KV events');
  // upstream-default (`epp serve` without a config) stays on the approximate index: no ZeroMQ.
  const upstream = serving(CONFIG_PRESETS['upstream-default'] as string);
  assert.deepEqual(heavy(upstream), []);
  assert.equal(zeromq(upstream), false, 'upstream-default needs no KV events');
  const reporter = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: openai-parser
- name: cost
  type: request-attribute-reporter
  parameters:
    attributes:
    - key: { name: x-cost }
      expression: usage.completion_tokens
- type: random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
parser:
  pluginRef: openai-parser
`;
  assert.ok(serving(reporter).some((m) => CEL.test(m)), 'the CEL library is loaded once a reporter is configured');
});
