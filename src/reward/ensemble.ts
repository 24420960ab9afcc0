/**
 * Reward-model ensembles: aggregating K members' rewards into one conservative reward, the spread
 * between members as an uncertainty, and the bootstrap resamples that make members independent.
 *
 * Shapes: members (K, B) — member k's rewards for the B responses — → reward (B), uncertainty (B).
 * RewardModel.rewards returns (B, K) (one head per member): pass `.transpose(0, 1)`.
 */
import type { Tensor } from '../tensor/index.js';
import { streamKey, uniformAt } from '../random.js';

/** An aggregator's options: the uncertainty penalty λ of mean_minus_std and uwo. */
export interface EnsembleOptions {
  /**
   * Uncertainty penalty λ ≥ 0 of `mean_minus_std` and `uwo` (ignored by `mean` and `min`); default 1
   * (one standard deviation below the mean for `mean_minus_std`). There is no universal value: tune it
   * against a held-out gold reward, as Coste et al. do.
   */
  lambda?: number;
}
/** Members' rewards (K, B) to one reward per sequence (B). */
export type EnsembleAggregator = (members: Tensor, opts?: EnsembleOptions) => Tensor;

function penalty(opts: EnsembleOptions | undefined, who: string): number {
  const lambda = opts?.lambda ?? 1;
  if (!(lambda >= 0)) throw new RangeError(`${who}: lambda must be >= 0, got ${lambda}`);
  return lambda;
}

/**
 * Disagreement between members, (K, B) → (B): the population standard deviation over members,
 *
 *   u_b = sqrt( (1/K) Σ_k (r_kb − r̄_b)² )
 *
 * (1/K, as Coste et al.'s intra-ensemble variance, so one member gives 0 rather than NaN). Like
 * torch.std it has no finite gradient where every member agrees; ensemble rewards are normally used
 * without gradient (as RL rewards), where that does not matter.
 */
export function ensembleSpread(members: Tensor): Tensor {
  return members.std(0, { correction: 0 });
}

/** Mean of the members, (K, B) → (B): r̄_b = (1/K) Σ_k r_kb. */
export function meanAggregate(members: Tensor): Tensor {
  return members.mean(0);
}

/**
 * Worst-case optimisation (WCO), (K, B) → (B): r_b = min_k r_kb. No hyperparameter; the policy is only
 * rewarded for what every member agrees on. Coste et al. 2023, "Reward model ensembles help mitigate
 * overoptimization" (ICLR 2024).
 */
export function minAggregate(members: Tensor): Tensor {
  return members.amin(0);
}

/**
 * Mean minus λ standard deviations, (K, B) → (B): r_b = r̄_b − λ·u_b, a lower confidence bound that
 * penalises responses the members disagree on (the `mean_minus_std` aggregation of Eisenstein et al.
 * 2023, "Helping or herding?"; in the spirit of Coste et al.'s uncertainty-weighted optimisation, whose
 * exact form, with the variance, is `uwo`).
 */
export function meanMinusStdAggregate(members: Tensor, opts?: EnsembleOptions): Tensor {
  const lambda = penalty(opts, 'mean_minus_std');
  return members.mean(0).sub(ensembleSpread(members).mul(lambda));
}

/**
 * Uncertainty-weighted optimisation (UWO), (K, B) → (B), exactly as Coste et al. 2023 (eq. for R_UWO):
 *
 *   r_b = (1/K) Σ_k r_kb − λ · (1/K) Σ_k (r_kb − r̄_b)²
 *
 * The penalty is the variance, so it grows quadratically with disagreement and has units of reward².
 */
export function uwoAggregate(members: Tensor, opts?: EnsembleOptions): Tensor {
  const lambda = penalty(opts, 'uwo');
  return members.mean(0).sub(members.var(0, { correction: 0 }).mul(lambda));
}

/** The ensemble aggregators by name (the keys of ENSEMBLE_AGGREGATORS). */
export type AggregatorName = 'mean' | 'min' | 'mean_minus_std' | 'uwo';

/** The aggregators by name: `ENSEMBLE_AGGREGATORS[name](members, { lambda })`. */
export const ENSEMBLE_AGGREGATORS: Readonly<Record<AggregatorName, EnsembleAggregator>> = {
  mean: meanAggregate,
  min: minAggregate,
  mean_minus_std: meanMinusStdAggregate,
  uwo: uwoAggregate,
};

/** An ensemble's aggregated reward (B) with the members' spread (B). */
export interface EnsembleReward {
  /** (B) the aggregated reward */
  reward: Tensor;
  /** (B) the members' spread (ensembleSpread), to log or to gate on */
  uncertainty: Tensor;
}

/** Aggregates members (K, B) with the named rule and reports their spread alongside. */
export function aggregateEnsemble(members: Tensor, name: AggregatorName, opts?: EnsembleOptions): EnsembleReward {
  if (members.ndim !== 2) throw new Error(`aggregateEnsemble: members must be (K, B), got [${members.shape.join(', ')}]`);
  const aggregate = ENSEMBLE_AGGREGATORS[name];
  if (!aggregate) throw new Error(`aggregateEnsemble: unknown aggregator '${name}' (one of ${Object.keys(ENSEMBLE_AGGREGATORS).join(', ')})`);
  return { reward: aggregate(members, opts), uncertainty: ensembleSpread(members) };
}

/**
 * Bootstrap resamples for training K independent members (Efron 1979; the bootstrap ensembles of
 * Lakshminarayanan et al. 2017, and of Coste et al. 2023 for reward models): k arrays of n indices
 * drawn uniformly with replacement from [0, n). Pure JS and deterministic per (n, k, seed); member m's
 * resample uses its own counter-based stream (generate/rng.ts), so it does not depend on k.
 */
export function bootstrapIndices(n: number, k: number, seed: number): number[][] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bootstrapIndices: n must be an integer >= 1, got ${n}`);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`bootstrapIndices: k must be an integer >= 1, got ${k}`);
  return Array.from({ length: k }, (_, m) => {
    const key = streamKey(seed, m);
    // min(): u·n can round up to n when u is within 2⁻⁵³ of 1.
    return Array.from({ length: n }, (_, i) => Math.min(n - 1, Math.floor(uniformAt(key, i) * n)));
  });
}
