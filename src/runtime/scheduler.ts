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

/** Observes one plugin call's duration (from `startedMs`); resolved once per plugin and extension point. */
type Timer = (startedMs: number) => void;

class Profile implements SchedulingProfile {
  readonly filterTimers: readonly Timer[];
  readonly scorerTimers: readonly Timer[];
  readonly pickerTimer: Timer;
  constructor(
    readonly name: string,
    readonly filters: readonly Filter[],
    readonly scorers: readonly WeightedScorer[],
    readonly picker: Picker,
    timer: (extensionPoint: string, plugin: Plugin) => Timer,
  ) {
    this.filterTimers = filters.map((f) => timer('Filter', f));
    this.scorerTimers = scorers.map((s) => timer('Scorer', s.scorer));
    this.pickerTimer = timer('Picker', picker);
  }
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

/** What a plugin threw, as thrown on: a PluginFailure naming the plugin (scheduling's own errors pass as they are). */
function failure(extensionPoint: string, plugin: Plugin, err: unknown): Error {
  if (err instanceof SchedulingError || err instanceof PluginFailure) return err;
  return new PluginFailure(extensionPoint, plugin, err);
}

const NO_TIMER: Timer = () => {};

export class Scheduler {
  readonly #handler: ProfileHandler;
  readonly #profiles: ReadonlyMap<string, Profile>;
  readonly #metrics: EppMetrics | undefined;
  readonly #now: () => number;
  readonly #pickProfilesTimer: Timer;
  readonly #processResultsTimer: Timer;

  constructor(handler: ProfileHandler, profiles: readonly ProfileDefinition[], metrics?: EppMetrics, now: () => number = () => performance.now()) {
    this.#handler = handler;
    this.#metrics = metrics;
    this.#now = now;
    // Each (extension point, plugin) duration child is resolved here, once: an observation is then an add.
    const hist = metrics?.pluginDuration;
    const timer = (ep: string, plugin: Plugin): Timer => {
      if (hist === undefined) return NO_TIMER;
      const child = hist.labels({ extension_point: ep, plugin_type: plugin.typedName.type, plugin_name: plugin.typedName.name });
      return (started) => child.observe((this.#now() - started) / 1000);
    };
    this.#profiles = new Map(profiles.map((p) => [p.name, new Profile(p.name, p.filters, p.scorers, p.picker, timer)]));
    this.#pickProfilesTimer = timer('ProfilePicker', handler);
    this.#processResultsTimer = timer('ProcessProfilesResults', handler);
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
        this.#pickProfilesTimer(t0);
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
      this.#processResultsTimer(t1);
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
    const filters = profile.filters;
    for (let i = 0; i < filters.length; i++) {
      const f = filters[i] as Filter;
      const t = this.#now();
      try {
        candidates = f.filter(cycle, request, candidates);
      } catch (err) {
        throw failure('Filter', f, err);
      }
      (profile.filterTimers[i] as Timer)(t);
      if (candidates.length === 0) return null;
    }
    if (candidates.length === 0) return null;
    const n = candidates.length;
    const totals = new Float64Array(n);
    const scorers = profile.scorers;
    for (let j = 0; j < scorers.length; j++) {
      const { scorer, weight } = scorers[j] as WeightedScorer;
      const t = this.#now();
      let scores: ArrayLike<number>;
      try {
        scores = scorer.score(cycle, request, candidates);
      } catch (err) {
        throw failure('Scorer', scorer, err);
      }
      (profile.scorerTimers[j] as Timer)(t);
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
    let result: ProfileRunResult;
    try {
      result = profile.picker.pick(cycle, scored);
    } catch (err) {
      throw failure('Picker', profile.picker, err);
    }
    profile.pickerTimer(t);
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
