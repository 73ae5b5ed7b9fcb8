/**
 * The metrics reference of docs/operations.md, generated from a fresh `EppMetrics` registry (so the document
 * cannot drift from the code: test/observability/metrics-doc.test.ts compares them).
 */
import { EppMetrics } from '../../src/observability/metrics.ts';

export const METRICS_DOC_BEGIN = '<!-- metrics-reference:begin (generated from src/observability/metrics.ts; do not edit by hand) -->';
export const METRICS_DOC_END = '<!-- metrics-reference:end -->';

/** What prom-client metric objects carry at run time (its typings do not expose these fields). */
interface MetricShape {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly labelNames?: readonly string[];
  readonly upperBounds?: readonly number[];
}

function buckets(b: readonly number[] | undefined): string {
  if (!b || b.length === 0) return '';
  if (b.length <= 6) return b.join(', ');
  return `${b[0]}, ${b[1]}, ${b[2]} … ${b[b.length - 1]} (${b.length})`;
}

/** Markdown table: one row per metric, in registration order. */
export function metricsReferenceTable(metrics: EppMetrics = new EppMetrics()): string {
  const rows = ['| Metric | Type | Labels | Buckets | Description |', '|---|---|---|---|---|'];
  for (const m of metrics.registry.getMetricsAsArray() as unknown as MetricShape[]) {
    const labels = (m.labelNames ?? []).map((l) => `\`${l}\``).join(', ') || '—';
    const help = m.help.replace(/\|/g, '\\|');
    rows.push(`| \`${m.name}\` | ${m.type} | ${labels} | ${buckets(m.upperBounds)} | ${help} |`);
  }
  return rows.join('\n');
}

/** Replaces the generated block of `doc` (between the markers) with the current table. */
export function withMetricsReference(doc: string, table: string = metricsReferenceTable()): string {
  const start = doc.indexOf(METRICS_DOC_BEGIN);
  const end = doc.indexOf(METRICS_DOC_END);
  if (start < 0 || end < start) throw new Error(`markers ${METRICS_DOC_BEGIN} … ${METRICS_DOC_END} not found`);
  return `${doc.slice(0, start + METRICS_DOC_BEGIN.length)}\n${table}\n${doc.slice(end)}`;
}
