#!/usr/bin/env node
// The package as a user gets it: `npm pack` (prepack builds dist/), then in an empty folder
//   1. `npm install <tarball>`: `epp --help` runs, `epp demo` serves a routed chat completion and stops on SIGTERM;
//   2. a plugin published as its own package (examples/token-counter-plugin.ts, compiled by its own tsconfig
//      against the packed type declarations) installs next to it and `epp gateway --plugin-module <package>`
//      loads it and routes a request through it.
// Usage: node scripts/pack-smoke.js [--keep]     (exit 0 = the package works; CI runs it from .ci/run)
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { freePort } from './free-port.js';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const keep = process.argv.includes('--keep');
const log = (msg) => process.stdout.write(`[pack-smoke] ${msg}\n`);
function fail(msg) {
  process.stderr.write(`pack-smoke: ${msg}\n`);
  process.exit(1);
}
function run(cmd, args, cwd, opts = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Starts a long-running command; resolves with the child once `ready` matches its stdout. */
function start(cmd, args, cwd, ready) {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EPP_FROM_SOURCE: '' } });
  let out = '';
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`${args.join(' ')}: not ready after 30 s:\n${out}`), 30_000);
    const onData = (d) => {
      out += d;
      const m = ready.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, match: m, exited, output: () => out });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += d));
    exited.then((code) => fail(`${args.join(' ')} exited early (${code}):\n${out}`));
  });
}

async function chat(url, model) {
  const res = await fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 8, messages: [{ role: 'user', content: 'Hello!' }] }),
  });
  const body = await res.text();
  if (res.status !== 200) fail(`POST ${url}/chat/completions → ${res.status}: ${body}`);
  const parsed = JSON.parse(body);
  if (!parsed.choices?.[0]?.message) fail(`unexpected completion: ${body}`);
  return res.headers.get('x-inference-pod');
}

async function stop(proc) {
  proc.child.removeAllListeners('exit');
  const exited = new Promise((resolve) => proc.child.once('exit', (code) => resolve(code)));
  proc.child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
  if (code !== 0) fail(`SIGTERM → exit ${code}, expected 0:\n${proc.output()}`);
}

const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
const versionOf = (name) => lock.packages[`node_modules/${name}`].version;
const work = mkdtempSync(join(tmpdir(), 'epp-pack-'));
log(`npm pack → ${work}`);
const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], ROOT, { stdio: ['ignore', 'pipe', 'inherit'] }))[0];
const files = packed.files.map((f) => f.path);
for (const needed of ['bin/epp.js', 'dist/cli/main.js', 'dist/framework/index.js', 'dist/framework/index.d.ts', 'package.json', 'README.md']) {
  if (!files.includes(needed)) fail(`the tarball lacks ${needed}`);
}
const stray = files.filter((f) => /^(src|test|bench|scripts|node_modules)\//.test(f));
if (stray.length > 0) fail(`the tarball ships development files: ${stray.slice(0, 5).join(', ')}`);
log(`${packed.filename}: ${files.length} files, ${(packed.size / 1024).toFixed(0)} KiB packed`);

const app = join(work, 'app');
mkdirSync(app);
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'epp-smoke', private: true, type: 'module' }, null, 2));
log('npm install <tarball> into an empty folder');
run('npm', ['install', '--no-audit', '--no-fund', join(work, packed.filename), `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`], app);
const epp = join(app, 'node_modules/.bin/epp');
const help = run(epp, ['--help'], app);
if (!/Usage: epp/.test(help)) fail(`epp --help printed:\n${help}`);
log('epp --help: ok');

const demoPort = await freePort();
const demo = await start(epp, ['demo', `--port=${demoPort}`, '--base-port=0', '--servers=2'], app, /server\s+(http:\/\/127\.0\.0\.1:\d+)[\s\S]*Ctrl-C/);
const gatewayUrl = `http://127.0.0.1:${demoPort}/v1`;
const pod = await chat(gatewayUrl, 'meta-llama/Llama-3.1-8B-Instruct');
log(`epp demo: routed a chat completion (x-inference-pod: ${pod})`);

// A plugin as its own npm package, type-checked and compiled against the packed declarations.
const plugin = join(app, 'token-counter-plugin');
mkdirSync(join(plugin, 'src'), { recursive: true });
cpSync(join(ROOT, 'examples/token-counter-plugin.ts'), join(plugin, 'src/index.ts'));
writeFileSync(
  join(plugin, 'package.json'),
  JSON.stringify({ name: '@example/epp-token-counter', version: '1.0.0', type: 'module', exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } }, peerDependencies: { 'endpoint-picker': '*' } }, null, 2),
);
writeFileSync(
  join(plugin, 'tsconfig.json'),
  JSON.stringify({ compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, declaration: true, outDir: 'dist', rootDir: 'src', types: ['node'] }, include: ['src'] }, null, 2),
);
run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', plugin], app);
log('examples/token-counter-plugin.ts type-checks and compiles against the packed types');
run('npm', ['install', '--no-audit', '--no-fund', './token-counter-plugin'], app);
const gatewayPort = await freePort();
const config = [
  'apiVersion: inference.networking.x-k8s.io/v1alpha1',
  'kind: EndpointPickerConfig',
  'plugins:',
  '- type: token-counter',
  '  name: tokens',
].join('\n');
const gw = await start(epp, ['gateway', `--endpoints=${new URL(demo.match[1]).host}`, `--port=${gatewayPort}`, '--plugin-module=@example/epp-token-counter', `--config-text=${config}`], app, /gateway listening on (\S+)/);
await chat(gw.match[1], 'meta-llama/Llama-3.1-8B-Instruct');
log('epp gateway --plugin-module @example/epp-token-counter: loaded the package and routed a request');
await stop(gw);
await stop(demo);
log('SIGTERM: demo and gateway exited 0');
if (!keep) rmSync(work, { recursive: true, force: true });
log('OK');
