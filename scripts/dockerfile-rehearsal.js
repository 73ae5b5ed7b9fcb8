#!/usr/bin/env node
// Replays the Dockerfile without a container engine (CI machines have none): every stage becomes a folder
// under a fresh temporary directory, and its instructions run there with the same commands and the same
// files copied (WORKDIR, COPY [--from], RUN, ENV, USER, ENTRYPOINT). The Dockerfile is parsed, not
// paraphrased, so a change to it is exercised on the next CI run. Then the runtime stage is started as the
// image would start it (ENTRYPOINT + the image's ENV, as the image's USER when we are root) and checked:
// ready on /readyz, ext_proc answering TLS, graceful exit 0 on STOPSIGNAL, no file written under its root
// (read-only root filesystem), no development dependency or source file shipped.
//
// Usage: node scripts/dockerfile-rehearsal.js [--keep]      (exit 0 = the recipe works)
// What it cannot check: the base image itself (the host's Node stands in; its major version must match).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { freePort } from './free-port.js';
import { dirname, isAbsolute, join, posix, relative } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const keep = process.argv.includes('--keep');

function fail(msg) {
  process.stderr.write(`dockerfile-rehearsal: ${msg}\n`);
  process.exit(1);
}
const log = (msg) => process.stdout.write(`[rehearsal] ${msg}\n`);

/** Dockerfile → instructions (continuations joined, comments dropped). */
function parseDockerfile(text) {
  const out = [];
  let acc = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (acc === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      acc += `${line.slice(0, -1)} `;
      continue;
    }
    acc += line;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(acc);
    if (m === null) fail(`cannot parse Dockerfile line: ${acc}`);
    out.push({ op: m[1].toUpperCase(), rest: m[2].trim() });
    acc = '';
  }
  return out;
}

/** key=value pairs (ENV, LABEL, ARG), values optionally double-quoted. */
function parsePairs(rest) {
  const pairs = {};
  for (const m of rest.matchAll(/([A-Za-z_][\w.-]*)(?:=("(?:[^"\\]|\\.)*"|\S*))?/g)) pairs[m[1]] = m[2] === undefined ? undefined : m[2].replace(/^"|"$/g, '');
  return pairs;
}

/** .dockerignore patterns → predicate on a context-relative path. Supports `name`, `dir/x`, `*.ext`, `**` prefixes. */
function ignoreMatcher() {
  const file = join(ROOT, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    : [];
  const res = patterns.map((p) => new RegExp(`^${p.replace(/^\/|\/$/g, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(?:.*/)?').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}(?:/.*)?$`));
  return (rel) => res.some((r) => r.test(rel));
}

function substitute(text, args) {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? '');
}

const ignored = ignoreMatcher();
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'epp-image-'));
chmodSync(work, 0o755);
log(`replaying Dockerfile in ${work}`);

