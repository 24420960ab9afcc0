/**
 * REINFORCE++: the PPO token rewards (KL penalty per token + the sequence reward at the last token), their
 * discounted returns — GAE with V ≡ 0 and λ = 1 is exactly G_t = Σ_l γ^l r_{t+l} — and advantages
 * whitened over the whole rollout's tokens (OpenRLHF normalises over the global batch, not per prompt).
 */
import { type Tensor, zerosLike } from '../../tensor/index.js';
import { gae, whiten } from '../core/advantages.js';
import { tokenRewards } from '../online/token-rewards.js';
import type { Scored } from '../online/rollout.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, trainOnline } from '../online/trainer.js';
import type { ReinforceppConfig } from './config.js';

/** Returns-to-go (B, A) of per-token rewards (B, A): G_t = Σ_{l≥0} γ^l r_{t+l} over each sequence's real tokens. */
export function discountedReturns(tokenRewards: Tensor, actionMask: Tensor, gamma: number): Tensor {
  return gae(tokenRewards, zerosLike(tokenRewards), actionMask, gamma, 1).advantages;
}

/** REINFORCE++ advantages (B, A): the token-level returns, globally whitened over the rollout's completion tokens. */
export function reinforceppAdvantages(r: Scored, rewards: readonly number[], klCoef: number, c: ReinforceppConfig): Tensor {
  const returns = discountedReturns(tokenRewards(r, rewards, klCoef, c.kl.estimator), r.batch.actionMask, c.reinforcepp.gamma);
  return whiten(returns, r.batch.actionMask);
}

/** REINFORCE++ as an online Algorithm: token-level returns, globally whitened, no critic. */
export const reinforceppAlgorithm: Algorithm<ReinforceppConfig> = {
  name: 'reinforcepp',
  klInLoss: false,
  critic: () => null,
  advantages: (r, rewards, klCoef, c) => ({ advantages: reinforceppAdvantages(r, rewards, klCoef, c), returns: null }),
  check(c) {
    if (c.reinforcepp.gamma > 1) throw new Error(`reinforcepp.gamma must be in [0, 1], got ${c.reinforcepp.gamma}`);
  },
};

/** Trains a policy with REINFORCE++ (Hu 2025) on the shared online loop. */
export function trainReinforcepp(cfg: ReinforceppConfig, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  return trainOnline(cfg, reinforceppAlgorithm, opts);
}
