/** Policy and value losses, per token (B, A); the caller normalises (see `normalise`). */
import { type Tensor, where } from '../../tensor/index.js';

/**
 * PPO's clipped surrogate (Schulman et al. 2017) with DAPO's asymmetric "clip-higher" range (Yu et al.
 * 2025) and dual clip (Ye et al. 2020): ratio ρ = exp(logπ − logπ_old),
 *   L = −min(ρA, clip(ρ, 1 − εlow, 1 + εhigh) A), and for A < 0 additionally at most −c·A (c > 1).
 * Returns the per-token loss and the per-token indicator of clipping.
 */
export function clippedPolicyLoss(logProbs: Tensor, oldLogProbs: Tensor, advantages: Tensor, opts: { clipLow: number; clipHigh: number; dualClip?: number }): { loss: Tensor; clipped: Tensor } {
  const ratio = logProbs.sub(oldLogProbs).exp();
  const unclipped = ratio.mul(advantages);
  const clippedObj = ratio.clamp(1 - opts.clipLow, 1 + opts.clipHigh).mul(advantages);
  let loss = unclipped.minimum(clippedObj).neg();
  const clipped = clippedObj.lt(unclipped).float();
  if (opts.dualClip !== undefined) {
    if (!(opts.dualClip > 1)) throw new Error(`dualClip must be > 1, got ${opts.dualClip}`);
    const capped = loss.minimum(advantages.mul(-opts.dualClip));
    loss = where(advantages.lt(0), capped, loss);
  }
  return { loss, clipped };
}

/** PPO's clipped value loss: ½ max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²). */
export function clippedValueLoss(values: Tensor, oldValues: Tensor, returns: Tensor, clip: number): Tensor {
  const vClipped = oldValues.add(values.sub(oldValues).clamp(-clip, clip));
  return values.sub(returns).square().maximum(vClipped.sub(returns).square()).mul(0.5);
}

/** How a per-token loss becomes a scalar (normalise below). */
export const LOSS_NORMALISATIONS = ['token', 'sequence', 'constant'] as const;
/** How a per-token loss becomes a scalar: token, sequence or constant (Dr. GRPO). */
export type LossNormalisation = (typeof LOSS_NORMALISATIONS)[number];

/**
 * Reduces a per-token loss (B, A) to a scalar. 'token': Σ(loss·mask) / Σmask over the whole batch — with
 * `tokenCount` given (the global count across micro-batches) gradient accumulation reproduces one big
 * batch; 'sequence': mean over sequences of each sequence's token mean; 'constant': Σ(loss·mask) / C
 * (Dr. GRPO: C = the generation budget, so no length bias).
 */
export function normalise(loss: Tensor, mask: Tensor, how: LossNormalisation, opts: { tokenCount?: number; sequences?: number; constant?: number } = {}): Tensor {
  const masked = loss.mul(mask);
  if (how === 'token') return masked.sum().div(opts.tokenCount ?? mask.sum().item());
  if (how === 'sequence') return masked.sum(1).div(mask.sum(1).clamp(1, null)).sum().div(opts.sequences ?? loss.size(0));
  if (!(opts.constant && opts.constant > 0)) throw new Error("normalisation 'constant' needs a positive constant");
  return masked.sum().div(opts.constant);
}
