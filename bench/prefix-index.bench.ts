/**
 * Precise prefix index benchmark (`npm run bench:prefix-index`), against the approximate producer in the same run.
 *
 * 1. Event apply rate: 96 endpoints' BlockStored batches (64 blocks × 16 tokens per event, msgpack-encoded as vLLM
 *    sends them) decoded and applied until the index holds ≥ 1M cached block replicas; then BlockRemoved of half
 *    an endpoint. Rate = blocks / s, decode included, one core.
 * 2. Memory: bytes per cached block replica = (heap + array buffers after GC, filled − empty) / replicas.
 * 3. Scoring: one `prepareData` call of `precise-prefix-cache-producer` with its default parameters, i.e. what the
 *    plugin costs one request on the request path before scheduling: request keys over every full block (hashed
 *    into pooled arrays kept for the speculative insert), the longest-prefix match over all candidates, one
 *    PrefixCacheMatchInfo per candidate; the candidates themselves are the director's and are built outside the
 *    timed call. The index holds no speculative entries (an idle router). Prompts of 1k–240k tokens × 8 or 96
 *    endpoints; the 240k-token prompt is fully cached on 48 endpoints and half on the other 48 (the walk visits
 *    every block). A/B alternated with
 *    `approx-prefix-cache-producer` (default: 256-block cap; and uncapped) on the same prompt text, its index warm
 *    with the same prompt on the same endpoints. Median µs; bytes allocated per call = heap growth with no GC during
 *    the call (young generation 64 MB, so no scavenge runs during one call). Times are medians of samples of
 *    3–10 back-to-back calls (steady state), variants alternated sample by sample.
 * 4. Routing cycle at 240k × 96 (what a routed request costs the plugin in all, under traffic): `prepareData` with
 *    another request's speculative entries live, which also expires the entries of the request routed one TTL
 *    earlier, + `preRequest` (speculative insert of every block + the confirmed-only match for the chosen endpoint).
 * 5. Clearing an endpoint (`AllBlocksCleared`) on a wide index: a separate `KvBlockIndex` of 96 endpoints × 10k
 *    distinct blocks (960k request keys), five endpoints cleared one after another; each `clear` call timed, then
 *    the `drainClears` calls that release its keys (none in a tree that clears in one call, e.g. the baseline).
 * The token ids are produced once, outside the timed scoring (the `sim` token producer's cost is reported apart).
 *
 * `--baseline <dir>`: also loads the precise producer from another checkout (e.g. a copy of main's tree with its
 * node_modules), fills its index the same way, and alternates it with this tree's in every precise measurement.
 *
 * Usage: node --import tsx bench/prefix-index.bench.ts [--quick] [--baseline <dir>]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Encoder } from '@msgpack/msgpack';
import { TokenizedPromptKey } from '../src/framework/attributes.ts';
import type { Endpoint } from '../src/framework/datalayer.ts';
import type { Candidate } from '../src/framework/scheduling.ts';
import { approxPrefixCacheProducerFactory, type ApproxPrefixCacheProducer } from '../src/plugins/requestcontrol/approx-prefix-cache-producer/index.ts';
import { decodeBatch, type DecodeStats } from '../src/plugins/requestcontrol/precise-prefix-cache-producer/kv-events.ts';
import { PrecisePrefixCacheProducer, precisePrefixCacheProducerFactory } from '../src/plugins/requestcontrol/precise-prefix-cache-producer/index.ts';
import { KvBlockIndex } from '../src/plugins/requestcontrol/precise-prefix-cache-producer/kv-block-index.ts';
import type { EventTransport } from '../src/plugins/requestcontrol/precise-prefix-cache-producer/zmq-transport.ts';
import { simTokenize } from '../src/plugins/requestcontrol/token-producer/sim-tokenizer.ts';
import { makeCandidate, makeEndpoint, makeHandle, makeRequest, makeSchedulingResult } from '../test/support/plugin-fixtures.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  const script = fileURLToPath(import.meta.url);
  const res = spawnSync(
    process.execPath,
    ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--max-old-space-size=4096', ...process.execArgv, script, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(res.status ?? 1);
}
const collect = gc as () => void;

const QUICK = process.argv.includes('--quick');
const baselineArg = process.argv.indexOf('--baseline');
const BASELINE_DIR = baselineArg >= 0 ? process.argv[baselineArg + 1] : undefined;
if (baselineArg >= 0 && (BASELINE_DIR === undefined || BASELINE_DIR.startsWith('--'))) throw new Error('--baseline needs a directory (a checkout with node_modules)');
/** The precise producer's directory in the baseline checkout. */
const BASELINE_PRECISE = BASELINE_DIR === undefined ? undefined : `${BASELINE_DIR.replace(/\/$/, '')}/src/plugins/requestcontrol/precise-prefix-cache-producer`;
const B = 16;
const ENDPOINTS = 96;
const FULL_TOKENS = 240_000;
const PROMPT_SIZES = QUICK ? [8_000, 240_000] : [1_000, 8_000, 32_000, 240_000];
const ENDPOINT_COUNTS = [8, 96];
const ITER = QUICK ? 9 : 31;


