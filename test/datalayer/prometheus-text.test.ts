import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  FamilyMemo,
  parsePrometheusText,
  parseSelectedFamilies,
  parseSelectedFamiliesInBuffer,
  PrometheusParseError,
} from '../../src/plugins/datalayer/source/metrics-data-source/prometheus-text.ts';
import type { PrometheusFamilies } from '../../src/framework/datasource.ts';

const FIXTURES = new URL('../fixtures/metrics/', import.meta.url);
const ENGINES = ['vllm', 'sglang', 'trtllm-serve', 'triton-tensorrt-llm', 'tgi'] as const;

function toJson(f: PrometheusFamilies): unknown {
  return [...f.values()].map((fam) => ({
    name: fam.name,
    type: fam.type,
    help: fam.help,
    samples: fam.samples.map((s) => [s.name, s.labels, Number.isFinite(s.value) ? s.value : String(s.value), s.timestampMs ?? null]),
  }));
}

for (const engine of ENGINES) {
  test(`golden: ${engine} exposition parses to the recorded families`, () => {
    const text = readFileSync(new URL(`${engine}.prom`, FIXTURES), 'utf8');
    const goldenUrl = new URL(`${engine}.families.json`, FIXTURES);
    const actual = toJson(parsePrometheusText(text));
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenUrl, `${JSON.stringify(actual, null, 1)}\n`);
    const golden: unknown = JSON.parse(readFileSync(goldenUrl, 'utf8'));
    assert.deepEqual(actual, golden);
  });

  test(`selective parse of ${engine} equals the full parse restricted to the wanted families`, () => {
    const text = readFileSync(new URL(`${engine}.prom`, FIXTURES), 'utf8');
    const full = parsePrometheusText(text);
    const names = [...full.keys()];
    // Every family on its own, and all at once, plus one that is absent.
    for (const wanted of [...names.map((n) => [n]), [...names, 'absent_family']]) {
      const sel = parseSelectedFamilies(text, new Set(wanted));
      for (const n of wanted) {
        const f = full.get(n);
        const s = sel.get(n);
        if (f === undefined) {
          assert.equal(s, undefined, n);
          continue;
        }
        assert.ok(s, `selective parse found ${n}`);
        assert.equal(s.type, f.type, n);
        assert.deepEqual(s.samples, f.samples, n);
      }
    }
  });
}

test('vllm fixture is realistic: ~200 series', () => {
  const text = readFileSync(new URL('vllm.prom', FIXTURES), 'utf8');
  let series = 0;
  for (const f of parsePrometheusText(text).values()) series += f.samples.length;
  assert.ok(series >= 190 && series <= 230, `series=${series}`);
});

test('histogram samples group under their TYPE family; counters keep _total; _created is its own gauge', () => {
  const f = parsePrometheusText(
    [
      '# HELP req_latency_seconds Latency.',
      '# TYPE req_latency_seconds histogram',
      'req_latency_seconds_bucket{le="0.1"} 1',
      'req_latency_seconds_bucket{le="+Inf"} 3',
      'req_latency_seconds_sum 0.7',
      'req_latency_seconds_count 3',
      '# TYPE req_total counter',
      'req_total 5',
      '# TYPE req_created gauge',
      'req_created 1.7e9',
      'untyped_metric{a="b"} 1',
    ].join('\n'),
  );
  assert.deepEqual([...f.keys()], ['req_latency_seconds', 'req_total', 'req_created', 'untyped_metric']);
  const h = f.get('req_latency_seconds');
  assert.equal(h?.type, 'histogram');
  assert.equal(h?.help, 'Latency.');
  assert.deepEqual(h?.samples.map((s) => s.name), ['req_latency_seconds_bucket', 'req_latency_seconds_bucket', 'req_latency_seconds_sum', 'req_latency_seconds_count']);
  assert.equal(h?.samples[1]?.value, 3);
  assert.equal(h?.samples[1]?.labels.le, '+Inf');
  assert.equal(f.get('untyped_metric')?.type, 'untyped');
});

test('values: floats, exponents, +Inf/-Inf/NaN; timestamps; escapes; blanks and CRLF', () => {
  const f = parsePrometheusText(
    'a 1.5e+3\r\nb +Inf\nc -Inf\nd NaN\ne{x="q\\"uo\\\\te\\nnl"} 2 1700000000000\n  f\t{ y = "1" , } \t 7  \n# EOF\n',
  );
  assert.equal(f.get('a')?.samples[0]?.value, 1500);
  assert.equal(f.get('b')?.samples[0]?.value, Infinity);
  assert.equal(f.get('c')?.samples[0]?.value, -Infinity);
  assert.ok(Number.isNaN(f.get('d')?.samples[0]?.value));
  assert.equal(f.get('e')?.samples[0]?.labels.x, 'q"uo\\te\nnl');
  assert.equal(f.get('e')?.samples[0]?.timestampMs, 1700000000000);
  assert.deepEqual(f.get('f')?.samples[0]?.labels, { y: '1' });
  assert.equal(f.get('f')?.samples[0]?.value, 7);
});

