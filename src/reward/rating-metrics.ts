/**
 * Reward-model evaluation on held-out absolute ratings, in plain JS over number arrays (no tensors):
 * how well rewards track the human scores.
 *
 * Definitions (response i has reward r_i and human score s_i; μ, σ the training ratings' mean and
 * standard deviation, the scale the Gaussian loss regressed r onto, z = (s − μ) / σ):
 *   pearson   Pearson correlation of r with s (null when either is constant or n < 2)
 *   spearman  Spearman's ρ: Pearson correlation of the ranks of r and s, tied values taking their mean
 *             rank (Spearman 1904); insensitive to any monotone miscalibration of the reward
 *   rmse      sqrt(mean_i (μ + σ·r_i − s_i)²): the error of the reward read back on the rating scale,
 *             in rating units (0 for a perfect regressor; σ for one that always predicts the mean μ)
 */
import { mean, pearson } from '../stats.js';

/** The affine map of ratings onto the reward scale, z = (score − mean) / std. */
export interface ScoreScale {
  mean: number;
  std: number;
}

/**
 * The scale of a set of ratings: their mean and sample standard deviation (n − 1). Used on the training
 * part only, so held-out ratings do not leak into the target the model regresses.
 */
export function scoreScaleOf(scores: readonly number[]): ScoreScale {
  if (scores.length < 2) throw new Error(`rating scale: needs at least 2 training ratings, got ${scores.length}`);
  const m = mean(scores);
  const std = Math.sqrt(scores.reduce((a, s) => a + (s - m) ** 2, 0) / (scores.length - 1));
  if (!(std > 0)) throw new Error(`rating scale: every training rating is ${m}; a Gaussian reward needs ratings that vary`);
  return { mean: m, std };
}

/** Ranks 1..n of `xs` (ascending), ties given the mean of the ranks they span. */
export function averageRanks(xs: readonly number[]): number[] {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a]! - xs[b]!);
  const ranks = new Array<number>(xs.length);
  for (let lo = 0; lo < order.length; ) {
    let hi = lo;
    while (hi + 1 < order.length && xs[order[hi + 1]!] === xs[order[lo]!]) hi++;
    for (let k = lo; k <= hi; k++) ranks[order[k]!] = (lo + hi) / 2 + 1;
    lo = hi + 1;
  }
  return ranks;
}

/** Spearman's ρ of x and y (Pearson on average ranks); null when undefined. */
export function spearman(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length) throw new Error(`spearman: ${x.length} x values but ${y.length} y values`);
  return pearson(averageRanks(x), averageRanks(y));
}

export interface RatingEvaluation {
  n: number;
  pearson: number | null;
  spearman: number | null;
  /** in rating units; see the header */
  rmse: number;
  /** the scale rewards were read back with (the training ratings') */
  score_scale: ScoreScale;
}

/** Evaluates rewards against held-out ratings; every field is defined in this file's header. */
export function evaluateRatings(rewards: readonly number[], scores: readonly number[], scale: ScoreScale): RatingEvaluation {
  const n = rewards.length;
  if (n === 0) throw new Error('evaluateRatings: no ratings');
  if (scores.length !== n) throw new Error(`evaluateRatings: ${n} rewards but ${scores.length} scores`);
  rewards.forEach((r, i) => {
    if (!Number.isFinite(r)) throw new Error(`evaluateRatings: response ${i} has a non-finite reward (${r})`);
  });
  const se = rewards.map((r, i) => (scale.mean + scale.std * r - scores[i]!) ** 2);
  return { n, pearson: pearson(rewards, scores), spearman: spearman(rewards, scores), rmse: Math.sqrt(mean(se)), score_scale: scale };
}