const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.floor(s.length * q))] as number);
};
const median = (xs: number[]): number => quantile(xs, 0.5);
const mem = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

// --- the prompt: 240k chars4 tokens of text (960 KB), tokenized like the simulator.
let words = '';
for (let i = 0; words.length < FULL_TOKENS * 4; i++) words += `w${(i * 2654435761) % 100003} `;
const fullText = words.slice(0, FULL_TOKENS * 4);
const tTok = performance.now();
const fullTokens = simTokenize({ apiType: 'completions', payload: { prompt: fullText }, stream: false }, 'chars4') as Uint32Array;
const tokenizeMs = performance.now() - tTok;

// --- a producer whose endpoints are in sync without a network: replay answers "nothing to replay" at once.
const endpoints: Endpoint[] = Array.from({ length: ENDPOINTS }, (_, i) => makeEndpoint(`ep-${i}`, {}, { address: `10.0.${i >> 8}.${i & 255}` }));
const handle = makeHandle({ endpoints });
const transport = (): EventTransport => ({ start: () => undefined, replay: () => Promise.resolve([]), close: () => undefined });
const config = (precisePrefixCacheProducerFactory('cfg', {}, makeHandle()) as PrecisePrefixCacheProducer).config;
const precise = new PrecisePrefixCacheProducer('precise', config, handle, { transportFor: transport, reconcileTimer: false });
precise.reconcile();
await Promise.all(endpoints.map((e) => precise.syncOf(e.metadata.name)?.idle));
// The baseline producer (another checkout), on its own handle (clock) over the same endpoints.
type Producer = Pick<PrecisePrefixCacheProducer, 'prepareData' | 'preRequest' | 'applier' | 'close'>;
const baselineHandle = makeHandle({ endpoints });
const baseline = await (async (): Promise<{ producer: Producer; decode: typeof decodeBatch } | undefined> => {
  const dir = BASELINE_PRECISE;
  if (dir === undefined) return undefined;
  const mod = (await import(`${dir}/index.ts`)) as typeof import('../src/plugins/requestcontrol/precise-prefix-cache-producer/index.ts');
  const ev = (await import(`${dir}/kv-events.ts`)) as typeof import('../src/plugins/requestcontrol/precise-prefix-cache-producer/kv-events.ts');
  const p = new mod.PrecisePrefixCacheProducer('baseline', config, baselineHandle, { transportFor: transport, reconcileTimer: false });
  p.reconcile();
  await Promise.all(endpoints.map((e) => p.syncOf(e.metadata.name)?.idle));
  return { producer: p, decode: ev.decodeBatch };
})();