const globalArgs = {};
const stages = new Map();
let stage;
for (const { op, rest } of dockerfile) {
  if (op === 'ARG' && stage === undefined) {
    Object.assign(globalArgs, parsePairs(rest));
    continue;
  }
  if (op === 'FROM') {
    const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
    if (m === null) fail(`FROM ${rest}: expected 'image [AS name]'`);
    const image = substitute(m[1], globalArgs);
    const name = m[2] ?? `stage${stages.size}`;
    const nodeMajor = /^node:(\d+)/.exec(image)?.[1];
    if (nodeMajor !== undefined && nodeMajor !== process.versions.node.split('.')[0]) {
      fail(`stage ${name} is based on ${image} but this machine runs Node ${process.versions.node}: run the rehearsal with Node ${nodeMajor}`);
    }
    stage = { name, image, root: join(work, name), workdir: '/', env: {}, args: { ...globalArgs }, user: undefined, entrypoint: [], cmd: [], labels: {}, stopsignal: 'SIGTERM', expose: [] };
    mkdirSync(stage.root, { recursive: true });
    stages.set(name, stage);
    log(`FROM ${image} AS ${name}`);
    continue;
  }
  if (stage === undefined) fail(`${op} before the first FROM`);
  const inRoot = (p) => join(stage.root, isAbsolute(p) ? p : posix.join(stage.workdir, p));
  switch (op) {
    case 'ARG':
      for (const [k, v] of Object.entries(parsePairs(rest))) stage.args[k] = v ?? globalArgs[k];
      break;
    case 'ENV':
      Object.assign(stage.env, parsePairs(substitute(rest, stage.args)));
      break;
    case 'LABEL':
      Object.assign(stage.labels, parsePairs(substitute(rest, stage.args)));
      break;
    case 'WORKDIR':
      stage.workdir = posix.resolve(stage.workdir, rest);
      mkdirSync(inRoot('.'), { recursive: true });
      break;
    case 'USER':
      stage.user = rest;
      break;
    case 'EXPOSE':
      stage.expose.push(...rest.split(/\s+/).map(Number));
      break;
    case 'STOPSIGNAL':
      stage.stopsignal = rest;
      break;
    case 'ENTRYPOINT':
    case 'CMD': {
      let argv;
      try {
        argv = JSON.parse(rest);
      } catch {
        fail(`${op} must use the JSON (exec) form so signals reach node: ${rest}`);
      }
      if (op === 'ENTRYPOINT') stage.entrypoint = argv;
      else stage.cmd = argv;
      break;
    }
    case 'COPY': {
      const words = rest.split(/\s+/);
      const from = words[0].startsWith('--from=') ? words.shift().slice('--from='.length) : undefined;
      if (words.some((w) => w.startsWith('--'))) fail(`COPY ${rest}: only --from is supported here`);
      const dest = words.pop();
      const srcRoot = from === undefined ? ROOT : stages.get(from)?.root;
      if (srcRoot === undefined) fail(`COPY --from=${from}: no such stage`);
      const destIsDir = dest.endsWith('/') || words.length > 1;
      for (const src of words) {
        const abs = from === undefined ? join(ROOT, src) : join(srcRoot, src);
        if (!existsSync(abs)) fail(`COPY ${src}: not found in ${from === undefined ? 'the build context' : `stage ${from}`}`);
        if (from === undefined && ignored(relative(ROOT, abs))) fail(`COPY ${src}: excluded by .dockerignore`);
        const target = destIsDir && !statSync(abs).isDirectory() ? join(inRoot(dest), posix.basename(src)) : inRoot(dest);
        mkdirSync(statSync(abs).isDirectory() ? target : dirname(target), { recursive: true });
        cpSync(abs, target, {
          recursive: true,
          filter: (p) => from !== undefined || !ignored(relative(ROOT, p)) || p === abs,
        });
      }
      log(`COPY ${rest}`);
      break;
    }
    case 'RUN': {
      if (rest.startsWith('[')) fail('RUN: use the shell form here');
      const cmd = substitute(rest, { ...stage.args, ...stage.env });
      if (/(^|\s)\/(?!dev\/null)/.test(cmd)) fail(`RUN ${cmd}: keep RUN commands relative to WORKDIR (absolute paths cannot be replayed)`);
      log(`RUN ${cmd}   (in ${stage.name}:${stage.workdir})`);
      // The stage's ENV applies, but not HOME/TMPDIR (they point into the image's filesystem).
      const { HOME: _h, TMPDIR: _t, ...env } = stage.env;
      const r = spawnSync('sh', ['-c', cmd], { cwd: inRoot('.'), stdio: 'inherit', env: { ...process.env, ...env } });
      if (r.status !== 0) fail(`RUN ${cmd} failed in stage ${stage.name} (exit ${r.status})`);
      break;
    }
    default:
      fail(`instruction ${op} is not supported by the rehearsal: add it to scripts/dockerfile-rehearsal.js`);
  }
}

const final = stage;
log(`final stage: ${final.name}`);

