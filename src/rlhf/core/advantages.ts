/**
 * The RL math every policy trainer shares, as small pure functions over (B, A) tensors (B sequences,
 * A action = completion-token positions) with an `actionMask` (B, A) of 1 on real tokens, 0 on padding.
 * Formulas and sources in each doc comment (after OpenRLHF's `compute_approx_kl` / `get_advantages_and_returns`).
 */
import { type Tensor, tensor } from '../../tensor/index.js';

/** The per-token KL estimators by name (Schulman 2020): k1, k2, k3. */
export type KlEstimator = 'k1' | 'k2' | 'k3';

/**
 * Per-token estimators of KL(π ‖ π_ref) from samples of π (Schulman 2020, "Approximating KL divergence"),
 * with log r = log π_ref(a) − log π(a):
 *   k1 = −log r                      (unbiased, can be negative)
 *   k2 = ½ (log r)²                  (biased, low variance)
 *   k3 = (r − 1) − log r             (unbiased, always ≥ 0; GRPO's choice)
 * Returns (B, A), zero where the mask is 0.
 */
export const KL_ESTIMATORS: Record<KlEstimator, (logProbs: Tensor, refLogProbs: Tensor) => Tensor> = {
  k1: (lp, ref) => lp.sub(ref),
  k2: (lp, ref) => ref.sub(lp).square().mul(0.5),
  k3: (lp, ref) => {
    const logR = ref.sub(lp);
    return logR.exp().sub(1).sub(logR);
  },
};

/** Per-token KL estimate (B, A) of π against π_ref by `estimator`, masked to the action tokens. */
export function approxKl(logProbs: Tensor, refLogProbs: Tensor, estimator: KlEstimator, actionMask: Tensor): Tensor {
  return KL_ESTIMATORS[estimator](logProbs, refLogProbs).mul(actionMask);
}

/**
 * Generalised advantage estimation (Schulman et al. 2016): δ_t = r_t + γ V_{t+1} − V_t,
 * A_t = Σ_l (γλ)^l δ_{t+l}, returns R_t = A_t + V_t; V after the last real token is 0. rewards, values
 * and actionMask are (B, A); computed backwards in JavaScript doubles (A is small; this is not a hot path).
 */
export function gae(rewards: Tensor, values: Tensor, actionMask: Tensor, gamma: number, lambda: number): { advantages: Tensor; returns: Tensor } {
  const [b, a] = rewards.shape as [number, number];
  const r = rewards.double().data() as Float64Array;
  const v = values.double().data() as Float64Array;
  const m = actionMask.double().data() as Float64Array;
  const adv = new Float64Array(b * a);
  for (let i = 0; i < b; i++) {
    let next = 0;
    let nextValue = 0;
    for (let t = a - 1; t >= 0; t--) {
      const k = i * a + t;
      if (m[k] === 0) continue; // padding: skipped, so the recursion joins the real tokens
      const delta = r[k]! + gamma * nextValue - v[k]!;
      next = delta + gamma * lambda * next;
      adv[k] = next;
      nextValue = v[k]!;
    }
  }
  const advantages = tensor(adv, { shape: [b, a] }).to(rewards.dtype);
  return { advantages, returns: advantages.add(values).mul(actionMask) };
}

/** (x − mean) / (std + ε) over the masked entries (advantage whitening, as in PPO implementations). */
export function whiten(x: Tensor, mask: Tensor, eps = 1e-8): Tensor {
  const n = mask.sum();
  const mean = x.mul(mask).sum().div(n);
  const centred = x.sub(mean).mul(mask);
  const std = centred.square().sum().div(n.sub(1).clamp(1, null)).sqrt();
  return centred.div(std.add(eps));
}

/**
 * Group-normalised advantages for G samples per prompt, rewards (P, G): GRPO (Shao et al. 2024)
 * A = (r − mean_group) / (std_group + ε); Dr. GRPO (Liu et al. 2025) drops the std division:
 * A = r − mean_group.
 */
export function groupAdvantages(rewards: Tensor, opts: { scaleByStd?: boolean; eps?: number } = {}): Tensor {
  const centred = rewards.sub(rewards.mean(1, true));
  if (opts.scaleByStd === false) return centred;
  return centred.div(rewards.std(1, { keepdim: true }).add(opts.eps ?? 1e-4));
}

/** RLOO (Ahmadian et al. 2024): each sample's baseline is the mean of the other G − 1, A = r − mean_{j≠i} r_j. */
export function leaveOneOutAdvantages(rewards: Tensor): Tensor {
  const g = rewards.size(1);
  if (g < 2) throw new Error(`leave-one-out baselines need at least 2 samples per prompt, got ${g}`);
  const others = rewards.sum(1, true).sub(rewards).div(g - 1);
  return rewards.sub(others);
}

