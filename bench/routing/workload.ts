/**
 * The routing benchmark's workload: inference-perf's `shared_prefix` generator (sim-spec §7.2) and the
 * scenarios of sim-spec §7.3, as a deterministic request schedule. Everything here is pure and seeded: the
 * same scenario, load and seed give the same arrivals, prompts and output lengths, so every policy sees the
 * same sequence. Times are in *simulated* seconds; the load generator multiplies them by the time scale.
 */
import type { SimServerOptions } from '../../src/sim/config.ts';
import { SeededRandom } from '../../src/sim/rng.ts';

/** A length: fixed (`sd` 0/absent) or normal(mean, sd) clamped to [min, max], rounded to whole tokens. */
export interface LengthSpec {
  readonly mean: number;
  readonly sd?: number;
  readonly min?: number;
  readonly max?: number;
}

export interface ScenarioSpec {
  readonly name: string;
  readonly description: string;
  /** `completions` with `prompt`, or `chat` (multi-turn sessions). */
  readonly api: 'completions' | 'chat';
  readonly groups: number;
  /** Prompts per group (or sessions per group when `multiTurn`). */
  readonly promptsPerGroup: number;
  /** System prompt length in tokens (a multiple of 16 keeps the shared part block-aligned). */
  readonly systemTokens: number;
  readonly question: LengthSpec;
  readonly output: LengthSpec;
  /** `shuffled` (inference-perf) or `group-major` (a group's prompts back to back). */
  readonly order: 'shuffled' | 'group-major';
  /** Zipf exponent of group popularity; requests then pick group by popularity and a prompt at random. */
  readonly zipf?: number;
  readonly multiTurn?: boolean;
  readonly servers: number;
  /** Simulator option overrides for every server (`SimServerOptions` field names); `perServer` goes on top. */
  readonly serverOptions?: Readonly<Partial<SimServerOptions>>;
  /** Simulator option overrides per server index (speed-factor, faults; `SimServerOptions` field names). */
  readonly perServer?: Readonly<Record<number, Readonly<Record<string, unknown>>>>;
  /**
   * Divergence between the router's picture and the caches (precise-prefix-design §6.2): fraction of requests
   * sent straight to a server (uniformly chosen, seeded) without passing the EPP. They load the fleet and fill
   * its caches but are not in the measured statistics (the policy's own traffic is).
   */
  readonly bypassFraction?: number;
  /**
   * With `bypassFraction`: the bypassing requests carry their own prompt of this many tokens, random and unique per
   * request (never a group's), so they only evict what the servers cache — blocks the EPP believes are still
   * there. Without it, they reuse the scenario's prompts (adding copies the EPP does not know about).
   */
  readonly bypassPromptTokens?: number;
  /**
   * With `bypassFraction`: how the bypassing requests pick their server. `random` (default): uniformly, seeded —
   * clients spread over the servers. `group-affinity`: a second gateway that pins each prompt group to one server
   * (`secondGatewayServers`: a seeded, balanced group → server map, like a ring hash on the prefix) — it keeps its
   * groups cached, and those placements are never seen by the EPP's approximate index (only by KV events).
   */
  readonly bypassRouting?: 'random' | 'group-affinity';
  /** Fraction of requests the client cancels before the first token (after `cancelWindowS`, seeded uniform). */
  readonly cancelFraction?: number;
  /** The cancel delay after sending, simulated seconds, uniform in [lo, hi]. Default [0.005, 0.03]: before a cached prompt's first token (TTFT ≈ 40 ms on the simulator), after the EPP routed it. */
  readonly cancelWindowS?: readonly [number, number];
  /**
   * Every `everyS` simulated seconds, `POST /reset_prefix_cache` on server `server` (the runner does it). With
   * `force`, as `?reset_running_requests=true` (vLLM's forced reset: running requests are preempted and
   * recompute), so the reset lands on time at any load; without, a refused reset (409 while requests hold
   * blocks) is retried until the server is idle.
   */
  readonly reset?: { readonly server: number; readonly everyS: number; readonly force?: boolean };
}

/** The simulated fleet the scenarios are sized for (src/sim/config.ts defaults: sim-spec §6.3). */
export const FLEET_KV_BLOCKS_PER_SERVER = 2048;
export const KV_BLOCK_TOKENS = 16;

