/**
 * The pieces the online algorithms compose their advantages from (so that no algorithm folder imports
 * another): the per-token KL penalty, its per-sequence sum, PPO's token rewards (the penalty plus the
 * sequence reward at the last token; REINFORCE++ discounts the same), rewards as per-prompt groups and
 * sequence advantages broadcast to tokens. Shapes as in actor.ts's glossary: B sequences, A action tokens.
 */
import { type Tensor, tensor } from '../../tensor/index.js';
import { KL_ESTIMATORS, type KlEstimator } from '../core/advantages.js';
import type { Scored } from './rollout.js';

/** Per-token k_estimator(π, π_ref) as a reward penalty: −β·k (B, A), masked. */
export function klPenalty(r: Scored, klCoef: number, estimator: KlEstimator): Tensor {
  return KL_ESTIMATORS[estimator](r.oldLogProbs, r.refLogProbs).mul(r.batch.actionMask).mul(-klCoef);
}

/** The KL penalty summed over each sequence: −β·Σ_t k_t (B), for the algorithms with the KL in a sequence reward. */
export function sequenceKlPenalty(r: Scored, klCoef: number, estimator: KlEstimator): Float32Array {
  return klPenalty(r, klCoef, estimator).sum(1).data() as Float32Array;
}

/** Per-token rewards (B, A): the KL penalty plus the shaped sequence reward at each sequence's last token. */
export function tokenRewards(r: Scored, rewards: readonly number[], klCoef: number, estimator: KlEstimator): Tensor {
  const [b, a] = r.batch.actionMask.shape as [number, number];
  const extra = new Float32Array(b * a);
  r.completionIds.forEach((c, i) => {
    const dense = r.reward.tokenRewards?.[i];
    if (dense) {
      dense.forEach((x, t) => (extra[i * a + t] = x));
      extra[i * a + c.length - 1]! += rewards[i]! - r.reward.rewards[i]!; // shaping applies to the sequence total
    } else {
      extra[i * a + c.length - 1] = rewards[i]!;
    }
  });
  return klPenalty(r, klCoef, estimator).add(tensor(extra, { shape: [b, a] }));
}

/** Sequence advantages (B) → (B, A) on the completion tokens. */
export function broadcastToTokens(seqAdvantages: Tensor, r: Scored): Tensor {
  return seqAdvantages.reshape(-1, 1).mul(r.batch.actionMask);
}

/** Rewards (B) as (P, G): rows of one prompt are consecutive (the rollout's layout). */
export function asGroups(rewards: readonly number[], groupSize: number): Tensor {
  return tensor(Float32Array.from(rewards), { shape: [rewards.length / groupSize, groupSize] });
}
