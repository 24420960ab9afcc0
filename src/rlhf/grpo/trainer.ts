/** GRPO: group-normalised sequence advantages broadcast to every token; KL as β·k3 in the loss. */
import { groupAdvantages } from '../core/advantages.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, trainOnline } from '../online/trainer.js';
import { asGroups, broadcastToTokens } from '../online/token-rewards.js';
import type { GrpoConfig } from './config.js';

/** GRPO as an online Algorithm: group-normalised sequence advantages, KL in the loss, no critic. */
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

/** Trains a policy with GRPO (Shao et al. 2024) on the shared online loop. */
export function trainGrpo(cfg: GrpoConfig, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  return trainOnline(cfg, grpoAlgorithm, opts);
}