/**
 * KV blocks the scenario's resident prompts need: per group its system prompt plus every distinct question
 * (a prompt is fixed per (group, item), so the question blocks are cached too). Output blocks are not counted
 * (they are never reused by another prompt). Multi-turn and Zipf scenarios count the same way.
 */
export function residentPromptBlocks(s: ScenarioSpec, blockTokens = KV_BLOCK_TOKENS): number {
  return s.groups * (Math.floor(s.systemTokens / blockTokens) + s.promptsPerGroup * Math.floor(s.question.mean / blockTokens));
}

/** Resident prompt blocks / the fleet's KV blocks (0.73 for sp-pressure, 1.2 for sp-overflow). */
export function kvPressure(s: ScenarioSpec, blocksPerServer = FLEET_KV_BLOCKS_PER_SERVER, blockTokens = KV_BLOCK_TOKENS): number {
  return residentPromptBlocks(s, blockTokens) / (s.servers * blocksPerServer);
}

export interface Stage {
  /** Offered rate, requests per simulated second. */
  readonly rate: number;
  /** Simulated seconds. */
  readonly duration: number;
}

export interface LoadSpec {
  readonly arrival: 'poisson' | 'constant';
  /** Excluded from results; seats the caches. */
  readonly warmup: Stage;
  readonly stages: readonly Stage[];
  /** Per-request timeout, simulated seconds. */
  readonly timeoutS: number;
  readonly seed: number;
}

const SP_MAIN: Omit<ScenarioSpec, 'name' | 'description'> = {
  api: 'completions',
  groups: 32,
  promptsPerGroup: 16,
  systemTokens: 2048,
  question: { mean: 256 },
  output: { mean: 128 },
  order: 'shuffled',
  servers: 4,
};

/**
 * llm-d's 73 %-capacity design on our fleet (precise-prefix-design §6.2): 29 groups × 5 questions, system 2048,
 * question 256 → 29 × (128 + 5 × 16) = 6032 blocks of the fleet's 4 × 2048 = 8192 (73.6 %). Round-robin needs
 * every prefix on every server (6032 > 2048 per server: thrash); affinity needs a quarter per server (fits).
 */
const SP_PRESSURE: Omit<ScenarioSpec, 'name' | 'description'> = { ...SP_MAIN, groups: 29, promptsPerGroup: 5 };