const BAD: ReadonlyArray<readonly [string, string, RegExp]> = [
  ['html error page', '<html><body>502 Bad Gateway</body></html>', /line 2: expected a metric name/],
  ['json', '{"error":"boom"}', /line 2/],
  ['missing value', 'metric_a{a="b"}', /no value/],
  ['non-numeric value', 'metric_a 12abc', /value '12abc' is not a number/],
  ['unterminated labels', 'metric_a{a="b" 1', /expected ',' or '}'/],
  ['unquoted label value', 'metric_a{a=b} 1', /expected '"'/],
  ['duplicate label', 'metric_a{a="1",a="2"} 1', /duplicate label 'a'/],
  ['bad escape', 'metric_a{a="\\q"} 1', /invalid escape/],
  ['fractional timestamp', 'metric_a 1 12.5', /timestamp must be an integer/],
  ['trailing junk', 'metric_a 1 2 3', /unexpected text after timestamp/],
  ['unknown type', '# TYPE metric_a bogus', /unknown metric type 'bogus'/],
  ['bad char after name', 'metric-a 1', /invalid character '-'/],
];
for (const [what, text, re] of BAD) {
  test(`rejects ${what}`, () => {
    assert.throws(() => parsePrometheusText(`ok_metric 1\n${text}\n`), (err: unknown) => {
      assert.ok(err instanceof PrometheusParseError);
      assert.equal(err.line, 2);
      assert.match(err.message, re);
      return true;
    });
  });
}

test('selective parse refuses bodies that are not expositions, and malformed wanted lines', () => {
  const wanted = new Set(['vllm:num_requests_waiting']);
  assert.throws(() => parseSelectedFamilies('<!DOCTYPE html><html>oops</html>', wanted), /not a Prometheus exposition/);
  assert.throws(() => parseSelectedFamilies('\u0000\u0001binary', wanted), /not a Prometheus exposition/);
  assert.throws(
    () => parseSelectedFamilies('# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{a="b"} zz\n', wanted),
    (e: unknown) => e instanceof PrometheusParseError && e.line === 2,
  );
  // An unrelated malformed line is not looked at (documented trade-off); the wanted family still parses.
  const ok = parseSelectedFamilies('junk_metric 12abc\n# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 4\n', wanted);
  assert.equal(ok.get('vllm:num_requests_waiting')?.samples[0]?.value, 4);
});

test('selective parse: a family name that prefixes another does not match it', () => {
  const text = '# TYPE foo_total counter\nfoo_total 9\n# TYPE foo gauge\nfoo 1\nfoo_bar 2\n';
  const sel = parseSelectedFamilies(text, new Set(['foo']));
  assert.deepEqual(sel.get('foo')?.samples.map((s) => [s.name, s.value]), [['foo', 1]]);
});

test('selective parse finds families without a TYPE line', () => {
  const sel = parseSelectedFamilies('other 1\nno_type_metric{x="1"} 5\nno_type_metric{x="2"} 6\nother2 1\n', new Set(['no_type_metric']));
  assert.deepEqual(sel.get('no_type_metric')?.samples.map((s) => s.value), [5, 6]);
});

