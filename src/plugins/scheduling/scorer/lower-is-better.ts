/**
 * The min-max normalisation the load scorers share (upstream's queue and running-requests formula):
 * score = (max − v) / (max − min) over the candidates, so the least-loaded candidate scores 1 and the most
 * loaded 0; every candidate scores 1 when all values are equal. Index-aligned with `candidates`.
 */
import type { Candidate } from '../../../framework/scheduling.ts';

export function lowerIsBetterScores(candidates: readonly Candidate[], valueOf: (c: Candidate) => number): Float64Array {
  const n = candidates.length;
  const scores = new Float64Array(n);
  if (n === 0) return scores;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = valueOf(candidates[i] as Candidate);
    scores[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (max === min) return scores.fill(1);
  const range = max - min;
  for (let i = 0; i < n; i++) scores[i] = (max - (scores[i] as number)) / range;
  return scores;
}