export const SCENARIOS: Readonly<Record<string, ScenarioSpec>> = {
  'sp-main': { ...SP_MAIN, name: 'sp-main', description: '32 × 16, system 2048, question 256, output 128: round-robin thrash vs prefix locality' },
  'sp-low-overlap': {
    ...SP_MAIN,
    name: 'sp-low-overlap',
    description: '32 × 16, system 256, question 2048, output 128: prefix barely matters',
    systemTokens: 256,
    question: { mean: 2048 },
  },
  'sp-few-groups': {
    ...SP_MAIN,
    name: 'sp-few-groups',
    description: '4 × 128, system 2048: as many groups as servers, pure affinity under-uses servers',
    groups: 4,
    promptsPerGroup: 128,
  },
  'sp-skewed': {
    ...SP_MAIN,
    name: 'sp-skewed',
    description: '16 groups × 32, Zipf s = 1.2 popularity: the hottest group needs more than one server',
    groups: 16,
    promptsPerGroup: 32,
    zipf: 1.2,
  },
  'sp-multiturn': {
    ...SP_MAIN,
    name: 'sp-multiturn',
    description: '8 groups × 64 chat sessions, system 1024, question ~64, output ~128: growing contexts',
    api: 'chat',
    groups: 8,
    promptsPerGroup: 64,
    systemTokens: 1024,
    question: { mean: 64, sd: 20, min: 8, max: 160 },
    output: { mean: 128, sd: 40, min: 16, max: 320 },
    multiTurn: true,
  },
  'sp-hetero': {
    ...SP_MAIN,
    name: 'sp-hetero',
    description: 'sp-main with server 0 twice as slow (speed-factor 2)',
    perServer: { 0: { speedFactor: 2 } },
  },
  'sp-faults': {
    ...SP_MAIN,
    name: 'sp-faults',
    description: 'sp-main with server 3 faulty: 5 % TTFT spikes (+2 s), a 1 s stall every 20 s, 2 % injected 500s',
    perServer: {
      3: { ttftSpikeRate: 5, ttftSpikeExtraMs: 2000, stallEveryMs: 20_000, stallDurationMs: 1000, failureInjectionRate: 2, failureTypes: ['server_error'] },
    },
  },
  'sp-pressure': {
    ...SP_PRESSURE,
    name: 'sp-pressure',
    description: '29 × 5, system 2048, question 256, output 128: resident prompts need 73.6 % of the fleet KV cache',
  },
  'sp-prefill': {
    ...SP_PRESSURE,
    name: 'sp-prefill',
    description: 'sp-pressure with 16-token outputs: prefill, not decode, limits the fleet, so cache hits set its capacity',
    output: { mean: 16 },
  },
  'sp-overflow': {
    ...SP_PRESSURE,
    name: 'sp-overflow',
    description: '47 × 5 (sp-pressure sizes): resident prompts need 119 % of the fleet KV cache, constant eviction',
    groups: 47,
  },
  // Scarce cache with uneven tenants (issue 18's scenario change, session 12). On sp-pressure and sp-overflow every
  // prefix-aware policy already runs at the fleet's ceiling (docs/benchmarks.md, "Ceilings"), so no router can beat
  // upstream there by 10–25 %. Real tenants are not equally busy: with Zipf 1.2 popularity over sp-pressure's 29
  // groups the hottest carries 33 % of the traffic (more than one server serves with its prefix cached) and the
  // coldest 0.6 %, while the cache stays as scarce (the same resident blocks). Where a hot group's overflow goes,
  // and what its copies evict, is then the router's choice.
  'sp-pressure-skewed': {
    ...SP_PRESSURE,
    name: 'sp-pressure-skewed',
    description: 'sp-pressure (73.6 % of the fleet KV cache) with Zipf 1.2 group popularity: the hottest of 29 groups carries 33 % of the traffic',
    zipf: 1.2,
  },
  'sp-overflow-skewed': {
    ...SP_PRESSURE,
    name: 'sp-overflow-skewed',
    description: 'sp-overflow (119 % of the fleet KV cache) with Zipf 1.2 group popularity: the hottest of 47 groups carries 31 % of the traffic',
    groups: 47,
    zipf: 1.2,
  },
  'sp-reset': {
    ...SP_PRESSURE,
    name: 'sp-reset',
    description: 'sp-pressure with server 0 resetting its prefix cache every 30 s (POST /reset_prefix_cache?reset_running_requests=true: on time, running requests recompute)',
    reset: { server: 0, everyS: 30, force: true },
  },
  // A flapping server: server 0 loses its cache every 5 s (a crash-looping pod, or one reloading weights on every
  // RL step). The approximate index heals one miss per group after each reset, but the reset comes back before
  // long, so a group it keeps on server 0 misses again and again; the precise index sees each reset (AllBlocksCleared).
  // Measured (docs/benchmarks.md, "Status"): 1.71× upstream-default on one seed of three, ties on the other two.
  'sp-reset-5s': {
    ...SP_PRESSURE,
    name: 'sp-reset-5s',
    description: 'sp-reset with server 0 resetting every 5 s (a flapping server: crash-looping, or reloading weights on every RL step)',
    reset: { server: 0, everyS: 5, force: true },
  },
  'sp-bypass': {
    ...SP_PRESSURE,
    name: 'sp-bypass',
    description: 'sp-pressure with 30 % of the requests sent straight to a random server, unseen by the EPP, each with its own unique 2,304-token prompt (evicts what the EPP believes cached)',
    bypassFraction: 0.3,
    bypassPromptTokens: 2304,
  },
  'sp-second-gateway': {
    ...SP_PRESSURE,
    name: 'sp-second-gateway',
    description:
      'sp-pressure shared with a second gateway: 50 % of the requests (same prompt groups) go straight to the server the second gateway pins their group to (seeded balanced map); the EPP sees neither those placements nor the evictions they cause',
    bypassFraction: 0.5,
    bypassRouting: 'group-affinity',
  },
  // Servers that publish no KV block count (TGI exports none; a vLLM-compatible server without
  // `num_gpu_blocks` in `vllm:cache_config_info`): the approximate index cannot size its per-server LRU, so it
  // assumes upstream's 31,250 blocks (≈ 500k tokens) for a server that caches 2,048 — ≈ 15×. It never forgets a
  // placement on this fleet, so a group that once spilled to a second server counts as cached there for good,
  // long after that server evicted it. The precise index follows the evictions (KV events), whatever the metrics say.
  'sp-pressure-unsized': {
    ...SP_PRESSURE,
    name: 'sp-pressure-unsized',
    description:
      'sp-pressure on servers that publish no KV block count (no num_gpu_blocks in vllm:cache_config_info): the approximate index assumes 31,250 blocks per server for 2,048 and never forgets a placement',
    serverOptions: { metricsNumGpuBlocks: false },
  },
  'sp-overflow-unsized': {
    ...SP_PRESSURE,
    name: 'sp-overflow-unsized',
    description: 'sp-overflow (119 % of the fleet KV cache) on servers that publish no KV block count (as sp-pressure-unsized)',
    groups: 47,
    serverOptions: { metricsNumGpuBlocks: false },
  },
  // Code-like prompts: the servers tokenize at 3.2 bytes per token (`chars3.2`), as real tokenizers do on source
  // code, while the approximate index still counts a 64-character block as 16 tokens. sp-pressure's text then needs
  // 29 × (160 + 5 × 20) = 7,540 blocks = 92 % of the fleet (the index believes 73.6 %), and the index's 2,048-block
  // LRU per server stands for 131k characters where a server caches 105k.
  'sp-pressure-code': {
    ...SP_PRESSURE,
    name: 'sp-pressure-code',
    description:
      'sp-pressure\'s text on servers that tokenize at 3.2 bytes per token (code-like): 92 % of the fleet KV cache where the approximate index (4 characters per token) counts 73.6 %',
    serverOptions: { tokenizer: 'chars3.2' },
  },
  'sp-cancel': {
    ...SP_PRESSURE,
    name: 'sp-cancel',
    description: 'sp-pressure with 10 % of the requests cancelled by the client 5–30 ms after sending (before the first token)',
    cancelFraction: 0.1,
  },
};

