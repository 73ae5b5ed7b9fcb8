/**
 * Runs scheduling profiles (epp-spec §3.1): the profile handler picks profiles; each profile runs its filters
 * in order, then its weighted scorers (each score clamped to [0,1], times its weight, summed), then its
 * picker. Pure and synchronous over the candidates handed in.
 */
import type { Filter, Picker, ProfileHandler, ProfileRunResult, Scorer, SchedulingResult } from '../framework/scheduling.ts';
import type { Candidate, CycleState, ScoredCandidate, SchedulingProfile } from '../framework/scheduling.ts';
import type { InferenceRequest } from '../framework/request.ts';
import type { Plugin } from '../framework/plugin.ts';
import type { EppMetrics } from '../observability/metrics.ts';

export interface WeightedScorer {
  readonly scorer: Scorer;
  readonly weight: number;
}

export interface ProfileDefinition {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly scorers: readonly WeightedScorer[];
  readonly picker: Picker;
}

class Profile implements SchedulingProfile {
  constructor(
    readonly name: string,
    readonly filters: readonly Filter[],
    readonly scorers: readonly WeightedScorer[],
    readonly picker: Picker,
  ) {}
}

/** Thrown when scheduling cannot produce a target; the director maps it to ResourceExhausted. */
export class SchedulingError extends Error {
  override name = 'SchedulingError';
}

/**
 * A filter, scorer or picker threw. Not a "no target" outcome: the director answers 500 naming
 * the plugin (a broken plugin must not look like a saturated pool).
 */
export class PluginFailure extends Error {
  override name = 'PluginFailure';
  constructor(
    readonly extensionPoint: string,
    readonly plugin: Plugin,
    cause: unknown,
  ) {
    super(`${extensionPoint} plugin '${plugin.typedName.name}' (type ${plugin.typedName.type}) failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Runs `fn`; anything it throws becomes a PluginFailure naming the plugin. */
function guarded<T>(extensionPoint: string, plugin: Plugin, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SchedulingError || err instanceof PluginFailure) throw err;
    throw new PluginFailure(extensionPoint, plugin, err);
  }
}

type Timer = (extensionPoint: string, plugin: Plugin, startedMs: number) => void;

export class Scheduler {
  readonly #handler: ProfileHandler;
  readonly #profiles: ReadonlyMap<string, Profile>;
  readonly #metrics: EppMetrics | undefined;
  readonly #now: () => number;
  readonly #time: Timer;

  constructor(handler: ProfileHandler, profiles: readonly ProfileDefinition[], metrics?: EppMetrics, now: () => number = () => performance.now()) {
    this.#handler = handler;
    this.#profiles = new Map(profiles.map((p) => [p.name, new Profile(p.name, p.filters, p.scorers, p.picker)]));
    this.#metrics = metrics;
    this.#now = now;
    const hist = metrics?.pluginDuration;
    this.#time = hist
      ? (ep, plugin, started) =>
          hist.observe(
            { extension_point: ep, plugin_type: plugin.typedName.type, plugin_name: plugin.typedName.name },
            (this.#now() - started) / 1000,
          )
      : () => {};
  }

  get profileNames(): readonly string[] {
    return [...this.#profiles.keys()];
  }

  /** Schedules one request over `candidates`. Throws SchedulingError when no target can be chosen. */
  schedule(request: InferenceRequest, candidates: readonly Candidate[]): SchedulingResult {
    const started = this.#now();
    const cycle: CycleState = new Map();
    const results = new Map<string, ProfileRunResult | null>();
    try {
      for (;;) {
        const t0 = this.#now();
        const next = this.#handler.pickProfiles(cycle, request, this.#profiles, results);
        this.#time('ProfilePicker', this.#handler, t0);
        if (next.length === 0) break;
        for (const p of next) {
          const profile = this.#profiles.get(p.name);
          if (!profile) throw new SchedulingError(`profile handler picked unknown profile '${p.name}'`);
          results.set(profile.name, this.#runProfile(profile, cycle, request, candidates));
        }
      }
      if (results.size === 0) throw new SchedulingError(`failed to run any scheduler profile for request ${request.requestId}`);
      const t1 = this.#now();
      // A profile handler reports "no target" by throwing (upstream returns an error): that stays a 429.
      const result = this.#handler.processResults(cycle, request, results);
      this.#time('ProcessProfilesResults', this.#handler, t1);
      this.#recordAttempt(request, result);
      return result;
    } catch (err) {
      if (err instanceof PluginFailure) {
        const tn = err.plugin.typedName;
        this.#metrics?.pluginErrors.inc({ extension_point: err.extensionPoint, plugin_type: tn.type, plugin_name: tn.name });
      }
      this.#metrics?.schedulerAttemptsTotal.inc({ status: 'failure', target_model_name: this.#metrics.modelLabel(request.targetModel), pod_name: '', namespace: '', port: '' });
      throw err instanceof SchedulingError || err instanceof PluginFailure ? err : new SchedulingError((err as Error).message ?? String(err), { cause: err });
    } finally {
      this.#metrics?.schedulerE2eDuration.observe((this.#now() - started) / 1000);
    }
  }

  #runProfile(profile: Profile, cycle: CycleState, request: InferenceRequest, input: readonly Candidate[]): ProfileRunResult | null {
    let candidates = input;
    for (const f of profile.filters) {
      const t = this.#now();
      const current = candidates;
      candidates = guarded('Filter', f, () => f.filter(cycle, request, current));
      this.#time('Filter', f, t);
      if (candidates.length === 0) return null;
    }
    if (candidates.length === 0) return null;
    const n = candidates.length;
    const totals = new Float64Array(n);
    for (const { scorer, weight } of profile.scorers) {
      const t = this.#now();
      const scores = guarded('Scorer', scorer, () => scorer.score(cycle, request, candidates));
      this.#time('Scorer', scorer, t);
      const m = Math.min(n, scores.length);
      for (let i = 0; i < m; i++) {
        const s = scores[i] as number;
        // Clamp to [0,1]; NaN (missing) contributes nothing.
        const clamped = s > 1 ? 1 : s > 0 ? s : 0;
        totals[i] = (totals[i] as number) + clamped * weight;
      }
    }
    const scored: ScoredCandidate[] = new Array(n);
    for (let i = 0; i < n; i++) scored[i] = { candidate: candidates[i] as Candidate, score: totals[i] as number };
    const t = this.#now();
    const result = guarded('Picker', profile.picker, () => profile.picker.pick(cycle, scored));
    this.#time('Picker', profile.picker, t);
    return result.targets.length === 0 ? null : result;
  }

  #recordAttempt(request: InferenceRequest, result: SchedulingResult): void {
    const m = this.#metrics;
    if (!m) return;
    const primary = result.profileResults.get(result.primaryProfileName)?.targets[0]?.endpoint.metadata;
    m.schedulerAttemptsTotal.inc({
      status: 'success',
      target_model_name: m.modelLabel(request.targetModel),
      pod_name: primary?.podName ?? '',
      namespace: primary?.namespace ?? '',
      port: primary ? String(primary.port) : '',
    });
  }
}

/** The primary profile's targets, primary first. Throws when scheduling produced none. */
export function primaryTargets(result: SchedulingResult): readonly Candidate[] {
  const r = result.profileResults.get(result.primaryProfileName);
  if (!r || r.targets.length === 0) throw new SchedulingError('results must be greater than zero');
  return r.targets;
}
