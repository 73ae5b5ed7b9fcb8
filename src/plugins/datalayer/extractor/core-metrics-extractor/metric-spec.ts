/**
 * Metric specs: the PromQL instant-vector-selector subset upstream accepts in `engineConfigs`
 * (`name`, `name{label=value,...}`, `name{label="value"}`), and series selection over parsed families.
 *
 * Upstream rules kept (epp-spec §5.3): unquoted label values are accepted as if quoted; only equality matchers
 * are kept (`!=`, `=~`, `!~` are accepted and ignored, as upstream's selector parser drops them); matchers on
 * names starting with `__` are ignored; an empty spec disables the metric.
 */
import type { PrometheusFamilies, PrometheusFamily, PrometheusSample } from '../../../../framework/datasource.ts';

export interface MetricSpec {
  /** Family name. */
  readonly name: string;
  /** Required label values (equality). */
  readonly labels: Readonly<Record<string, string>>;
  /** The spec as written, for messages. */
  readonly source: string;
  /**
   * Errors returned when the family or a matching series is absent. Built once per spec: these fire on every
   * scrape of an endpoint that lacks the metric, so they must not allocate (or capture a stack) each time.
   */
  readonly familyMissing: Error;
  readonly seriesMissing: Error;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Parses a spec; returns undefined for an empty (disabled) spec; throws an Error with the reason otherwise. */
export function parseMetricSpec(spec: string): MetricSpec | undefined {
  const s = spec.trim();
  if (s === '') return undefined;
  const brace = s.indexOf('{');
  const name = (brace === -1 ? s : s.slice(0, brace)).trim();
  if (!NAME_RE.test(name)) throw new Error(`invalid metric name '${name}' in spec '${spec}'`);
  const labels: Record<string, string> = {};
  if (brace !== -1) {
    if (!s.endsWith('}')) throw new Error(`spec '${spec}' is missing the closing '}'`);
    const body = s.slice(brace + 1, -1);
    for (const matcher of splitMatchers(body, spec)) {
      const m = /^([^=!~\s]+)\s*(=~|!~|!=|=)\s*(.*)$/.exec(matcher);
      if (m === null) throw new Error(`invalid label matcher '${matcher}' in spec '${spec}'`);
      const [, label = '', op, rawValue = ''] = m;
      if (!LABEL_RE.test(label)) throw new Error(`invalid label name '${label}' in spec '${spec}'`);
      const value = unquote(rawValue.trim(), spec);
      if (op !== '=' || label.startsWith('__')) continue;
      labels[label] = value;
    }
  }
  const labelText = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  return {
    name,
    labels,
    source: spec,
    familyMissing: new Error(`metric family "${name}" not found`),
    seriesMissing: new Error(`no matching metric found for "${name}" with labels {${labelText}}`),
  };
}

function splitMatchers(body: string, spec: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '\\' && quoted) {
      cur += ch + (body[i + 1] ?? '');
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      if (cur.trim() !== '') out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (quoted) throw new Error(`unterminated quote in spec '${spec}'`);
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

function unquote(v: string, spec: string): string {
  if (v.startsWith('"')) {
    if (v.length < 2 || !v.endsWith('"')) throw new Error(`unterminated quote in spec '${spec}'`);
    return v.slice(1, -1).replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
  }
  if (v === '' || /[\s",{}]/.test(v)) throw new Error(`invalid label value '${v}' in spec '${spec}'`);
  return v;
}

/** True when `sample` is a plain value sample of `family` (not a histogram/summary component). */
function isValueSample(family: PrometheusFamily, sample: PrometheusSample): boolean {
  return sample.name === family.name || (family.type === 'counter' && sample.name === `${family.name}_total`);
}

function labelsMatch(spec: MetricSpec, sample: PrometheusSample): boolean {
  for (const k in spec.labels) {
    if (sample.labels[k] !== spec.labels[k]) return false;
  }
  return true;
}

/**
 * Upstream series selection: among the family's series whose labels include all spec labels, the one with the
 * largest sample timestamp (a missing timestamp counts as 0; the first wins ties).
 */
export function latestSample(spec: MetricSpec, families: PrometheusFamilies): PrometheusSample | Error {
  const family = families.get(spec.name);
  if (family === undefined || family.samples.length === 0) return spec.familyMissing;
  let best: PrometheusSample | undefined;
  let bestTs = -Infinity;
  for (const s of family.samples) {
    if (!isValueSample(family, s) || !labelsMatch(spec, s)) continue;
    const ts = s.timestampMs ?? 0;
    if (ts > bestTs) {
      bestTs = ts;
      best = s;
    }
  }
  return best ?? spec.seriesMissing;
}

/** LoRA info selection: the matching series with the largest value (vLLM sets it to the series' creation time). */
export function largestValueSample(spec: MetricSpec, families: PrometheusFamilies): PrometheusSample | Error {
  const family = families.get(spec.name);
  if (family === undefined || family.samples.length === 0) return spec.familyMissing;
  let best: PrometheusSample | undefined;
  for (const s of family.samples) {
    if (!isValueSample(family, s) || !labelsMatch(spec, s)) continue;
    if (best === undefined || s.value > best.value) best = s;
  }
  return best ?? spec.seriesMissing;
}
