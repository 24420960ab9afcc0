/**
 * Preference-optimisation losses over per-sequence summed log-probs: each pair's completion log-prob
 * Σ_t log π(y_t | x, y_<t) under the policy and (for the losses that have one) under the frozen reference,
 * for the chosen (c) and rejected (r) response, all (B). A loss returns the per-pair loss (B) — the trainer
 * sums and divides by the pairs of the whole optimiser step, so gradient accumulation reproduces one big
 * batch — and each response's implicit reward (detached: for logging and held-out accuracy).
 *
 * Paired variants live in PREFERENCE_LOSSES (DPO with conservative label smoothing, IPO, robust DPO, and the
 * reference-free SimPO and ORPO, which read completion lengths instead of a reference). KTO learns from
 * unpaired completions, so it takes a batch of single completions (`ktoLoss`, below) rather than pairs.
 */
import type { Tensor } from '../../tensor/index.js';

/** The paired preference losses by name (the keys of PREFERENCE_LOSSES). */
export type PreferenceLossType = 'sigmoid' | 'ipo' | 'robust' | 'simpo' | 'orpo';

/** The losses that never read π_ref: their trainer loads no reference model and scores nothing with one. */
export const REFERENCE_FREE: ReadonlySet<PreferenceLossType> = new Set(['simpo', 'orpo']);

/** Summed completion log-probs, each (B); lengths are completion tokens (B), float. */
export interface PreferenceBatch {
  policyChosen: Tensor;
  policyRejected: Tensor;
  /** Under the frozen reference; absent for the reference-free losses (SimPO, ORPO). */
  refChosen?: Tensor;
  refRejected?: Tensor;
  /** |y_c| and |y_r| in tokens, for the length-normalised losses (SimPO, ORPO). */
  chosenLengths?: Tensor;
  rejectedLengths?: Tensor;
}

/** A preference loss's parameters: β, label smoothing, SimPO's γ, ORPO's λ. */
export interface PreferenceParams {
  /** β: the inverse temperature of the implicit reward, i.e. the strength of the KL tie to the reference. */
  beta: number;
  /** ε: the assumed probability that a label is flipped (conservative and robust DPO); 0 = plain DPO. In [0, 0.5). */
  labelSmoothing: number;
  /** γ: SimPO's target reward margin, in units of the reward β·log π/|y| (default 1, Meng et al. 2024 use 0.5–1.6). */
  simpoGamma?: number;
  /** λ: the weight of ORPO's odds-ratio term next to the SFT loss (default 0.1, Hong et al. 2024). */
  orpoLambda?: number;
}

/** A preference loss's output: the scalar loss, and the chosen and rejected implicit rewards (B). */
export interface PreferenceLoss {
  /** (B) per-pair loss. */
  losses: Tensor;
  /** (B) the chosen response's implicit reward, detached: β(log π(c) − log π_ref(c)), or the loss's own. */
  chosenRewards: Tensor;
  /** (B) the rejected response's implicit reward, detached. */
  rejectedRewards: Tensor;
}

/** A paired preference loss: a batch of policy (and reference) log-probs to PreferenceLoss. */
export type PreferenceLossFn = (batch: PreferenceBatch, params: PreferenceParams) => PreferenceLoss;

function reference(b: PreferenceBatch, loss: string): { refChosen: Tensor; refRejected: Tensor } {
  if (!b.refChosen || !b.refRejected) throw new Error(`the ${loss} loss needs the reference's log-probs (refChosen, refRejected)`);
  return { refChosen: b.refChosen, refRejected: b.refRejected };
}

function lengths(b: PreferenceBatch, loss: string): { chosenLengths: Tensor; rejectedLengths: Tensor } {
  if (!b.chosenLengths || !b.rejectedLengths) throw new Error(`the ${loss} loss needs completion lengths (chosenLengths, rejectedLengths)`);
  return { chosenLengths: b.chosenLengths, rejectedLengths: b.rejectedLengths };
}

function checkEpsilon(eps: number): void {
  if (!(eps >= 0 && eps < 0.5)) throw new Error(`labelSmoothing must be in [0, 0.5), got ${eps}`);
}

/** The implicit rewards β(log π − log π_ref) of both responses, detached. */
export function implicitRewards(b: PreferenceBatch, beta: number): { chosenRewards: Tensor; rejectedRewards: Tensor } {
  const { refChosen, refRejected } = reference(b, 'implicit reward');
  return {
    chosenRewards: b.policyChosen.sub(refChosen).mul(beta).detach(),
    rejectedRewards: b.policyRejected.sub(refRejected).mul(beta).detach(),
  };
}

