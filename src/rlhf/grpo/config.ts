/**
 * GRPO (Shao et al. 2024, DeepSeekMath): G samples per prompt, advantages normalised within each group,
 * no critic; the KL to the reference is in the loss (β·k3 per token), not in the reward. Dr. GRPO (Liu et
 * al. 2025) = grpo.scaleByStd false with train.lossNormalisation 'constant'.
 */
import type { Schema } from '../../config.js';
import { ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from '../online/config.js';

/** The config of `rlhf train grpo`: the online fields plus GRPO's group normalisation. */
export interface GrpoConfig extends OnlineConfig {
  grpo: {
    /** Divide by the group's standard deviation (false: Dr. GRPO's unscaled advantages). */
    scaleByStd: boolean;
  };
}

/** The defaults of `rlhf train grpo` (8 samples per prompt, k3 KL in the loss). */
export const GRPO_DEFAULTS: GrpoConfig = {
  ...ONLINE_DEFAULTS,
  out: 'runs/grpo',
  rollout: { ...ONLINE_DEFAULTS.rollout, prompts: 8, samplesPerPrompt: 8 },
  kl: { ...ONLINE_DEFAULTS.kl, coef: 0.04, estimator: 'k3' },
  grpo: { scaleByStd: true },
};

/** The schema of GrpoConfig. */
export const GRPO_SCHEMA: Schema<GrpoConfig> = {
  ...ONLINE_SCHEMA,
  grpo: { scaleByStd: { doc: "divide advantages by the group's std (false = Dr. GRPO)" } },
};