// --- 1. event apply rate (decode + apply), filling the index.
const encoder = new Encoder({ useBigInt64: true });
const stats: DecodeStats = { unknownTags: 0, unknownFields: 0, malformedEvents: 0 };
const PER_EVENT = 64;
collect();
const memEmpty = mem();
let applied = 0;
let applyMs = 0;
const blocksOf = (e: number): number => (e < ENDPOINTS / 2 ? FULL_TOKENS / B : FULL_TOKENS / B / 2);
const payloadsOf = (e: number): Uint8Array[] => {
  const blocks = blocksOf(e);
  const salt = BigInt(e + 1) << 40n; // engine hashes differ per endpoint (random seed per engine)
  const payloads: Uint8Array[] = [];
  for (let b = 0; b < blocks; b += PER_EVENT) {
    const n = Math.min(PER_EVENT, blocks - b);
    const hashes = Array.from({ length: n }, (_, k) => salt + BigInt(b + k + 1) * 0x9e3779b97f4a7c15n % (1n << 40n));
    const parent = b === 0 ? null : salt + BigInt(b) * 0x9e3779b97f4a7c15n % (1n << 40n);
    payloads.push(encoder.encode([1.0, [['BlockStored', hashes, parent, Array.from(fullTokens.subarray(b * B, (b + n) * B)), B, null, 'GPU']], 0]));
  }
  return payloads;
};
for (let e = 0; e < ENDPOINTS; e++) {
  const name = `ep-${e}`;
  const payloads = payloadsOf(e);
  const t0 = performance.now();
  for (let i = 0; i < payloads.length; i++) precise.applier.apply(name, decodeBatch('kv@x', BigInt(i), payloads[i] as Uint8Array, stats).events);
  applyMs += performance.now() - t0;
  applied += blocksOf(e);
}
collect();
const memFull = mem();
const st = precise.index.stats();
const bytesPerReplica = (memFull - memEmpty) / st.replicas;
if (baseline !== undefined) {
  for (let e = 0; e < ENDPOINTS; e++) {
    const payloads = payloadsOf(e);
    for (let i = 0; i < payloads.length; i++) baseline.producer.applier.apply(`ep-${e}`, baseline.decode('kv@x', BigInt(i), payloads[i] as Uint8Array, stats).events);
  }
}

// Removal rate on one endpoint's second half.
const removals: Uint8Array[] = [];
{
  const salt = 1n << 40n;
  for (let b = FULL_TOKENS / B / 2; b < FULL_TOKENS / B; b += PER_EVENT) {
    const hashes = Array.from({ length: PER_EVENT }, (_, k) => salt + BigInt(b + k + 1) * 0x9e3779b97f4a7c15n % (1n << 40n));
    removals.push(encoder.encode([1.0, [['BlockRemoved', hashes, 'GPU']], 0]));
  }
}

// --- the approximate producer, warm with the same prompt on the same endpoints (its index is capacity-bounded).
const approxOf = (params: Record<string, unknown>): ApproxPrefixCacheProducer => {
  const p = approxPrefixCacheProducerFactory('approx', { autoTune: false, lruCapacityPerServer: 20_000, ...params }, handle) as ApproxPrefixCacheProducer;
  for (let e = 0; e < ENDPOINTS; e++) {
    const text = e < ENDPOINTS / 2 ? fullText : fullText.slice(0, fullText.length / 2);
    const r = makeRequest({ payload: { model: 'm', prompt: text } });
    const c = [makeCandidate(endpoints[e] as Endpoint)];
    p.prepareData(r, c);
    p.preRequest(r, makeSchedulingResult({ default: c }));
  }
  return p;
};
const approxCapped = approxOf({});
const approxFull = approxOf({ maxPrefixTokensToMatch: FULL_TOKENS });

