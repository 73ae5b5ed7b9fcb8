/** `--plugin-module` loads a user module that registers plugin types; the example plugin works end to end. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FakeEnvoy } from './support/fake-envoy.ts';
import { configText, startTestEpp } from './support/epp.ts';
import { pluginModuleSpecifier } from '../src/server/plugin-modules.ts';

test('the example token-counter plugin loads via pluginModules and reports on the final reply', async () => {
  const epp = await startTestEpp({
    pluginModules: [fileURLToPath(new URL('../examples/token-counter-plugin.ts', import.meta.url))],
    configText: configText('- type: token-counter\n  name: tokens'),
  });
  const envoy = new FakeEnvoy(epp.grpcPort);
  try {
    const s = envoy.open();
    s.requestHeaders({ ':path': '/v1/completions' });
    s.requestBody(JSON.stringify({ model: 'm', prompt: 'hi' }), true);
    await s.nextN(2);
    s.responseHeaders({ ':status': '200', 'content-type': 'application/json' });
    await s.next();
    s.responseBody(JSON.stringify({ object: 'text_completion', usage: { prompt_tokens: 1, completion_tokens: 9, total_tokens: 10 } }), true);
    const last = await s.next();
    assert.deepEqual(last.dynamicMetadata?.['example.token-counter'], { endpointTotal: 9 });
    s.end();
    await s.ended;
  } finally {
    envoy.close();
    await epp.close();
  }
});

test('a module without a register function is a clear startup error', async () => {
  await assert.rejects(
    startTestEpp({ pluginModules: [fileURLToPath(new URL('./support/fake-envoy.ts', import.meta.url))] }),
    /exports no register function/,
  );
});

test('--plugin-module takes a path or an installed package name; neither found is a clear startup error', async () => {
  assert.match(pluginModuleSpecifier('./my-plugins.js'), /^file:\/\/.*\/my-plugins\.js$/);
  assert.match(pluginModuleSpecifier('examples/token-counter-plugin.ts'), /^file:\/\//, 'an existing relative file stays a file');
  assert.equal(pluginModuleSpecifier('@acme/epp-plugins'), '@acme/epp-plugins');
  assert.equal(pluginModuleSpecifier('epp-plugin-x/scorers'), 'epp-plugin-x/scorers');
  // zod is installed next to the EPP: a bare name resolves as a package (and is rejected for lacking register).
  await assert.rejects(startTestEpp({ pluginModules: ['zod'] }), /--plugin-module zod: exports no register function/);
  await assert.rejects(startTestEpp({ pluginModules: ['@acme/not-installed'] }), /--plugin-module @acme\/not-installed: no such file, and no installed package/);
  await assert.rejects(startTestEpp({ pluginModules: ['./missing-plugins.js'] }), /--plugin-module \.\/missing-plugins\.js: no such file/);
});
