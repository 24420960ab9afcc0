/**
 * PPO for language models (Schulman et al. 2017; Ziegler et al. 2019; Ouyang et al. 2022): the shared
 * online fields (src/rlhf/online/config.ts) plus GAE, the critic and PPO-ptx. The KL to the reference is a
 * per-token penalty in the reward (kl.estimator, k1 by default), the reward model's score is added at the
 * last token.
 */
import type { Schema } from '../../config.js';
import { CRITIC_KINDS, type CriticKind, ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from '../online/config.js';

/** The config of `rlhf train ppo`: the online fields plus GAE, the critic and PPO-ptx. */
export interface PpoConfig extends OnlineConfig {
  ppo: {
    /** GAE discount γ and trace λ (Schulman et al. 2016). */
    gamma: number;
    lambda: number;
    /** Whiten advantages over the rollout's tokens. */
    whitenAdvantages: boolean;
    value: {
      /** 'head': a value head on the policy's backbone (shared); 'separate': its own backbone + head. */
      kind: CriticKind;
      /** A separate value model's initial backbone ('' = the policy's). */
      init: string;
      /** Weight of the value loss in the total loss. */
      coef: number;
      /** Value clip ε_v around the old values. */
      clip: number;
      /** Critic learning rate (0 = train.lr). */
      lr: number;
    };
    /**
     * PPO-ptx (Ouyang et al. 2022, §3.6): γ_ptx × the language-modelling loss on pre-training text, mixed
     * into every optimiser step — the paper's remedy for the alignment tax.
     */
    ptx: {
      coef: number;
      /** Text file (one document per line) or JSONL {"text": …}. */
      path: string;
      /** Documents per optimiser step. */
      batchSize: number;
      /** Tokens per document (longer ones are cut). */
      maxTokens: number;
    };
  };
}

/** The defaults of `rlhf train ppo` (k1 KL in the reward, 2 epochs of mini-batches of 32). */
export const PPO_DEFAULTS: PpoConfig = {
  ...ONLINE_DEFAULTS,
  out: 'runs/ppo',
  kl: { ...ONLINE_DEFAULTS.kl, estimator: 'k1' },
  train: { ...ONLINE_DEFAULTS.train, epochs: 2, miniBatchSize: 32 },
  ppo: {
    gamma: 1, lambda: 0.95, whitenAdvantages: true,
    value: { kind: 'head', init: '', coef: 0.1, clip: 0.2, lr: 0 },
    ptx: { coef: 0, path: '', batchSize: 8, maxTokens: 128 },
  },
};

/** The schema of PpoConfig. */
export const PPO_SCHEMA: Schema<PpoConfig> = {
  ...ONLINE_SCHEMA,
  ppo: {
    gamma: { doc: 'GAE discount γ', min: 0 },
    lambda: { doc: 'GAE trace λ', min: 0 },
    whitenAdvantages: { doc: 'whiten advantages over the rollout' },
    value: {
      kind: { doc: "critic: 'head' on the policy backbone or a 'separate' model", oneOf: CRITIC_KINDS },
      init: { doc: "separate value model's initial weights ('' = the policy's)" },
      coef: { doc: 'value-loss coefficient', min: 0 },
      clip: { doc: 'value clip ε_v', min: 0 },
      lr: { doc: 'critic learning rate (0 = train.lr)', min: 0 },
    },
    ptx: {
      coef: { doc: 'PPO-ptx coefficient γ_ptx (0 = off; Ouyang et al. 2022)', min: 0 },
      path: { doc: 'pre-training text: one document per line, or JSONL {"text": …}' },
      batchSize: { doc: 'pre-training documents per optimiser step', integer: true, min: 1 },
      maxTokens: { doc: 'tokens per pre-training document', integer: true, min: 2 },
    },
  },
};
