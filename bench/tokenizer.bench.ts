/**
 * Token source cost (`npm run bench:tokenizer`): token-producer's `local` backend (a byte-level BPE tokenizer.json
 * run by @huggingface/tokenizers) against a `render` round trip to a simulator (HTTP on loopback, keep-alive, JSON
 * ids back), for completions prompts of 1k, 8k and 32k tokens, alternated per repetition (seeded order).
 *
 * There is no real model's tokenizer.json offline, so the BPE is trained here: 3000 merges over this repository's
 * docs (English and code), GPT-2 byte-level pre-tokenization — the structure of Llama 3 / Qwen tokenizers with a
 * smaller vocabulary (per-token cost grows with word length in merges, not with vocabulary size). The render side
 * is a lower bound for vLLM's render (the simulator's tokenizer is a 4-byte hash; vLLM adds its Rust tokenizer and
 * Python request handling).
 *
 * Usage: node --import tsx bench/tokenizer.bench.ts [--quick]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTokenizer } from '../src/plugins/requestcontrol/token-producer/local-tokenizer.ts';
import { startFleet } from '../src/sim/index.ts';
import { repetitions } from './support/alternate.ts';
import { median } from './support/stats.ts';

const QUICK = process.argv.includes('--quick');
const MERGES = 3000;
const REPS = QUICK ? 7 : 21;
const SIZES = [1_000, 8_000, 32_000];

// --- corpus: the repository's docs.
const docs = new URL('../docs/', import.meta.url);
let corpus = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
for (const f of readdirSync(docs)) if (f.endsWith('.md')) corpus += readFileSync(new URL(f, docs), 'utf8');

// --- GPT-2 byte-level BPE training (word-frequency form).
const byteToChar: string[] = [];
{
  const keep = new Set<number>();
  for (let b = 33; b <= 126; b++) keep.add(b);
  for (let b = 161; b <= 172; b++) keep.add(b);
  for (let b = 174; b <= 255; b++) keep.add(b);
  let extra = 0;
  for (let b = 0; b < 256; b++) byteToChar[b] = String.fromCodePoint(keep.has(b) ? b : 256 + extra++);
}
const PRE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const enc = new TextEncoder();
const words = new Map<string, number>();
for (const w of corpus.match(PRE) ?? []) {
  const mapped = Array.from(enc.encode(w), (b) => byteToChar[b]).join('');
  words.set(mapped, (words.get(mapped) ?? 0) + 1);
}
let seqs = [...words].map(([w, n]) => ({ parts: [...w], n }));
const vocab: Record<string, number> = {};
for (const c of byteToChar) vocab[c as string] = Object.keys(vocab).length;
const merges: string[] = [];
const tTrain = performance.now();
for (let m = 0; m < MERGES; m++) {
  const pairs = new Map<string, number>();
  for (const s of seqs) for (let i = 0; i + 1 < s.parts.length; i++) {
    const k = `${s.parts[i]} ${s.parts[i + 1]}`;
    pairs.set(k, (pairs.get(k) ?? 0) + s.n);
  }
  let best = '';
  let bestN = 0;
  for (const [k, n] of pairs) if (n > bestN) [best, bestN] = [k, n];
  if (bestN < 2) break;
  const [a, b] = best.split(' ') as [string, string];
  merges.push(best);
  vocab[a + b] ??= Object.keys(vocab).length;
  for (const s of seqs) {
    for (let i = 0; i + 1 < s.parts.length; i++) if (s.parts[i] === a && s.parts[i + 1] === b) s.parts.splice(i, 2, a + b);
  }
  if (m % 64 === 63) seqs = seqs.filter((s) => s.parts.length > 1); // whole words need no more merges
}
const trainMs = performance.now() - tTrain;
const dir = mkdtempSync(join(tmpdir(), 'epp-tok-bench-'));
const file = join(dir, 'tokenizer.json');
writeFileSync(file, JSON.stringify({
  version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: null, decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
}));
const local = new LocalTokenizer({ tokenizerFile: file });
rmSync(dir, { recursive: true, force: true });

// --- prompts of N tokens (of this BPE), cut from the corpus repeated with a varying tag so the cache of words
// does not see only repeats.
const fleet = await startFleet({ servers: 1, basePort: 0, serverOptions: { maxModelLen: 131_072, kvCacheSize: 8192 } });
const url = `${fleet.servers[0]!.url}/v1/completions/render`;
const model = fleet.servers[0]!.sim.baseModel;
const rows: string[] = [];
for (const tokens of SIZES) {
  let text = '';
  for (let i = 0; local.encodeText(text, false).length < tokens; i++) text += `[${i}] ${corpus.slice((i * 7919) % (corpus.length - 4000), ((i * 7919) % (corpus.length - 4000)) + 4000)}`;
  const ids = local.encodeText(text, false);
  const cut = text.slice(0, Math.floor((text.length * tokens) / ids.length));
  const body = JSON.stringify({ model, prompt: cut });
  const variants = {
    local: () => local.tokenize({ apiType: 'completions', payload: { prompt: cut }, stream: false }),
    render: async () => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const json = (await res.json()) as { token_ids?: number[] } | { token_ids?: number[] }[];
      const ids = (Array.isArray(json) ? json[0] : json)?.token_ids;
      if (ids === undefined) throw new Error(`render answered ${res.status}: ${JSON.stringify(json).slice(0, 200)}`);
      return ids;
    },
  };
  for (let w = 0; w < 5; w++) for (const fn of Object.values(variants)) await fn();
  const res = await repetitions(['local', 'render'] as const, { repetitions: REPS, seed: tokens }, async (v) => {
    const t0 = performance.now();
    await variants[v]();
    return (performance.now() - t0) * 1000;
  });
  const l = median(res.get('local')!);
  const r = median(res.get('render')!);
  const n = local.encodeText(cut, false).length;
  rows.push(`| ${n.toLocaleString('en')} | ${(l / 1000).toFixed(2)} | ${(n / (l / 1e6) / 1e6).toFixed(2)} | ${(r / 1000).toFixed(2)} | ${(l / r).toFixed(2)} |`);
}
await fleet.close();
console.log(`Node ${process.version}; BPE: ${merges.length} merges, ${Object.keys(vocab).length} tokens (trained in ${(trainMs / 1000).toFixed(1)} s); ${REPS} alternated repetitions; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('\n| prompt tokens | local ms (median) | local M tok/s | render round trip ms (median) | local / render |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
