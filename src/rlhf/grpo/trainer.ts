/** GRPO: group-normalised sequence advantages broadcast to every token; KL as β·k3 in the loss. */
import { type Tensor, tensor } from '../../tensor/index.js';
import { groupAdvantages } from '../core/advantages.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, trainOnline } from '../online/trainer.js';
import type { Scored } from '../online/rollout.js';
import type { GrpoConfig } from './config.js';

/** Sequence advantages (B) → (B, A) on the completion tokens. */
export function broadcastToTokens(seqAdvantages: Tensor, r: Scored): Tensor {
  return seqAdvantages.reshape(-1, 1).mul(r.batch.actionMask);
}

/** Rewards (B) as (P, G): rows of one prompt are consecutive (the rollout's layout). */
export function asGroups(rewards: readonly number[], groupSize: number): Tensor {
  return tensor(Float32Array.from(rewards), { shape: [rewards.length / groupSize, groupSize] });
}

export const grpoAlgorithm: Algorithm<GrpoConfig> = {
  name: 'grpo',
  klInLoss: true,
  critic: () => null,
  advantages(r, rewards, _klCoef, c) {
    const adv = groupAdvantages(asGroups(rewards, c.rollout.samplesPerPrompt), { scaleByStd: c.grpo.scaleByStd });
    return { advantages: broadcastToTokens(adv, r), returns: null };
  },
  check(c) {
    if (c.rollout.samplesPerPrompt < 2) throw new Error(`GRPO needs rollout.samplesPerPrompt ≥ 2 (a group), got ${c.rollout.samplesPerPrompt}`);
  },
};

export function trainGrpo(cfg: GrpoConfig, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  return trainOnline(cfg, grpoAlgorithm, opts);
}
