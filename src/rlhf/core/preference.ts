/**
 * Preference-optimisation losses over per-sequence summed log-probs: each pair's completion log-prob
 * Σ_t log π(y_t | x, y_<t) under the policy and under the frozen reference, for the chosen (c) and
 * rejected (r) response, all (B). A loss returns the per-pair loss (B) — the trainer sums and divides by
 * the pairs of the whole optimiser step, so gradient accumulation reproduces one big batch — and the
 * implicit rewards β(log π − log π_ref) of both responses (detached: for logging and evaluation).
 *
 * Variants live in PREFERENCE_LOSSES; IPO, robust DPO, SimPO, ORPO and KTO join it as further entries
 * (their extra inputs, such as lengths or an SFT term, as optional fields of PreferenceBatch).
 */
import type { Tensor } from '../../tensor/index.js';

export type PreferenceLossType = 'sigmoid';

/** Summed completion log-probs, each (B). */
export interface PreferenceBatch {
  policyChosen: Tensor;
  policyRejected: Tensor;
  refChosen: Tensor;
  refRejected: Tensor;
}

export interface PreferenceParams {
  /** β: the inverse temperature of the implicit reward, i.e. the strength of the KL tie to the reference. */
  beta: number;
  /** ε: the probability that a label is flipped (conservative DPO); 0 = plain DPO. In [0, 0.5). */
  labelSmoothing: number;
}

export interface PreferenceLoss {
  /** (B) per-pair loss. */
  losses: Tensor;
  /** (B) β(log π(c) − log π_ref(c)), detached. */
  chosenRewards: Tensor;
  /** (B) β(log π(r) − log π_ref(r)), detached. */
  rejectedRewards: Tensor;
}

export type PreferenceLossFn = (batch: PreferenceBatch, params: PreferenceParams) => PreferenceLoss;

/** The implicit rewards β(log π − log π_ref) of both responses, detached. */
export function implicitRewards(b: PreferenceBatch, beta: number): { chosenRewards: Tensor; rejectedRewards: Tensor } {
  return {
    chosenRewards: b.policyChosen.sub(b.refChosen).mul(beta).detach(),
    rejectedRewards: b.policyRejected.sub(b.refRejected).mul(beta).detach(),
  };
}

/**
 * DPO (Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward
 * Model", eq. 7) with conservative label smoothing (Mitchell 2023, "A note on DPO with noisy
 * preferences"; TRL's `loss_type="sigmoid"` with `label_smoothing`):
 *   h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))
 *   L = −(1 − ε) log σ(βh) − ε log σ(−βh)
 * At π = π_ref, h = 0 and L = ln 2 whatever ε. ∂L/∂h = −β((1 − ε) σ(−βh) − ε σ(βh)) < 0 for ε < ½ at h = 0:
 * descent raises the chosen log-prob relative to the rejected one.
 */
export function dpoSigmoidLoss(b: PreferenceBatch, p: PreferenceParams): PreferenceLoss {
  if (!(p.labelSmoothing >= 0 && p.labelSmoothing < 0.5)) throw new Error(`labelSmoothing must be in [0, 0.5), got ${p.labelSmoothing}`);
  const h = b.policyChosen.sub(b.refChosen).sub(b.policyRejected.sub(b.refRejected)).mul(p.beta); // (B) βh
  let losses = h.logSigmoid().neg();
  if (p.labelSmoothing > 0) losses = losses.mul(1 - p.labelSmoothing).sub(h.neg().logSigmoid().mul(p.labelSmoothing));
  return { losses, ...implicitRewards(b, p.beta) };
}

/** The loss of each `loss.type` a preference trainer accepts. */
export const PREFERENCE_LOSSES: Readonly<Record<PreferenceLossType, PreferenceLossFn>> = {
  sigmoid: dpoSigmoidLoss,
};

/**
 * Implicit-reward accuracy: the fraction of pairs whose chosen reward exceeds the rejected one, a tie
 * counting ½ (so a policy equal to its reference scores exactly 0.5, not 0).
 */
export function pairAccuracy(chosen: ArrayLike<number>, rejected: ArrayLike<number>): number {
  if (chosen.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < chosen.length; i++) s += chosen[i]! > rejected[i]! ? 1 : chosen[i] === rejected[i] ? 0.5 : 0;
  return s / chosen.length;
}
