// Event-loop health of the simulator process (sim-spec §6.3 "self-check"): a benchmark stage during which the
// process lagged is measuring the machine, not the fleet. One monitor per process, shared by every server.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import type { LagSnapshot } from './metrics/server-metrics.ts';

const NS_PER_S = 1e9;

/** Samples event-loop delay and rolls the figures over every `windowMs` (real time). */
export class EventLoopLagMonitor {
  readonly #histogram: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  readonly #timerLatenessMs: () => number;
  #last: LagSnapshot = { p99Seconds: 0, maxSeconds: 0, timerLatenessSeconds: 0 };

  /** @param timerLatenessMs returns and resets the largest engine-timer lateness (simulated ms) */
  constructor(windowMs = 1000, timerLatenessMs: () => number = () => 0) {
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    this.#timerLatenessMs = timerLatenessMs;
    this.#timer = setInterval(() => this.#roll(), windowMs);
    this.#timer.unref();
  }

  /** Figures of the last complete window. */
  snapshot(): LagSnapshot {
    return this.#last;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }

  #roll(): void {
    const h = this.#histogram;
    // The histogram includes the sampling resolution itself; subtract it so an idle loop reads ~0.
    const resolutionNs = 10 * 1e6;
    this.#last = {
      p99Seconds: h.count > 0 ? Math.max(0, h.percentile(99) - resolutionNs) / NS_PER_S : 0,
      maxSeconds: h.count > 0 ? Math.max(0, h.max - resolutionNs) / NS_PER_S : 0,
      timerLatenessSeconds: this.#timerLatenessMs() / 1000,
    };
    h.reset();
  }
}