/** sim-spec §7.3's ladder (2…24 req/s). Our fleet's prefix-affine policies are still unsaturated at 24 req/s. */
export const SPEC_LADDER = [2, 4, 6, 8, 10, 12, 14, 16, 20, 24] as const;
/**
 * The default ladder: fine where the load-only policies break (12–16 req/s on sp-main), then up past the
 * prefix-affine policies' knee (36–42) to where the 4-server fleet is out of compute (≈ 33 req/s achieved).
 */
export const DEFAULT_LADDER = [8, 12, 16, 24, 30, 36, 42] as const;

export function defaultLoad(opts: { quick?: boolean; rates?: readonly number[]; stageS?: number; warmupS?: number; seed?: number } = {}): LoadSpec {
  const rates = opts.rates ?? DEFAULT_LADDER;
  const duration = opts.stageS ?? (opts.quick ? 10 : 30);
  return {
    arrival: 'poisson',
    warmup: { rate: 6, duration: opts.warmupS ?? (opts.quick ? 10 : 30) },
    stages: rates.map((rate) => ({ rate, duration })),
    timeoutS: 60,
    seed: opts.seed ?? 20260910,
  };
}

/**
 * The second gateway's group → server map (`bypassRouting: 'group-affinity'`): the groups in a seeded order, dealt
 * to the servers in turn, so every server gets ⌊G/N⌋ or ⌈G/N⌉ groups (a ring hash with equal shares). Seeded by the
 * load's seed, so each seed pins the groups differently, and independently of the EPP's own placements.
 */
export function secondGatewayServers(groups: number, servers: number, seed: number): number[] {
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`secondGatewayServers: groups must be a positive integer, got ${groups}`);
  if (!Number.isInteger(servers) || servers < 1) throw new Error(`secondGatewayServers: servers must be a positive integer, got ${servers}`);
  const rng = new SeededRandom(seed ^ 0x1b873593);
  const order = Array.from({ length: groups }, (_, g) => g);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  const out = new Array<number>(groups);
  order.forEach((g, i) => (out[g] = i % servers));
  return out;
}

