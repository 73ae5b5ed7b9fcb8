// Loaded with `node --import` by test/lazy-modules.test.ts: records every module the process loads — ES
// modules through a resolve hook (module.register; the hook thread posts each resolved URL, drained at exit), CommonJS
// ones from the require cache — and when the process exits writes them as JSON to the file named by
// LOADED_MODULES_OUT. Nothing in src/ knows about it.
import { writeFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';

const out = process.env.LOADED_MODULES_OUT;
if (out) {
  const seen = new Set();
  const { port1, port2 } = new MessageChannel();
  const hooks = `let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage(r.url);
  return r;
}`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { port: port2 }, transferList: [port2] });
  process.on('exit', () => {
    for (let m = receiveMessageOnPort(port1); m !== undefined; m = receiveMessageOnPort(port1)) seen.add(m.message);
    for (const m of Object.keys(createRequire(import.meta.url).cache)) seen.add(m);
    writeFileSync(out, JSON.stringify([...seen]));
  });
}
