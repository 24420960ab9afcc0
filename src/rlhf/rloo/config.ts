/**
 * RLOO (Ahmadian et al. 2024, "Back to basics"): REINFORCE with a leave-one-out baseline over k samples per
 * prompt, no critic; the KL to the reference is subtracted from each sequence's reward (β·Σ_t k1).
 * It has no section of its own: every field is the shared online one.
 */
import type { Schema } from '../../config.js';
import { ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from '../online/config.js';

/** The config of `rlhf train rloo`: the online fields only. */
export type RlooConfig = OnlineConfig;

/** The defaults of `rlhf train rloo`. */
export const RLOO_DEFAULTS: RlooConfig = { ...ONLINE_DEFAULTS, out: 'runs/rloo' };

/** The schema of RlooConfig. */
export const RLOO_SCHEMA: Schema<RlooConfig> = ONLINE_SCHEMA;