/** One request of the schedule. `stage` −1 is the warm-up. */
export interface ScheduledRequest {
  readonly index: number;
  /** Send time, simulated seconds from the start of the run. */
  readonly atS: number;
  readonly stage: number;
  readonly group: number;
  /** Prompt index within the group (or session index for multi-turn). */
  readonly item: number;
  /** Question length in tokens (multi-turn: this turn's question). */
  readonly questionTokens: number;
  readonly maxTokens: number;
  /** Sent straight to this server index, bypassing the EPP (only in bypass scenarios). */
  readonly bypass?: number;
  /** Cancelled by the client this many simulated seconds after sending, if no token came yet. */
  readonly cancelAfterS?: number;
}

export function sampleLength(rng: SeededRandom, spec: LengthSpec): number {
  const sd = spec.sd ?? 0;
  const raw = sd > 0 ? spec.mean + sd * rng.normal() : spec.mean;
  const lo = spec.min ?? 1;
  const hi = spec.max ?? Number.MAX_SAFE_INTEGER;
  return Math.max(lo, Math.min(hi, Math.round(raw)));
}

/** Stage start times (simulated seconds): warm-up at 0, then the ladder back to back. */
export function stageStarts(load: LoadSpec): number[] {
  const starts = [load.warmup.duration];
  for (let i = 1; i < load.stages.length; i++) starts.push((starts[i - 1] as number) + (load.stages[i - 1] as Stage).duration);
  return starts;
}

export function totalDurationS(load: LoadSpec): number {
  return load.warmup.duration + load.stages.reduce((s, st) => s + st.duration, 0);
}

/** Zipf CDF over `n` ranks with exponent `s`. */
function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 1; k <= n; k++) total += 1 / k ** s;
  let acc = 0;
  for (let k = 1; k <= n; k++) {
    acc += 1 / k ** s / total;
    cdf[k - 1] = acc;
  }
  return cdf;
}

/**
 * The request schedule: arrival times per stage (Poisson or constant), and for each arrival the group, the
 * prompt (or session) and the lengths. Arrivals use one seeded stream, the content choice another, so the
 * prompt sequence does not depend on the rates.
 */