/** h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r)), (B): the log-ratio difference DPO, IPO and robust DPO share. */
function logRatioDifference(b: PreferenceBatch, loss: string): Tensor {
  const { refChosen, refRejected } = reference(b, loss);
  return b.policyChosen.sub(refChosen).sub(b.policyRejected.sub(refRejected));
}

/**
 * DPO (Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward
 * Model", eq. 7) with conservative label smoothing — conservative DPO, cDPO (Mitchell 2023, "A note on DPO
 * with noisy preferences"; TRL's `loss_type="sigmoid"` with `label_smoothing`):
 *   h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))
 *   L = −(1 − ε) log σ(βh) − ε log σ(−βh)
 * At π = π_ref, h = 0 and L = ln 2 whatever ε. ∂L/∂h = −β((1 − ε) σ(−βh) − ε σ(βh)) < 0 for ε < ½ at h = 0:
 * descent raises the chosen log-prob relative to the rejected one.
 */
export function dpoSigmoidLoss(b: PreferenceBatch, p: PreferenceParams): PreferenceLoss {
  checkEpsilon(p.labelSmoothing);
  const h = logRatioDifference(b, 'sigmoid').mul(p.beta); // (B) βh
  let losses = h.logSigmoid().neg();
  if (p.labelSmoothing > 0) losses = losses.mul(1 - p.labelSmoothing).sub(h.neg().logSigmoid().mul(p.labelSmoothing));
  return { losses, ...implicitRewards(b, p.beta) };
}

/**
 * IPO (Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human Preferences",
 * eq. 17; TRL's `loss_type="ipo"`): a squared loss that regresses the log-ratio difference onto a finite
 * target instead of pushing it to infinity, so it does not over-fit deterministic preferences:
 *   L = (h − 1/(2β))²
 * with h as in DPO over SUMMED completion log-probs, as in the paper. (TRL averages the log-probs over
 * completion tokens for IPO, which makes h per-token and the target 1/(2β) far harder to reach; with
 * sums, β sets the target margin in nats of the whole completion.) ∂L/∂h = 2(h − 1/(2β)) < 0 while
 * h < 1/(2β): the same direction as DPO until the target is passed.
 */
export function ipoLoss(b: PreferenceBatch, p: PreferenceParams): PreferenceLoss {
  const h = logRatioDifference(b, 'ipo'); // (B)
  return { losses: h.sub(1 / (2 * p.beta)).square(), ...implicitRewards(b, p.beta) };
}

/**
 * Robust DPO (Chowdhury et al. 2024, "Provably Robust DPO: Aligning Language Models with Noisy Feedback",
 * eq. 8; TRL's `loss_type="robust"`): an unbiased estimate of the clean-label DPO loss when each label is
 * flipped with probability ε:
 *   L = ((1 − ε)·(−log σ(βh)) − ε·(−log σ(−βh))) / (1 − 2ε)
 * Unlike conservative DPO (which mixes the two directions, + ε), the wrong direction is subtracted, and
 * the result rescaled; ε = 0 is DPO. At h = 0, L = ln 2.
 */
export function robustDpoLoss(b: PreferenceBatch, p: PreferenceParams): PreferenceLoss {
  checkEpsilon(p.labelSmoothing);
  const eps = p.labelSmoothing;
  const h = logRatioDifference(b, 'robust').mul(p.beta); // (B) βh
  const losses = h.logSigmoid().neg().mul(1 - eps).sub(h.neg().logSigmoid().neg().mul(eps)).div(1 - 2 * eps);
  return { losses, ...implicitRewards(b, p.beta) };
}

/**
 * SimPO (Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward", eq. 6;
 * TRL's CPOTrainer `loss_type="simpo"`): no reference model; the implicit reward is the length-normalised
 * log-prob β·log π(y)/|y|, and a target margin γ separates chosen from rejected:
 *   L = −log σ(β/|y_c|·log π(c) − β/|y_r|·log π(r) − γ)
 * The rewards returned are β·log π(y)/|y|.
 */
export function simpoLoss(b: PreferenceBatch, p: PreferenceParams): PreferenceLoss {
  const { chosenLengths, rejectedLengths } = lengths(b, 'simpo');
  const chosen = b.policyChosen.div(chosenLengths).mul(p.beta); // (B) β log π(c)/|c|
  const rejected = b.policyRejected.div(rejectedLengths).mul(p.beta);
  const losses = chosen.sub(rejected).sub(p.simpoGamma ?? 1).logSigmoid().neg();
  return { losses, chosenRewards: chosen.detach(), rejectedRewards: rejected.detach() };
}

