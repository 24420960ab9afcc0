/**
 * Reward-model training losses over scalar rewards, as small pure functions. Each returns a scalar
 * tensor differentiable w.r.t. the rewards (libtorch's autograd does the gradients); a trainer picks
 * one by name from `REWARD_LOSSES`.
 *
 * Names and shapes (B = pairs or prompts in the batch, K = responses per prompt):
 *   chosen, rejected  (B)    rewards r⁺ of the human-preferred and r⁻ of the other response
 *   margin            (B)    optional per-pair margin m (a tensor, or one number for every pair)
 *   rewards           (B, K) rewards of K ranked responses (Plackett–Luce), or (B) for ratings
 *   scores            (B)    human ratings (Gaussian)
 */
import type { Tensor } from '../tensor/index.js';
import { arange } from '../tensor/index.js';

/** A batch of preference pairs. */
export interface PairwiseRewards {
  /** (B) rewards of the preferred responses */
  chosen: Tensor;
  /** (B) rewards of the dispreferred responses */
  rejected: Tensor;
  /**
   * Optional margin m (B) or one number: the loss asks for r⁺ − r⁻ > m. Llama 2 derives it from the
   * annotators' preference strength ("significantly better" gets a larger margin). Default 0.
   */
  margin?: Tensor | number;
  /**
   * Optional per-pair weights w (B), e.g. each annotator's reliability: the loss becomes the weighted mean
   * Σ_b w_b ℓ_b / Σ_b w_b (over heads too when the rewards are (B, H)). Default: the plain mean.
   */
  weights?: Tensor;
}

/** The mean of per-pair terms (B) or (B, H), weighted by `weights` (B) when given. */
function pairMean(terms: Tensor, weights?: Tensor): Tensor {
  if (!weights) return terms.mean();
  const w = terms.ndim === 2 ? weights.unsqueeze(1) : weights; // (B, 1) against (B, H)
  return terms.mul(w).sum().div(weights.sum().mul(terms.numel / terms.size(0)));
}

/** Δ = r⁺ − r⁻ − m, (B). */
function shiftedDelta({ chosen, rejected, margin }: PairwiseRewards): Tensor {
  const delta = chosen.sub(rejected);
  return margin === undefined ? delta : delta.sub(margin);
}

/**
 * Bradley–Terry loss, the negative log-likelihood of P(chosen ≻ rejected) = σ(r⁺ − r⁻):
 *
 *   L = mean_b −log σ(r⁺_b − r⁻_b − m_b)
 *
 * Bradley & Terry 1952, "Rank analysis of incomplete block designs"; the reward-model loss of
 * Christiano et al. 2017 and Ouyang et al. 2022 (InstructGPT). The margin m is Llama 2's (Touvron et al.
 * 2023, eq. 2), as in TRL's RewardTrainer (`logsigmoid(chosen − rejected − margin)`). Computed with
 * logSigmoid, which stays finite for large |Δ| where log(sigmoid(Δ)) underflows to −∞.
 */
export function bradleyTerryLoss(x: PairwiseRewards): Tensor {
  return pairMean(shiftedDelta(x).logSigmoid(), x.weights).neg();
}

/**
 * Label-smoothed ("conservative") Bradley–Terry for noisy labels: each label is taken to be flipped with
 * probability ε, so the target probability of "chosen ≻ rejected" is 1 − ε instead of 1:
 *
 *   L = mean_b [ −(1 − ε) log σ(Δ_b) − ε log σ(−Δ_b) ],   Δ = r⁺ − r⁻ − m,   ε ∈ [0, 0.5)
 *
 * The cross-entropy against a smoothed label (Szegedy et al. 2016); for preferences, Mitchell 2023, "A
 * note on DPO with noisy preferences & relationship to IPO" (conservative DPO, cDPO) — the same form as
 * TRL's DPO `label_smoothing`. Unlike plain BT its minimiser is finite: Δ* = log((1 − ε)/ε), so the model
 * stops pushing margins apart on pairs it already separates. ε = 0 is bradleyTerryLoss exactly.
 */
export function labelSmoothedBtLoss(x: PairwiseRewards & { labelSmoothing: number }): Tensor {
  const eps = x.labelSmoothing;
  if (!(eps >= 0 && eps < 0.5)) throw new RangeError(`labelSmoothedBtLoss: labelSmoothing must be in [0, 0.5), got ${eps}`);
  const delta = shiftedDelta(x);
  const agree = delta.logSigmoid().mul(1 - eps); // (B)
  const flipped = delta.neg().logSigmoid().mul(eps); // (B)
  return pairMean(agree.add(flipped), x.weights).neg();
}

/** A batch of K-wise rankings for the Plackett–Luce loss. */
export interface RankedRewards {
  /** (B, K) rewards; ordered best-first unless `order` is given. */
  rewards: Tensor;
  /**
   * Optional (B, K) int64 ranking: order[b, i] is the column of `rewards` ranked i-th (0 = best).
   * Without it the columns are already best-first.
   */
  order?: Tensor;
  /**
   * Optional (B, K) bool over RANKED positions (after `order`): false marks padding, for rankings of
   * fewer than K responses. A padded response is left out of every softmax denominator and contributes
   * no term. Ties are not modelled: a tie must be broken (or the pair dropped) by the caller.
   */
  mask?: Tensor;
}