// --- 3. scoring, A/B alternated.
interface Row { tokens: number; endpoints: number; us: Record<string, number>; q1: Record<string, number>; q3: Record<string, number>; bytes: Record<string, number> }
const rows: Row[] = [];
const signal = new AbortController().signal;
for (const tokens of PROMPT_SIZES) {
  for (const n of ENDPOINT_COUNTS) {
    // 8 endpoints: 4 full + 4 half holders; 96: 48 + 48.
    const eps = [...endpoints.slice(0, n / 2), ...endpoints.slice(ENDPOINTS / 2, ENDPOINTS / 2 + n / 2)];
    const ids = fullTokens.subarray(0, tokens);
    const text = fullText.slice(0, tokens * 4);
    // Requests are built once (outside the timed calls: building one stringifies the 960 KB body); candidates are
    // fresh per call, as the director makes them, and built before the timed calls (`fresh` below).
    const preciseRequest = makeRequest({ payload: { model: 'm', prompt: text } });
    const approxRequest = makeRequest({ payload: { model: 'm', prompt: text } });
    const tokenized = { tokenIds: ids, source: 'sim' };
    const withTokens = (): Candidate[] => eps.map((e) => makeCandidate(e, { [TokenizedPromptKey]: tokenized }));
    const plain = (): Candidate[] => eps.map((e) => makeCandidate(e));
    const variants: Record<string, { fresh: () => Candidate[]; run: (c: Candidate[]) => void }> = {
      precise: { fresh: withTokens, run: (c) => void precise.prepareData(preciseRequest, c) },
      ...(baseline === undefined ? {} : { 'precise (baseline)': { fresh: withTokens, run: (c: Candidate[]) => void baseline.producer.prepareData(preciseRequest, c) } }),
      'approx (256-block cap)': { fresh: plain, run: (c) => void approxCapped.prepareData(approxRequest, c) },
      'approx (uncapped)': { fresh: plain, run: (c) => void approxFull.prepareData(approxRequest, c) },
    };
    const us: Record<string, number[]> = {};
    const bytes: Record<string, number[]> = {};
    for (const k of Object.keys(variants)) {
      us[k] = [];
      bytes[k] = [];
      for (let w = 0; w < 3; w++) variants[k]!.run(variants[k]!.fresh());
    }
    // Timing: K calls back to back per sample (steady state, no forced GC in between), variants alternated.
    const K = tokens >= 100_000 ? 3 : 10;
    for (let i = 0; i < ITER; i++) {
      for (const [k, v] of Object.entries(variants)) {
        const cands = Array.from({ length: K }, v.fresh);
        const t0 = performance.now();
        for (let j = 0; j < K; j++) v.run(cands[j] as Candidate[]);
        us[k]!.push(((performance.now() - t0) * 1000) / K);
      }
    }
    // Allocation: one call on a freshly collected heap (a 64 MB young generation: no scavenge during one call;
    // a negative delta would mean one ran anyway and is dropped).
    for (let i = 0; i < 5; i++) {
      for (const [k, v] of Object.entries(variants)) {
        const cands = v.fresh();
        collect();
        const m0 = mem();
        v.run(cands);
        const d = mem() - m0;
        if (d >= 0) bytes[k]!.push(d);
      }
    }
    rows.push({
      tokens,
      endpoints: n,
      us: Object.fromEntries(Object.entries(us).map(([k, v]) => [k, median(v)])),
      q1: Object.fromEntries(Object.entries(us).map(([k, v]) => [k, quantile(v, 0.25)])),
      q3: Object.fromEntries(Object.entries(us).map(([k, v]) => [k, quantile(v, 0.75)])),
      bytes: Object.fromEntries(Object.entries(bytes).map(([k, v]) => [k, median(v)])),
    });
  }
}

// Where the precise time goes at the largest cell: request keys alone, match alone (same process, medians).
const breakdown = (() => {
  const ids = fullTokens;
  const slots = endpoints.map((e) => precise.index.slotOf(e.metadata.name));
  const k = precise.keyer.keys('', ids);
  const hi = k.hi.slice(0, k.n);
  const lo = k.lo.slice(0, k.n);
  const keysUs: number[] = [];
  const matchUs: number[] = [];
  for (let i = 0; i < ITER; i++) {
    let t0 = performance.now();
    precise.keyer.keys('', ids);
    keysUs.push((performance.now() - t0) * 1000);
    t0 = performance.now();
    precise.index.match(hi, lo, hi.length, slots);
    matchUs.push((performance.now() - t0) * 1000);
  }
  return { keys: median(keysUs), match: median(matchUs) };
})();