/**
 * ORPO (Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model", eqs. 6–7;
 * TRL's ORPOTrainer): the SFT loss on the chosen response plus λ times an odds-ratio term; no reference.
 * With ℓ(y) = log π(y)/|y| the length-normalised log-prob and odds(y) = e^ℓ/(1 − e^ℓ):
 *   L = −ℓ(c) − λ·log σ(log odds(c) − log odds(r)),   log odds(y) = ℓ(y) − log(1 − e^ℓ(y))
 * The SFT term here is each pair's mean NLL per chosen token (TRL's is the token mean over the batch;
 * they differ only in how pairs of unequal length are weighed). The rewards returned are ℓ(c) and ℓ(r):
 * log odds is increasing in ℓ, so the ORPO preference orders pairs exactly as ℓ does.
 */
export function orpoLoss(b: PreferenceBatch, p: PreferenceParams): PreferenceLoss {
  const { chosenLengths, rejectedLengths } = lengths(b, 'orpo');
  // ℓ < 0 always (a probability under 1); the clamp keeps log(1 − e^ℓ) finite in float32.
  const chosen = b.policyChosen.div(chosenLengths).clamp(null, -1e-6); // (B) ℓ(c)
  const rejected = b.policyRejected.div(rejectedLengths).clamp(null, -1e-6);
  const logOdds = (l: Tensor) => l.sub(l.exp().neg().log1p()); // (B) log(e^ℓ / (1 − e^ℓ))
  const losses = chosen.neg().sub(logOdds(chosen).sub(logOdds(rejected)).logSigmoid().mul(p.orpoLambda ?? 0.1));
  return { losses, chosenRewards: chosen.detach(), rejectedRewards: rejected.detach() };
}

/** The loss of each paired `loss.type` a preference trainer accepts. */
export const PREFERENCE_LOSSES: Readonly<Record<PreferenceLossType, PreferenceLossFn>> = {
  sigmoid: dpoSigmoidLoss,
  ipo: ipoLoss,
  robust: robustDpoLoss,
  simpo: simpoLoss,
  orpo: orpoLoss,
};

// ---- KTO: unpaired completions

/** Summed completion log-probs of B single completions, each labelled desirable or not. */
export interface KtoBatch {
  /** (B) log π(y|x). */
  policy: Tensor;
  /** (B) log π_ref(y|x). */
  reference: Tensor;
  /** (B) 1 where the completion is desirable, 0 where undesirable (float). */
  desirable: Tensor;
  /** z0, the reference point: a detached estimate of KL(π‖π_ref) (see `ktoReferencePoint`). */
  z0: number;
}

/** KTO's parameters: β and the weights λ_D, λ_U of desirable and undesirable completions. */
export interface KtoParams {
  beta: number;
  /** λ_D, the weight of desirable completions. */
  desirableWeight: number;
  /** λ_U, the weight of undesirable completions. */
  undesirableWeight: number;
}

/** KTO's output per completion: the loss and the implicit reward β(log π − log π_ref). */
export interface KtoLoss {
  /** (B) per-completion loss. */
  losses: Tensor;
  /** (B) β(log π − log π_ref), detached. */
  rewards: Tensor;
}

/**
 * KTO (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization", eq. 8; TRL's
 * KTOTrainer): a prospect-theoretic value of each completion's reward r = log π(y|x) − log π_ref(y|x)
 * relative to a reference point z0 ≈ KL(π‖π_ref):
 *   desirable:   L = λ_D·(1 − σ(β(r − z0)))
 *   undesirable: L = λ_U·(1 − σ(β(z0 − r)))
 * At π = π_ref, r = z0 = 0 and L = λ/2. z0 carries no gradient (the paper and TRL detach it).
 */
export function ktoLoss(b: KtoBatch, p: KtoParams): KtoLoss {
  const r = b.policy.sub(b.reference); // (B)
  const d = b.desirable;
  const up = r.sub(b.z0).mul(p.beta).sigmoid().neg().add(1).mul(p.desirableWeight); // (B) 1 − σ(β(r − z0))
  const down = r.neg().add(b.z0).mul(p.beta).sigmoid().neg().add(1).mul(p.undesirableWeight); // (B) 1 − σ(β(z0 − r))
  return { losses: up.mul(d).add(down.mul(d.neg().add(1))), rewards: r.mul(p.beta).detach() };
}

/**
 * KTO's reference point z0: the batch mean of r = log π − log π_ref over ALL the batch's completions
 * (desirable and undesirable), clamped at 0 (a KL is never negative), as a plain number (detached).
 * This is simpler than the paper's and TRL's estimate, which scores mismatched (prompt, completion) pairs
 * of the batch under both models (a third forward pass); both average r over the data's completions rather
 * than samples of π, so both are a rough reference point, not an unbiased KL. Computed per micro-batch.
 */
export function ktoReferencePoint(policy: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (policy.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < policy.length; i++) s += policy[i]! - reference[i]!;
  return Math.max(0, s / policy.length);
}

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
