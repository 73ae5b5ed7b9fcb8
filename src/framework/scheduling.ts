/**
 * Scheduling contracts (epp-spec §3): a profile handler chooses which scheduling profiles to run; each
 * profile runs its filters in order, then its weighted scorers, then exactly one picker.
 *
 * Everything here is synchronous and pure over the candidates handed in: no I/O, no awaiting, no mutation of
 * endpoints. Data that needs I/O is produced before the cycle by `DataProducer`s (requestcontrol.ts) and
 * read from `Candidate.attributes`.
 */
import type { Endpoint } from './datalayer.ts';
import type { Plugin } from './plugin.ts';
import type { InferenceRequest } from './request.ts';

/**
 * One endpoint as a single request sees it: the shared immutable endpoint snapshot plus a per-request
 * attribute map that data producers fill (e.g. prefix match info). Attributes never leak between requests.
 */
export interface Candidate {
  readonly endpoint: Endpoint;
  readonly attributes: Map<string, unknown>;
}

/** Per-cycle scratch storage shared by the plugins of one `schedule` call. Fresh for every request. */
export type CycleState = Map<string, unknown>;

/**
 * Narrows the candidates. Called once per cycle per profile that lists it, in config order; receives the
 * previous filter's output. Must return a subset (any order); an empty result ends the profile with an error.
 */
export interface Filter extends Plugin {
  filter(cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): readonly Candidate[];
}

/** Informational category of a scorer (upstream `Affinity` | `Distribution` | `Balance`). */
export type ScorerCategory = 'affinity' | 'distribution' | 'balance';

/**
 * Scores every candidate. Called once per cycle per profile that lists it. Returns one score per candidate,
 * **index-aligned with `candidates`**; values outside [0, 1] are clamped by the framework, NaN counts as 0.
 * The framework multiplies each score by the scorer's weight and sums across scorers.
 */
export interface Scorer extends Plugin {
  readonly category: ScorerCategory;
  score(cycle: CycleState, request: InferenceRequest, candidates: readonly Candidate[]): ArrayLike<number>;
}

/** A candidate with its weighted total score. */
export interface ScoredCandidate {
  readonly candidate: Candidate;
  readonly score: number;
}

/** What one profile produced: the chosen endpoints, primary first, then fallbacks. Never empty. */
export interface ProfileRunResult {
  readonly targets: readonly Candidate[];
}

/** Chooses the targets among the scored candidates. Exactly one per profile. Must break ties randomly. */
export interface Picker extends Plugin {
  pick(cycle: CycleState, scored: readonly ScoredCandidate[]): ProfileRunResult;
}

/** A scheduling profile as built from config (read-only view for profile handlers). */
export interface SchedulingProfile {
  readonly name: string;
}

/** The outcome of scheduling one request. */
export interface SchedulingResult {
  /** Result per profile that ran (null when that profile failed). */
  readonly profileResults: ReadonlyMap<string, ProfileRunResult | null>;
  /** The profile whose first target is the primary destination. */
  readonly primaryProfileName: string;
}

/**
 * Orchestrates profiles. `pickProfiles` is called repeatedly until it returns an empty list; each returned
 * profile runs and its result is recorded. Then `processResults` turns the per-profile results into the final
 * result (or throws an Error, which fails the request with ResourceExhausted).
 */
export interface ProfileHandler extends Plugin {
  pickProfiles(
    cycle: CycleState,
    request: InferenceRequest,
    profiles: ReadonlyMap<string, SchedulingProfile>,
    resultsSoFar: ReadonlyMap<string, ProfileRunResult | null>,
  ): readonly SchedulingProfile[];
  processResults(
    cycle: CycleState,
    request: InferenceRequest,
    results: ReadonlyMap<string, ProfileRunResult | null>,
  ): SchedulingResult;
}

export function isFilter(p: Plugin): p is Filter {
  return typeof (p as Partial<Filter>).filter === 'function';
}
export function isScorer(p: Plugin): p is Scorer {
  return typeof (p as Partial<Scorer>).score === 'function';
}
export function isPicker(p: Plugin): p is Picker {
  return typeof (p as Partial<Picker>).pick === 'function';
}
export function isProfileHandler(p: Plugin): p is ProfileHandler {
  const h = p as Partial<ProfileHandler>;
  return typeof h.pickProfiles === 'function' && typeof h.processResults === 'function';
}
