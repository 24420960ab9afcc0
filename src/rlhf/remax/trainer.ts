/**
 * ReMax: A_i = (r(x, y_i) − β·KL_i) − r(x, ŷ), broadcast to y_i's tokens, where ŷ is the greedy decode of
 * x under the current policy (verl's `compute_remax_outcome_advantage`; the baseline carries no KL term,
 * as there). The greedy reward is shaped like the samples' (clip, missing-EOS and length penalties), so
 * both sides of the difference are in the same units; running reward normalisation is refused (it would
 * put the samples on a scale the baseline is not on).
 */
import { tensor } from '../../tensor/index.js';
import { sample } from '../online/rollout.js';
import { broadcastToTokens, sequenceKlPenalty } from '../online/token-rewards.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, type Run, settings, shapeRewards, stepSeed, trainOnline } from '../online/trainer.js';
import type { RemaxConfig } from './config.js';

/**
 * The shaped reward of the greedy decode of each row's prompt under the current policy (B). Identical
 * prompts share one decode (greedy is deterministic), so a rollout of G samples per prompt decodes P rows.
 */
export async function greedyBaseline(run: Run<RemaxConfig>, prompts: readonly string[], step: number): Promise<number[]> {
  const distinct = [...new Set(prompts)];
  // Temperature 0 is argmax: the seed only names streams nobody draws from.
  const greedy = sample(run.policy, run.tok, distinct, { ...settings(run.cfg), temperature: 0, topK: 0, topP: 1 }, stepSeed(run.cfg.seed, step));
  const shaped = shapeRewards({ reward: await run.reward.score(greedy), finish: greedy.finish, completionIds: greedy.completionIds }, run);
  const byPrompt = new Map(distinct.map((p, i) => [p, shaped[i]!]));
  return prompts.map((p) => byPrompt.get(p)!);
}

/** ReMax as an online Algorithm: the greedy decode's reward as each sample's baseline. */
export const remaxAlgorithm: Algorithm<RemaxConfig> = {
  name: 'remax',
  klInLoss: false,
  critic: () => null,
  baseline: (run, r, step) => greedyBaseline(run, r.prompts, step),
  advantages(r, rewards, klCoef, c, baseline) {
    if (!baseline) throw new Error('ReMax advantages need the greedy-decode baseline (Algorithm.baseline)');
    const penalty = sequenceKlPenalty(r, klCoef, c.kl.estimator); // −β·KL per sequence
    const adv = rewards.map((x, i) => x + penalty[i]! - baseline[i]!);
    return { advantages: broadcastToTokens(tensor(Float32Array.from(adv)), r), returns: null };
  },
  check(c) {
    if (c.reward.normalise) throw new Error('ReMax needs reward.normalise false: its baseline is the greedy decode\'s reward in the reward\'s own units');
  },
};

/** Trains a policy with ReMax (Li et al. 2023) on the shared online loop. */
export function trainRemax(cfg: RemaxConfig, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  return trainOnline(cfg, remaxAlgorithm, opts);
}