// Property: for any well-formed exposition we render, both parsers recover exactly what was rendered.
const nameArb = fc.stringMatching(/^[a-z_][a-z0-9_]{0,12}$/);
const labelValueArb = fc.string({ maxLength: 8 });
const familyArb = fc.record({
  name: nameArb,
  type: fc.constantFrom('gauge', 'counter', 'untyped'),
  samples: fc.array(
    fc.record({
      labels: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/), labelValueArb, { maxKeys: 3, noNullPrototype: true }),
      value: fc.oneof(fc.integer({ min: -1e6, max: 1e6 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
      ts: fc.option(fc.integer({ min: 0, max: 2e12 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
});

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

test('property: render → parse round-trips, full and selective', () => {
  fc.assert(
    fc.property(fc.uniqueArray(familyArb, { selector: (f) => f.name, maxLength: 6 }), (fams) => {
      // Keep names unambiguous: no family may be another's name plus a suffix of its type.
      const names = new Set(fams.map((f) => f.name));
      for (const n of names) for (const m of names) if (n !== m && m.startsWith(n)) return;
      const lines: string[] = [];
      for (const f of fams) {
        lines.push(`# HELP ${f.name} help text`, `# TYPE ${f.name} ${f.type}`);
        for (const s of f.samples) {
          const ls = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
          lines.push(`${f.name}${ls ? `{${ls}}` : ''} ${String(s.value)}${s.ts !== undefined ? ` ${s.ts}` : ''}`);
        }
      }
      const text = lines.join('\n');
      const full = parsePrometheusText(text);
      const sel = parseSelectedFamilies(text, names);
      for (const f of fams) {
        for (const parsed of [full.get(f.name), sel.get(f.name)]) {
          assert.ok(parsed);
          assert.equal(parsed.type, f.type);
          assert.deepEqual(
            parsed.samples.map((s) => [s.labels, s.value, s.timestampMs]),
            f.samples.map((s) => [s.labels, Object.is(s.value, -0) ? 0 : s.value, s.ts]),
          );
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('byte-level selective parse: a body inside a larger buffer, UTF-8 values, line numbers of the body', () => {
  const text = readFileSync(new URL('vllm.prom', FIXTURES), 'utf8').replace('meta-llama/Llama-3.1-8B-Instruct', 'modèle-模型-✓');
  const wanted = new Set(['vllm:num_requests_running', 'vllm:cache_config_info', 'vllm:lora_requests_info', 'absent']);
  const body = Buffer.from(text, 'utf8');
  // Junk before `start` and after `end` (including what looks like wanted lines) must be ignored.
  const junk = Buffer.from('# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 999\n');
  const big = Buffer.concat([junk, body, junk]);
  const sel = parseSelectedFamiliesInBuffer(big, junk.length, junk.length + body.length, wanted);
  const full = parsePrometheusText(text);
  assert.deepEqual([...sel.keys()].sort(), ['vllm:cache_config_info', 'vllm:lora_requests_info', 'vllm:num_requests_running']);
  for (const [name, f] of sel) assert.deepEqual(f.samples, full.get(name)?.samples, name);
  assert.equal(sel.get('vllm:num_requests_running')?.samples[0]?.labels.model_name, 'modèle-模型-✓');

  const bad = Buffer.concat([junk, Buffer.from('# HELP x y\n# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{a="b"} zz\n')]);
  assert.throws(
    () => parseSelectedFamiliesInBuffer(bad, junk.length, bad.length, new Set(['vllm:num_requests_waiting'])),
    (e: unknown) => e instanceof PrometheusParseError && e.line === 3 && /value 'zz' is not a number/.test(e.message),
  );
  assert.throws(() => parseSelectedFamiliesInBuffer(Buffer.from('xx<html>'), 2, 8, wanted), /not a Prometheus exposition \(starts with '<html>'\)/);
});

test('family memo: unchanged regions reuse the previous family objects; results always equal a fresh parse', () => {
  const base = readFileSync(new URL('vllm.prom', FIXTURES), 'utf8');
  const wanted = new Set(['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:cache_config_info', 'no_type_metric']);
  const variant = (running: number, extra = ''): string =>
    base.replace(/^(vllm:num_requests_running\{[^}]*\}) \S+$/m, `$1 ${running}.0`) + `no_type_metric{x="1"} 5${extra}\n`;
  const memo = new FamilyMemo();
  let prev = parseSelectedFamiliesInBuffer(Buffer.from(variant(1)), 0, Buffer.byteLength(variant(1)), wanted, memo);
  assert.deepEqual([memo.hits, memo.misses], [0, 4]);
  for (const [running, extra] of [[1, ''], [2, ''], [2, '0'], [3, '0']] as const) {
    const text = variant(running, extra);
    const buf = Buffer.from(`padding${text}`);
    const h0 = memo.hits;
    const got = parseSelectedFamiliesInBuffer(buf, 7, buf.length, wanted, memo);
    const fresh = parseSelectedFamilies(text, wanted);
    assert.deepEqual(toJson(got), toJson(fresh));
    assert.equal(got.get('vllm:num_requests_running')?.samples[0]?.value, running);
    // cache_config_info and num_requests_waiting never change here: same objects as last time.
    assert.equal(got.get('vllm:cache_config_info'), prev.get('vllm:cache_config_info'));
    assert.equal(got.get('vllm:num_requests_waiting'), prev.get('vllm:num_requests_waiting'));
    assert.ok(memo.hits - h0 >= 2);
    prev = got;
  }
  // A different wanted set starts over; a malformed region is not remembered.
  const other = new Set(['vllm:num_requests_running']);
  parseSelectedFamiliesInBuffer(Buffer.from(variant(3)), 0, Buffer.byteLength(variant(3)), other, memo);
  assert.equal(memo.wanted, other);
  const broken = variant(3).replace(/^(vllm:num_requests_running\{[^}]*\}) \S+$/m, '$1 nope');
  for (let i = 0; i < 2; i++) {
    assert.throws(() => parseSelectedFamiliesInBuffer(Buffer.from(broken), 0, Buffer.byteLength(broken), other, memo), PrometheusParseError);
  }
});