// --- 4. Routing cycles at 240k × 96, alternated: every cycle is one TTL / 2 later than the previous one, so its
// prepareData expires the entries of the request routed two cycles ago and matches with the previous one's live.
const cycles = (() => {
  const ttl = config.speculative.ttlMs;
  const eps = endpoints;
  interface Cycler { prepare: number[]; pre: number[]; run: (k: number) => void }
  const cyclerOf = (p: Producer, clock: { advance: (ms: number) => void }): Cycler => {
    const c: Cycler = { prepare: [], pre: [], run: () => undefined };
    c.run = (k) => {
      const request = makeRequest({ payload: { model: 'm', prompt: fullText } });
      const cands = eps.map((e) => makeCandidate(e, { [TokenizedPromptKey]: { tokenIds: fullTokens, source: 'sim' } }));
      const target = cands[ENDPOINTS / 2 + (k % (ENDPOINTS / 2))] as Candidate; // a half holder: its entries go speculative
      const result = makeSchedulingResult({ default: [target] });
      clock.advance(ttl / 2 + 1);
      const t0 = performance.now();
      void p.prepareData(request, cands);
      const t1 = performance.now();
      void p.preRequest(request, result, signal);
      const t2 = performance.now();
      c.prepare.push((t1 - t0) * 1000);
      c.pre.push((t2 - t1) * 1000);
    };
    return c;
  };
  const list: [string, Cycler][] = [['precise', cyclerOf(precise, handle.clock)]];
  if (baseline !== undefined) list.push(['precise (baseline)', cyclerOf(baseline.producer, baselineHandle.clock)]);
  for (let w = 0; w < 4; w++) for (const [, c] of list) c.run(w);
  for (const [, c] of list) {
    c.prepare.length = 0;
    c.pre.length = 0;
  }
  for (let i = 0; i < ITER; i++) for (const [, c] of list) c.run(i);
  return list.map(([name, c]) => ({
    name,
    prepare: median(c.prepare),
    pre: median(c.pre),
    total: median(c.prepare.map((x, i) => x + (c.pre[i] as number))),
    q1: quantile(c.prepare.map((x, i) => x + (c.pre[i] as number)), 0.25),
    q3: quantile(c.prepare.map((x, i) => x + (c.pre[i] as number)), 0.75),
  }));
})();

// Event removal rate, measured after scoring (it shrinks the index).
const tr = performance.now();
for (let i = 0; i < removals.length; i++) precise.applier.apply('ep-0', decodeBatch('kv@x', BigInt(i), removals[i] as Uint8Array, stats).events);
const removeMs = performance.now() - tr;
const removed = removals.length * PER_EVENT;

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const kb = (x: number) => (Number.isFinite(x) ? `${(x / 1024).toFixed(0)} KB` : 'n/a');
console.log(`Node ${process.version}, ${ENDPOINTS} endpoints, block size ${B}, ${ITER} alternated iterations per cell`);
console.log(`\nIndex filled: ${st.replicas.toLocaleString('en')} cached block replicas, ${st.requestKeys.toLocaleString('en')} request keys`);
console.log(`  apply rate (msgpack decode + apply): ${fmt(applied / (applyMs / 1000) / 1000, 0)}k blocks/s stored; removal ${fmt(removed / (removeMs / 1000) / 1000, 0)}k blocks/s`);
console.log(`  memory: ${fmt(bytesPerReplica, 0)} B per cached block replica (heap + array buffers after GC; index arrays alone ${fmt(st.bytes / st.replicas, 0)} B)`);
console.log(`  sim tokenizer (token-producer backend sim), 240k tokens: ${fmt(tokenizeMs, 1)} ms (not part of scoring)`);
console.log(`  precise at 240k tokens × 96 endpoints, parts alone: request keys ${fmt(breakdown.keys)} µs, match ${fmt(breakdown.match)} µs`);
const spread = (r: Row, k: string) => `${fmt(r.us[k] as number)} (${fmt(r.q1[k] as number, 0)}–${fmt(r.q3[k] as number, 0)})`;
const B_ = baseline === undefined ? '' : ' baseline µs (IQR) | alloc | new / baseline |';
const Bsep = baseline === undefined ? '' : '---|---|---|';
console.log('\nScoring = one prepareData call, median µs (interquartile range) and bytes allocated:');
console.log(`\n| prompt tokens | endpoints | precise µs (IQR) | precise alloc |${B_} approx (256-block cap) µs | alloc | approx (uncapped) µs | alloc | precise / approx-uncapped |`);
console.log(`|---|---|---|---|${Bsep}---|---|---|---|---|`);
for (const r of rows) {
  const p = r.us.precise as number;
  const a = r.us['approx (256-block cap)'] as number;
  const f = r.us['approx (uncapped)'] as number;
  const base = baseline === undefined ? '' : ` ${spread(r, 'precise (baseline)')} | ${kb(r.bytes['precise (baseline)'] as number)} | ${fmt(p / (r.us['precise (baseline)'] as number), 2)} |`;
  console.log(`| ${r.tokens.toLocaleString('en')} | ${r.endpoints} | ${spread(r, 'precise')} | ${kb(r.bytes.precise as number)} |${base} ${fmt(a)} | ${kb(r.bytes['approx (256-block cap)'] as number)} | ${fmt(f)} | ${kb(r.bytes['approx (uncapped)'] as number)} | ${fmt(p / f, 2)} |`);
}
console.log('\nRouting cycle at 240k × 96 under traffic (prepareData with a live speculative request, expiring an older one; + preRequest), median µs:');
for (const c of cycles) console.log(`  ${c.name}: prepareData ${fmt(c.prepare)} + preRequest ${fmt(c.pre)} = ${fmt(c.total)} (IQR ${fmt(c.q1, 0)}–${fmt(c.q3, 0)})`);

