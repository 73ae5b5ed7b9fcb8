/**
 * Calibration of the sticky-until-saturated gate (`prefix-cache-affinity-filter`'s `peakPrefillThroughput`
 * and `maxTTFTPenaltyMs`) against one model server: `epp bench calibrate --url http://host:port [flags]`.
 *
 * It sends, one at a time (an idle server: no queueing in the figure), streaming completions with
 * `max_tokens: 1` whose prompts are fresh random text (a unique first block, so nothing is cached) at several
 * lengths, measures the time to the first token, and fits TTFT = a + tokens / R by least squares over the
 * per-length medians. R is the prefill throughput in tokens/s (`peakPrefillThroughput`); a the fixed cost.
 * Prompt token counts come from the server's `usage.prompt_tokens` (so any tokenizer works), else chars / 4.
 *
 * Flags: --url (required), --model (default: the first of GET /v1/models), --lengths 256,512,1024,2048,4096
 * (approximate tokens), --repeats 5, --ttft-target-s 2 (the SLO the penalty is derived from), --time-scale k
 * (a simulator started with --time-scale: reported figures are divided by k).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { median } from '../support/stats.ts';

export interface Fit {
  /** Fixed cost, seconds. */
  readonly interceptS: number;
  /** Prefill throughput, tokens per second (1 / slope); Infinity when the slope is not positive. */
  readonly tokensPerS: number;
  /** Coefficient of determination of the fit. */
  readonly r2: number;
}

/** Least-squares line through (tokens, ttftS) points. */
export function fitPrefill(points: readonly { tokens: number; ttftS: number }[]): Fit {
  const n = points.length;
  if (n < 2) throw new Error('need at least two prompt lengths to fit');
  const mx = points.reduce((s, p) => s + p.tokens, 0) / n;
  const my = points.reduce((s, p) => s + p.ttftS, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const p of points) {
    sxy += (p.tokens - mx) * (p.ttftS - my);
    sxx += (p.tokens - mx) ** 2;
    syy += (p.ttftS - my) ** 2;
  }
  if (sxx === 0) throw new Error('the prompt lengths must differ');
  const slope = sxy / sxx;
  return { interceptS: my - slope * mx, tokensPerS: slope > 0 ? 1 / slope : Infinity, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

/** The gate's parameters from a fit: R as measured; the penalty = half the TTFT target (the team's choice). */
export function gateParameters(fit: Fit, ttftTargetS: number): { peakPrefillThroughput: number; maxTTFTPenaltyMs: number } {
  return { peakPrefillThroughput: Math.round(fit.tokensPerS), maxTTFTPenaltyMs: Math.round((ttftTargetS * 1000) / 2) };
}

const WORDS = 'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango'.split(' ');

function randomPrompt(tokens: number, salt: number): string {
  let x = (salt * 2654435761) >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const parts: string[] = [`${salt}-${performance.now()}`];
  let chars = parts[0]?.length ?? 0;
  while (chars < tokens * 4) {
    const w = WORDS[Math.floor(next() * WORDS.length)] as string;
    parts.push(w);
    chars += w.length + 1;
  }
  return parts.join(' ').slice(0, tokens * 4);
}

function request(url: URL, path: string, body: string | undefined): Promise<{ firstMs: number; startMs: number; text: string }> {
  return new Promise((resolveReq, reject) => {
    const startMs = performance.now();
    let firstMs = 0;
    const req = http.request(
      { host: url.hostname, port: url.port, path, method: body === undefined ? 'GET' : 'POST', headers: body === undefined ? {} : { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (firstMs === 0 && c.includes('"text":"') && !c.includes('"text":""')) firstMs = performance.now();
          text += c;
        });
        res.on('end', () => (res.statusCode === 200 ? resolveReq({ firstMs: firstMs || performance.now(), startMs, text }) : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const opt = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) opt.set(String(argv[i]).replace(/^--/, ''), String(argv[i + 1]));
  const urlText = opt.get('url');
  if (urlText === undefined) throw new Error('--url http://host:port is required');
  const url = new URL(urlText);
  const timeScale = Number(opt.get('time-scale') ?? 1);
  const lengths = (opt.get('lengths') ?? '256,512,1024,2048,4096').split(',').map(Number);
  const repeats = Number(opt.get('repeats') ?? 5);
  const ttftTargetS = Number(opt.get('ttft-target-s') ?? 2);
  let model = opt.get('model');
  if (model === undefined) {
    const models = JSON.parse((await request(url, '/v1/models', undefined)).text) as { data: { id: string }[] };
    model = models.data[0]?.id ?? '';
  }
  const points: { tokens: number; ttftS: number }[] = [];
  let salt = 1;
  for (const len of lengths) {
    const ttfts: number[] = [];
    const tokens: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const body = JSON.stringify({ model, prompt: randomPrompt(len, salt++), max_tokens: 1, stream: true, stream_options: { include_usage: true } });
      const res = await request(url, '/v1/completions', body);
      ttfts.push((res.firstMs - res.startMs) / 1000 / timeScale);
      const m = /"prompt_tokens":(\d+)/.exec(res.text);
      tokens.push(m ? Number(m[1]) : len);
    }
    points.push({ tokens: median(tokens), ttftS: median(ttfts) });
    process.stderr.write(`${median(tokens)} prompt tokens: TTFT median ${(median(ttfts) * 1000).toFixed(1)} ms over ${repeats}\n`);
  }
  const fit = fitPrefill(points);
  const gate = gateParameters(fit, ttftTargetS);
  process.stdout.write(
    `prefill throughput ${Math.round(fit.tokensPerS)} tokens/s, fixed cost ${(fit.interceptS * 1000).toFixed(1)} ms (r² ${fit.r2.toFixed(3)})\n` +
      `prefix-cache-affinity-filter parameters for a ${ttftTargetS} s TTFT target:\n` +
      `  peakPrefillThroughput: ${gate.peakPrefillThroughput}\n  maxTTFTPenaltyMs: ${gate.maxTTFTPenaltyMs}\n`,
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.dirname, 'calibrate.ts')) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench calibrate failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