export function buildSchedule(scenario: ScenarioSpec, load: LoadSpec): ScheduledRequest[] {
  const arrivals = new SeededRandom(load.seed);
  const content = new SeededRandom(load.seed ^ 0x5bd1e995);
  const items: { group: number; item: number }[] = [];
  for (let g = 0; g < scenario.groups; g++) for (let p = 0; p < scenario.promptsPerGroup; p++) items.push({ group: g, item: p });
  if (scenario.order === 'shuffled') {
    for (let i = items.length - 1; i > 0; i--) {
      const j = content.int(i + 1);
      const t = items[i] as { group: number; item: number };
      items[i] = items[j] as { group: number; item: number };
      items[j] = t;
    }
  }
  const cdf = scenario.zipf !== undefined ? zipfCdf(scenario.groups, scenario.zipf) : undefined;
  // A third stream for the divergence draws, so they change neither the arrivals nor the prompt order.
  const divergence = new SeededRandom(load.seed ^ 0x2545f491);
  const bypassFraction = scenario.bypassFraction ?? 0;
  const cancelFraction = scenario.cancelFraction ?? 0;
  const pinned = scenario.bypassRouting === 'group-affinity' ? secondGatewayServers(scenario.groups, scenario.servers, load.seed) : undefined;
  const [cancelLo, cancelHi] = scenario.cancelWindowS ?? [0.005, 0.03];
  // Fixed per-prompt lengths (inference-perf draws them once per prompt); multi-turn draws per turn.
  const questionOf = items.map(() => sampleLength(content, scenario.question));
  const outputOf = items.map(() => sampleLength(content, scenario.output));

  const out: ScheduledRequest[] = [];
  const phases: { stage: number; start: number; st: Stage }[] = [{ stage: -1, start: 0, st: load.warmup }];
  const starts = stageStarts(load);
  load.stages.forEach((st, i) => phases.push({ stage: i, start: starts[i] as number, st }));
  let n = 0;
  for (const { stage, start, st } of phases) {
    if (st.rate <= 0) continue;
    let t = start;
    for (let k = 0; ; k++) {
      // Poisson: exponential gaps; constant: start + k / rate (k = 0, 1, …), computed without accumulating error.
      t = load.arrival === 'poisson' ? t - Math.log(1 - arrivals.next()) / st.rate : start + k / st.rate;
      if (t >= start + st.duration) break;
      let it: { group: number; item: number };
      if (cdf !== undefined) {
        const u = content.next();
        let g = 0;
        while (g < cdf.length - 1 && u > (cdf[g] as number)) g++;
        it = { group: g, item: content.int(scenario.promptsPerGroup) };
      } else {
        it = items[n % items.length] as { group: number; item: number };
      }
      const canonical = it.group * scenario.promptsPerGroup + it.item;
      const extra: { bypass?: number; cancelAfterS?: number } = {};
      if (bypassFraction > 0 && divergence.next() < bypassFraction) extra.bypass = pinned !== undefined ? (pinned[it.group] as number) : divergence.int(scenario.servers);
      if (cancelFraction > 0 && divergence.next() < cancelFraction) extra.cancelAfterS = cancelLo + (cancelHi - cancelLo) * divergence.next();
      out.push({
        index: n,
        atS: t,
        stage,
        group: it.group,
        item: it.item,
        questionTokens: scenario.multiTurn ? sampleLength(content, scenario.question) : (questionOf[canonical] as number),
        maxTokens: scenario.multiTurn ? sampleLength(content, scenario.output) : (outputOf[canonical] as number),
        ...extra,
      });
      n++;
    }
  }
  return out;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz     ';

/** `tokens` tokens of random text (4 ASCII characters per token under the sim's chars4 tokenizer). */
export function randomText(rng: SeededRandom, tokens: number): string {
  const chars = tokens * 4;
  let out = '';
  for (let i = 0; i < chars; i++) out += ALPHABET[rng.int(ALPHABET.length)];
  return out;
}

/**
 * Prompt texts, built lazily and memoised: one system prompt per group, one question per (group, item)
 * (multi-turn: one per turn, seeded by request index). Same seed, same texts.
 */
export class PromptBook {
  readonly #scenario: ScenarioSpec;
  readonly #seed: number;
  readonly #system = new Map<number, string>();
  readonly #question = new Map<number, string>();

  constructor(scenario: ScenarioSpec, seed: number) {
    this.#scenario = scenario;
    this.#seed = seed;
  }

  system(group: number): string {
    let s = this.#system.get(group);
    if (s === undefined) {
      s = randomText(new SeededRandom(this.#seed * 31 + group * 7919 + 1), this.#scenario.systemTokens);
      this.#system.set(group, s);
    }
    return s;
  }

  /** The question of a request: fixed per (group, item), or per request for multi-turn. */
  question(r: ScheduledRequest): string {
    const key = this.#scenario.multiTurn ? -1 - r.index : r.group * this.#scenario.promptsPerGroup + r.item;
    let q = this.#question.get(key);
    if (q === undefined) {
      q = randomText(new SeededRandom(this.#seed * 17 + key * 104729 + 3), r.questionTokens);
      if (!this.#scenario.multiTurn) this.#question.set(key, q);
    }
    return q;
  }

  /** Completions prompt: system prompt + question, or a bypassing request's own unique prompt (`bypassPromptTokens`). */
  prompt(r: ScheduledRequest): string {
    const own = this.#scenario.bypassPromptTokens;
    if (r.bypass !== undefined && own !== undefined) return randomText(new SeededRandom(this.#seed * 13 + r.index * 15485863 + 5), own);
    return this.system(r.group) + this.question(r);
  }
}

/**
 * A policy's config for a scenario: where the scenario's servers tokenize otherwise than the simulator's default,
 * a `token-producer` with `backend: sim` gets the same tokenizer (`sim.tokenizer`), as `backend: render` would get
 * the engine's own tokens. Other configs are returned unchanged.
 */
export function configForScenario(configText: string, scenario: ScenarioSpec): string {
  const tokenizer = scenario.serverOptions?.tokenizer;
  if (tokenizer === undefined || tokenizer === 'chars4') return configText;
  return configText.replace(/^(\s*)backend: sim\n/gm, (_m, indent: string) => `${indent}backend: sim\n${indent}sim: { tokenizer: ${tokenizer} }\n`);
}