// --- what ships -------------------------------------------------------------------------------------------
const app = join(final.root, final.workdir);
for (const forbidden of ['node_modules/tsx', 'node_modules/typescript', 'node_modules/eslint', 'src', 'test']) {
  if (existsSync(join(app, forbidden))) fail(`the runtime image contains ${forbidden} (development only)`);
}
for (const needed of ['dist/cli/main.js', 'bin/epp.js', 'package.json']) {
  if (!existsSync(join(app, needed))) fail(`the runtime image lacks ${needed}`);
}
for (const label of ['org.opencontainers.image.title', 'org.opencontainers.image.version', 'org.opencontainers.image.licenses']) {
  if (!final.labels[label]) fail(`OCI label ${label} is missing`);
}
// Every production dependency loads in the runtime stage, native addons included (zeromq's prebuilt binary).
const deps = Object.keys(JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')).dependencies ?? {});
const loadAll = `await import('reflect-metadata'); for (const d of ${JSON.stringify(deps)}) await import(d);`;
const loaded = spawnSync(process.execPath, ['--input-type=module', '-e', loadAll], { cwd: app, encoding: 'utf8' });
if (loaded.status !== 0) fail(`a production dependency does not load in the runtime stage:\n${loaded.stderr}`);
log(`all ${deps.length} production dependencies load`);
const uid = final.user === undefined ? undefined : final.user.split(':')[0];
if (uid === undefined || !/^\d+$/.test(uid) || uid === '0') fail(`USER must be a numeric non-root uid (runAsNonRoot), got ${final.user}`);

function snapshot(dir) {
  const out = new Map();
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.set(relative(dir, p), `${st.size}:${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}


// --- start it as the image would ----------------------------------------------------------------------------
const [grpc, health, metrics] = [await freePort(), await freePort(), await freePort()];
const mapPath = (a) => (a.startsWith('/') && existsSync(join(final.root, a)) ? join(final.root, a) : a);
const argv = [...final.entrypoint, ...final.cmd].map(mapPath);
const runArgs = [`--endpoints=127.0.0.1:9`, `--grpc-port=${grpc}`, `--grpc-health-port=${health}`, `--metrics-port=${metrics}`, '--shutdown-grace-period=3s'];
const scratch = mkdtempSync(join(tmpdir(), 'epp-image-tmp-'));
chmodSync(scratch, 0o1777);
const env = { PATH: process.env.PATH, ...final.env, HOME: scratch, TMPDIR: scratch };
const before = snapshot(final.root);
let command = argv[0] === 'node' ? process.execPath : argv[0];
let commandArgs = [...argv.slice(1), ...runArgs];
const setpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).stdout.trim();
if (process.getuid?.() === 0 && setpriv !== '') {
  const [u, g = u] = final.user.split(':');
  commandArgs = [`--reuid=${u}`, `--regid=${g}`, '--clear-groups', command, ...commandArgs];
  command = setpriv;
  log(`starting as uid ${u}: ${argv.join(' ')} ${runArgs.join(' ')}`);
} else {
  log(`starting (as the current user; run as root with setpriv to check USER): ${argv.join(' ')} ${runArgs.join(' ')}`);
}
const child = spawn(command, commandArgs, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
child.stdout.on('data', (d) => (output += d));
child.stderr.on('data', (d) => (output += d));
const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
let done = false;
exited.then(({ code }) => {
  if (!done) fail(`the EPP exited early (code ${code}):\n${output}`);
});

async function waitReady(deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(`http://127.0.0.1:${metrics}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`not ready on /readyz after ${deadlineMs} ms:\n${output}`);
}
await waitReady(60_000); // self-signed RSA-4096 generation takes a few seconds on a slow machine
log('ready: /readyz = 200');
const metricsText = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
if (!metricsText.includes('inference_extension_info')) fail('/metrics lacks inference_extension_info');
await new Promise((resolve) => {
  const s = tlsConnect({ host: '127.0.0.1', port: grpc, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
    if (s.alpnProtocol !== 'h2') fail(`ext_proc TLS port negotiated ${s.alpnProtocol}, expected h2`);
    log(`ext_proc: TLS handshake ok (${s.getPeerCertificate().subject?.CN ?? 'self-signed'}), ALPN h2`);
    s.destroy();
    resolve();
  });
  s.on('error', (err) => fail(`ext_proc TLS port: ${err.message}`));
});
await new Promise((resolve, reject) => {
  const s = tcpConnect(health, '127.0.0.1', () => {
    s.destroy();
    resolve();
  });
  s.on('error', reject);
}).catch((err) => fail(`health port: ${err.message}`));
done = true;
const t0 = Date.now();
child.kill(final.stopsignal);
const end = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 10_000))]);
if (end.code !== 0) fail(`${final.stopsignal} → exit ${end.code} ${end.signal ?? ''} (expected 0):\n${output}`);
log(`${final.stopsignal}: exited 0 after ${Date.now() - t0} ms`);
const after = snapshot(final.root);
const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));
if (changed.length > 0) fail(`the EPP wrote under its root filesystem (it must stay read-only): ${changed.slice(0, 10).join(', ')}`);
log('no writes under the root filesystem');
if (!keep) {
  rmSync(work, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
}
log('OK: the Dockerfile recipe builds, ships production dependencies only, starts, serves and stops cleanly');
