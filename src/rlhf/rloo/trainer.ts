/** RLOO: sequence reward − β·KL, leave-one-out baseline within each prompt's k samples, broadcast to tokens. */
import { leaveOneOutAdvantages } from '../core/advantages.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, trainOnline } from '../online/trainer.js';
import { asGroups, broadcastToTokens, sequenceKlPenalty } from '../online/token-rewards.js';
import type { RlooConfig } from './config.js';

/** RLOO as an online Algorithm: leave-one-out baselines within each prompt's samples, KL in the reward. */
export const rlooAlgorithm: Algorithm<RlooConfig> = {
  name: 'rloo',
  klInLoss: false,
  critic: () => null,
  advantages(r, rewards, klCoef, c) {
    const penalty = sequenceKlPenalty(r, klCoef, c.kl.estimator); // −β·KL per sequence
    const total = rewards.map((x, i) => x + penalty[i]!);
    return { advantages: broadcastToTokens(leaveOneOutAdvantages(asGroups(total, c.rollout.samplesPerPrompt)), r), returns: null };
  },
  check(c) {
    if (c.rollout.samplesPerPrompt < 2) throw new Error(`RLOO needs rollout.samplesPerPrompt ≥ 2 (a leave-one-out baseline), got ${c.rollout.samplesPerPrompt}`);
  },
};

/** Trains a policy with RLOO (Ahmadian et al. 2024) on the shared online loop. */
export function trainRloo(cfg: RlooConfig, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  return trainOnline(cfg, rlooAlgorithm, opts);
}
