/**
 * REINFORCE++ (Hu 2025, "REINFORCE++: a simple and efficient approach for aligning large language
 * models"; OpenRLHF's `--advantage_estimator reinforce`): per-token rewards r_t = −β·k(π_old, π_ref)_t plus
 * the sequence reward at the last token (as PPO), returns G_t = Σ_{l≥0} γ^l r_{t+l}, advantages = the
 * returns whitened over every completion token of the whole rollout (global batch normalisation, no
 * critic, no per-prompt group), and PPO's clipped surrogate.
 */
import type { Schema } from '../../config.js';
import { ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from '../online/config.js';

/** The config of `rlhf train reinforcepp`: the online fields plus the returns' discount. */
export interface ReinforceppConfig extends OnlineConfig {
  reinforcepp: {
    /** Discount γ of the token-level returns (1 = undiscounted, OpenRLHF's default). */
    gamma: number;
  };
}

/** The defaults of `rlhf train reinforcepp`. */
export const REINFORCEPP_DEFAULTS: ReinforceppConfig = {
  ...ONLINE_DEFAULTS,
  out: 'runs/reinforcepp',
  kl: { ...ONLINE_DEFAULTS.kl, estimator: 'k1' },
  reinforcepp: { gamma: 1 },
};

/** The schema of ReinforceppConfig. */
export const REINFORCEPP_SCHEMA: Schema<ReinforceppConfig> = {
  ...ONLINE_SCHEMA,
  reinforcepp: { gamma: { doc: 'discount γ of the token-level returns (1 = none)', min: 0 } },
};