/**
 * Plackett–Luce loss, the negative log-likelihood of a full ranking π (best first) under
 * P(π) = Π_i exp(r_π(i)) / Σ_{j≥i} exp(r_π(j)):
 *
 *   L = mean_b −Σ_{i<K} [ r_π(i) − logsumexp_{j≥i} r_π(j) ]
 *
 * Plackett 1975, "The analysis of permutations"; Luce 1959, "Individual choice behavior"; the K-wise
 * reward-model MLE of Zhu, Jordan & Jiao 2023, "Principled RLHF from pairwise or K-wise comparisons"
 * (the InstructGPT K-wise loss instead sums BT over all K(K−1)/2 pairs). The last term is always 0. For
 * K = 2 it is bradleyTerryLoss exactly: r₀ − logsumexp(r₀, r₁) = log σ(r₀ − r₁).
 *
 * The suffix logsumexp is a masked (B, K, K) logsumexp: O(K²) memory, fine for the K ≤ 16 of
 * preference data. The diagonal (j = i) is always kept, so every row has one finite entry and padded
 * rows never produce −∞ (whose gradient would be NaN even when multiplied by 0).
 */
export function plackettLuceLoss({ rewards, order, mask }: RankedRewards): Tensor {
  if (rewards.ndim !== 2) throw new Error(`plackettLuceLoss: rewards must be (B, K), got [${rewards.shape.join(', ')}]`);
  const k = rewards.size(1);
  const r = order ? rewards.gather(1, order) : rewards; // (B, K), best first
  const pos = arange(k, undefined, 1, { device: r.device });
  let keep = pos.unsqueeze(0).ge(pos.unsqueeze(1)); // (K, K): [i, j] = j ≥ i
  if (mask) {
    const valid = mask.bool();
    const self = pos.unsqueeze(0).eq(pos.unsqueeze(1)); // (K, K): [i, j] = j = i
    keep = keep.logicalAnd(valid.unsqueeze(1).logicalOr(self)); // (B, K, K)
  }
  const rows = r.unsqueeze(1).expand(r.size(0), k, k); // (B, K, K): [b, i, j] = r[b, j]
  const denom = rows.maskedFill(keep.logicalNot(), -Infinity).logsumexp(2); // (B, K)
  let terms = r.sub(denom); // (B, K) log-probability of each choice
  if (mask) terms = terms.mul(mask.to(r.dtype));
  return terms.sum(1).mean().neg();
}

/** A batch of absolute ratings. */
export interface RatedRewards {
  /** (B) predicted rewards */
  rewards: Tensor;
  /** (B) human ratings (e.g. Likert 1–7), on their own scale */
  scores: Tensor;
  /**
   * How ratings map onto the reward scale: z = (score − mean) / std. Use the training set's rating mean
   * and standard deviation, so that rewards come out in standard units whatever the rating scale
   * (1–5 or 0–10), as the BT-trained rewards the RL stage also normalises. Default {mean: 0, std: 1}:
   * the scores are used as given (already normalised).
   */
  scoreScale?: { mean: number; std: number };
  /** Observation noise σ of the ratings in normalised units (default 1). */
  sigma?: number;
}

/**
 * Gaussian (regression) loss on absolute ratings: the negative log-likelihood, up to a constant, of
 * z ~ N(r, σ²) with z the normalised score (see `scoreScale`):
 *
 *   L = mean_b (r_b − z_b)² / 2σ²,   z = (score − μ) / s
 *
 * With σ = 1 it is half the mean squared error. The rating-based reward models of SteerLM / HelpSteer
 * (Dong et al. 2023; Wang et al. 2023) regress attributes this way; σ only rescales the gradient, but
 * sets this loss's weight when it is summed with a BT loss on the same rewards.
 */
export function gaussianRatingLoss({ rewards, scores, scoreScale, sigma = 1 }: RatedRewards): Tensor {
  if (!(sigma > 0)) throw new RangeError(`gaussianRatingLoss: sigma must be > 0, got ${sigma}`);
  const { mean = 0, std = 1 } = scoreScale ?? {};
  if (!(std > 0)) throw new RangeError(`gaussianRatingLoss: scoreScale.std must be > 0, got ${std}`);
  const z = scores.sub(mean).div(std);
  return rewards.sub(z).square().mean().div(2 * sigma * sigma);
}

/**
 * Reward-centring auxiliary term, added to a pairwise loss to pin the reward's free offset (BT only sees
 * differences) near zero:
 *
 *   L = c · mean_b (r⁺_b + r⁻_b)²
 *
 * Eisenstein et al. 2023, "Helping or herding? Reward model ensembles mitigate but do not eliminate
 * reward hacking" (arXiv 2312.09244, eq. 2); TRL's RewardTrainer `center_rewards_coefficient`, whose
 * documentation recommends c = 0.01. The margin, if any, is ignored.
 */
export function rewardCenteringLoss({ chosen, rejected, coefficient }: PairwiseRewards & { coefficient: number }): Tensor {
  return chosen.add(rejected).square().mean().mul(coefficient);
}

/** Each loss's input, by name. */
export interface RewardLossInputs {
  bradley_terry: PairwiseRewards;
  label_smoothed_bt: PairwiseRewards & { labelSmoothing: number };
  plackett_luce: RankedRewards;
  gaussian: RatedRewards;
  centering: PairwiseRewards & { coefficient: number };
}
/** The reward losses by name (the keys of REWARD_LOSSES). */
export type RewardLossName = keyof RewardLossInputs;
/** A reward loss: its inputs (typed per loss) to a scalar. */
export type RewardLossFn<N extends RewardLossName> = (x: RewardLossInputs[N]) => Tensor;

/** The losses by name: `REWARD_LOSSES[name](input)`, typed per name. */
export const REWARD_LOSSES: { readonly [N in RewardLossName]: RewardLossFn<N> } = {
  bradley_terry: bradleyTerryLoss,
  label_smoothed_bt: labelSmoothedBtLoss,
  plackett_luce: plackettLuceLoss,
  gaussian: gaussianRatingLoss,
  centering: rewardCenteringLoss,
};
