/**
 * ReMax (Li et al. 2023, "ReMax: a simple, effective, and efficient reinforcement learning method for
 * aligning large language models"): REINFORCE whose baseline for a sample is the reward of the greedy
 * decode (temperature 0) of the same prompt under the current policy — one extra greedy generation per
 * distinct prompt per step, no critic, no group. The KL to the reference is subtracted from each sampled
 * sequence's reward (β·Σ_t k, as RLOO). It has no section of its own: every field is the shared online one.
 */
import type { Schema } from '../../config.js';
import { ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from '../online/config.js';

/** The config of `rlhf train remax`: the online fields only. */
export type RemaxConfig = OnlineConfig;

/** The defaults of `rlhf train remax` (one sample per prompt; the greedy decode is the baseline). */
export const REMAX_DEFAULTS: RemaxConfig = {
  ...ONLINE_DEFAULTS,
  out: 'runs/remax',
  // The paper samples one completion per prompt: the greedy decode is the baseline, not a group.
  rollout: { ...ONLINE_DEFAULTS.rollout, prompts: 64, samplesPerPrompt: 1 },
};

/** The schema of RemaxConfig. */
export const REMAX_SCHEMA: Schema<RemaxConfig> = ONLINE_SCHEMA;
