/** Percentiles and per-stage summaries shared by the load generator, the runner and the tests. */
import { percentiles } from '../support/stats.ts';

export interface Quantiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** Nearest-rank percentiles of `values` (NaN when empty), through the benchmarks' shared helper. */
export function quantiles(values: ArrayLike<number>): Quantiles {
  const [p50, p90, p99] = percentiles(values, [50, 90, 99]) as [number, number, number];
  return { p50, p90, p99 };
}

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i] as number;
  return total / values.length;
}

/** Client-side results of one stage (simulated units: seconds, per simulated second). */
export interface ClientStageStats {
  readonly stage: number;
  readonly rate: number;
  readonly durationS: number;
  /** True when the stage was not run (an earlier stage overloaded the fleet). */
  readonly skipped: boolean;
  /** Requests of the policy's traffic sent in the stage, cancelled ones excluded. */
  readonly sent: number;
  /** Cancelled by the client before the first token (sp-cancel); not in `sent`. */
  readonly cancelled?: number;
  /** Sent straight to a server, bypassing the EPP (sp-bypass); not in `sent`. */
  readonly bypassed?: number;
  readonly ok: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly errorKinds: Readonly<Record<string, number>>;
  /** Requests completed within the stage window / its duration. */
  readonly achievedReqPerS: number;
  /** Output tokens of the requests completed within the stage window / its duration. */
  readonly outputTokPerS: number;
  readonly ttftS: Quantiles;
  readonly itlS: Quantiles;
  readonly ntpotS: Quantiles;
  readonly e2eS: Quantiles;
  /** Requests sent in this stage per serving pod (`x-inference-pod`). */
  readonly serverShare: Readonly<Record<string, number>>;
  /** Mean over 1 s windows of the load generator's event-loop delay p99, real ms. */
  readonly loadgenLagP99Ms: number;
}
