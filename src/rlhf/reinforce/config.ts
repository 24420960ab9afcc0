/**
 * Plain REINFORCE (Williams 1992) with a moving-average baseline: A_i = R_i − b for every token of
 * sequence i, where R_i = r_i − β·Σ_t k_t (the KL in the reward, as RLOO) and, after each step,
 * b ← m·b + (1 − m)·mean_i R_i (the first step's b is that step's mean). The baseline is saved in every
 * checkpoint, so a resumed run continues with the same b.
 */
import type { Schema } from '../../config.js';
import { ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from '../online/config.js';

/** The config of `rlhf train reinforce`: the online fields plus the baseline's momentum. */
export interface ReinforceConfig extends OnlineConfig {
  reinforce: {
    /** Momentum m of the baseline's exponential moving average (0 = this step's mean reward). */
    baselineMomentum: number;
  };
}

/** The defaults of `rlhf train reinforce`. */
export const REINFORCE_DEFAULTS: ReinforceConfig = {
  ...ONLINE_DEFAULTS,
  out: 'runs/reinforce',
  reinforce: { baselineMomentum: 0.9 },
};

/** The schema of ReinforceConfig. */
export const REINFORCE_SCHEMA: Schema<ReinforceConfig> = {
  ...ONLINE_SCHEMA,
  reinforce: { baselineMomentum: { doc: "baseline EMA momentum m: b ← m·b + (1 − m)·mean reward (0 = the step's mean)", min: 0 } },
};
