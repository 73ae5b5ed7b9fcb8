// Shared helpers of the simulator tests: a server on a virtual clock, a request driver, a strict
// Prometheus text-format parser.

import { VirtualClock } from '../../src/sim/clock.ts';
import type { SimServerOptions } from '../../src/sim/config.ts';
import type { FinishReason, Sequence } from '../../src/sim/sequence.ts';
import { SimServer } from '../../src/sim/sim-server.ts';

export interface VirtualServer {
  readonly clock: VirtualClock;
  readonly server: SimServer;
}

/** A server on a virtual clock with step jitter off unless given. */
export function virtualServer(options: Partial<SimServerOptions> = {}): VirtualServer {
  const clock = new VirtualClock();
  const server = new SimServer({ id: 'test-0', clock, options: { stepJitter: 0, ...options }, realNowMs: () => clock.nowMs() });
  return { clock, server };
}

export interface Tracked {
  readonly sequence: Sequence;
  readonly arrivalMs: number;
  /** Delivery time of each token, by index. */
  readonly tokenTimesMs: number[];
  /** Indices in delivery order (to check ordering). */
  readonly indices: number[];
  finishReason: FinishReason | null;
  finishCalls: number;
}

/** Submits one completion prompt; the returned record fills in as the clock advances. */
export function submit(server: SimServer, prompt: string, maxTokens: number, extra: { model?: string } = {}): Tracked {
  const partial = { tokenTimesMs: [] as number[], indices: [] as number[], finishReason: null as FinishReason | null, finishCalls: 0 };
  const admission = server.admit(
    { model: extra.model ?? server.baseModel, prompts: [{ text: prompt, tokenIds: null, echoText: prompt }], n: 1, maxTokens, ignoreEos: true, cacheSalt: undefined },
    () => ({
      onToken(index, atMs) {
        partial.tokenTimesMs[index] = atMs;
        partial.indices.push(index);
      },
      onFinish(_seq, reason) {
        partial.finishReason = reason;
        partial.finishCalls++;
      },
    }),
  );
  const sequence = admission.choices[0]?.sequence;
  if (sequence === undefined) throw new Error('no sequence admitted');
  return Object.assign(partial, { sequence, arrivalMs: server.clock.nowMs() });
}

export function ttftMs(t: Tracked): number {
  return (t.tokenTimesMs[0] as number) - t.arrivalMs;
}

/** Deterministic distinct text of exactly `tokens` chars4 tokens (4 ASCII chars each). */
export function textOfTokens(tokens: number, tag: string): string {
  let out = '';
  for (let i = 0; out.length < tokens * 4; i++) out += `${tag}:${i};`;
  return out.slice(0, tokens * 4);
}

// ---- Prometheus text format 0.0.4 ----

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromFamily {
  readonly type: string;
  readonly help: string | null;
  readonly samples: PromSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, line: number): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value ${text}`);
  return Number(text);
}

function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 0;
  if (text[i] !== '{') return { labels, rest: text };
  i++;
  while (text[i] !== '}') {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without =`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name ${name}`);
    if (name in labels) throw new Error(`line ${line}: duplicate label ${name}`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = text[j + 1];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else throw new Error(`line ${line}: bad escape \\${n ?? ''}`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`line ${line}: expected , or } after label`);
  }
  return { labels, rest: text.slice(i + 1) };
}

/**
 * Parses exposition text strictly: every sample must follow the `# TYPE` of its family, series are unique,
 * histogram buckets are cumulative and end with `+Inf` equal to `_count`. Throws on any violation.
 */
export function parsePrometheusText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const helps = new Map<string, string>();
  const seen = new Set<string>();
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (m === null) return; // plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`line ${line}: second HELP for ${name}`);
        helps.set(name, rest);
      } else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`line ${line}: bad type ${rest}`);
        if (families.has(name)) throw new Error(`line ${line}: second TYPE for ${name}`);
        families.set(name, { type: rest, help: helps.get(name) ?? null, samples: [] });
      }
      return;
    }
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`line ${line}: no metric name`);
    const name = raw.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
    const { labels, rest } = parseLabels(raw.slice(nameEnd), line);
    const parts = rest.trim().split(/\s+/);
    if (parts.length < 1 || parts.length > 2 || parts[0] === '') throw new Error(`line ${line}: expected value [timestamp]`);
    const value = parseValue(parts[0] as string, line);
    const family =
      families.get(name) ??
      [...families.entries()].find(([f, fam]) => fam.type === 'histogram' && [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(name))?.[1];
    if (family === undefined) throw new Error(`line ${line}: sample ${name} has no preceding TYPE`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`line ${line}: duplicate series ${key}`);
    seen.add(key);
    family.samples.push({ name, labels, value });
  });
  for (const [name, fam] of families) if (fam.type === 'histogram') checkHistogram(name, fam);
  return families;
}

function checkHistogram(name: string, fam: PromFamily): void {
  const groups = new Map<string, PromSample[]>();
  for (const s of fam.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const list = groups.get(key) ?? [];
    list.push(s);
    groups.set(key, list);
  }
  for (const samples of groups.values()) {
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    const count = samples.find((s) => s.name === `${name}_count`);
    if (count === undefined || samples.find((s) => s.name === `${name}_sum`) === undefined) throw new Error(`${name}: missing _sum/_count`);
    let previousLe = Number.NEGATIVE_INFINITY;
    let previous = 0;
    for (const b of buckets) {
      const le = parseValue(b.labels['le'] ?? '', 0);
      if (!(le > previousLe)) throw new Error(`${name}: le not increasing`);
      if (b.value < previous) throw new Error(`${name}: buckets not cumulative`);
      previousLe = le;
      previous = b.value;
    }
    if (previousLe !== Number.POSITIVE_INFINITY) throw new Error(`${name}: last bucket is not +Inf`);
    if (previous !== count.value) throw new Error(`${name}: +Inf bucket ${previous} != count ${count.value}`);
  }
}

/** Value of the single series of `family` matching `labels` (subset match); throws when absent. */
export function sampleValue(families: Map<string, PromFamily>, family: string, labels: Record<string, string> = {}, sampleName = family): number {
  const fam = families.get(family);
  if (fam === undefined) throw new Error(`no family ${family}`);
  const s = fam.samples.find((x) => x.name === sampleName && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  if (s === undefined) throw new Error(`no sample ${sampleName} ${JSON.stringify(labels)}`);
  return s.value;
}