// --- 5. clearing an endpoint on a wide index (this tree's KvBlockIndex, then the baseline's).
type ClearIndex = { store(e: string, eh: number, el: number, rh: number, rl: number, tier: number): unknown; clear(e: string): void; drainClears?: () => void; stats(): { requestKeys: number } };
const clearRun = (make: () => ClearIndex): { clearMs: number[]; drainCalls: number; drainMs: number[] } => {
  const index = make();
  let k = 1;
  for (let e = 0; e < 96; e++) {
    for (let b = 0; b < 10_000; b++, k++) {
      const h = Math.imul(k, 0x9e3779b1) >>> 0;
      index.store(`e${e}`, k, h, h ^ 0x85ebca6b, Math.imul(k, 0xc2b2ae35) >>> 0, 0);
    }
  }
  const clearMs: number[] = [];
  const drainMs: number[] = [];
  let drainCalls = 0;
  for (let e = 0; e < 5; e++) {
    const keys = index.stats().requestKeys;
    let t = performance.now();
    index.clear(`e${e}`);
    clearMs.push(performance.now() - t);
    while (index.drainClears !== undefined && index.stats().requestKeys > keys - 10_000) {
      t = performance.now();
      index.drainClears();
      drainMs.push(performance.now() - t);
      drainCalls++;
    }
  }
  return { clearMs, drainCalls, drainMs };
};
const clearLine = (name: string, r: ReturnType<typeof clearRun>): string =>
  `  ${name}: clear call ${r.clearMs.map((x) => fmt(x, 2)).join(', ')} ms (median ${fmt(median(r.clearMs), 2)})` +
  (r.drainCalls > 0 ? `; then ${r.drainCalls} drainClears calls in all, median ${fmt(median(r.drainMs) * 1000, 0)} µs, longest ${fmt(Math.max(...r.drainMs) * 1000, 0)} µs` : '');
console.log('\nClearing an endpoint of 10k blocks in an index of 96 × 10k distinct blocks (960k request keys), five in a row:');
const TIERS = Object.entries(config.tierWeights).map(([name, weight]) => ({ name, weight }));
console.log(clearLine('precise', clearRun(() => new KvBlockIndex(TIERS))));
if (BASELINE_PRECISE !== undefined) {
  const mod = (await import(`${BASELINE_PRECISE}/kv-block-index.ts`)) as { KvBlockIndex: new (tiers: typeof TIERS) => ClearIndex };
  collect();
  console.log(clearLine('precise (baseline)', clearRun(() => new mod.KvBlockIndex(TIERS))));
}
precise.close();
baseline?.producer.close();
