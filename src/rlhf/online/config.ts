/**
 * The configuration every online (sampling) policy trainer shares — PPO, GRPO, RLOO and the later
 * REINFORCE-family methods. Each algorithm's config.ts adds its own section and its defaults (e.g. PPO's
 * value model and GAE, GRPO's group normalisation). Units: rewards in the reward source's units, KL in
 * nats, lengths in tokens, steps = RL iterations (one rollout each).
 */
import { LOGGING_DEFAULTS, LOGGING_SCHEMA, type LoggingFields } from '../../tensorboard.js';
import { namesOf, SEED_RANGE, type Schema } from '../../config.js';
import { SCHEDULES, type ScheduleKind } from '../../nn/schedule.js';
import { KL_ESTIMATORS, type KlEstimator } from '../core/advantages.js';
import { LOSS_NORMALISATIONS, type LossNormalisation } from '../core/losses.js';
import { THREADS_FIELD } from '../../nn/train-fields.js';
import { LORA_FIELD_DEFAULTS, LORA_SCHEMA, type LoraFields } from '../../nn/lora.js';

/** Where PPO's critic lives: a value head on the policy's backbone, or a separate model. */
export const CRITIC_KINDS = ['head', 'separate'] as const;
/** Where PPO's critic lives: a value head on the policy's backbone, or a separate model. */
export type CriticKind = (typeof CRITIC_KINDS)[number];

/** The configuration every online (sampling) policy trainer shares: model, prompts, reward sources and shaping, rollout, KL, training. */
export interface OnlineConfig {
  seed: number;
  /** Output directory: checkpoint/, metrics.jsonl, model/ (the final policy), samples.jsonl. */
  out: string;
  model: {
    /** The policy's initial weights: 'stories260k' or a Hugging Face-layout directory. */
    policy: string;
    /** The frozen reference for the KL penalty ('' = the policy's initial weights). */
    reference: string;
  };
  /** LoRA adapters instead of the whole policy (r > 0): the KL reference is then the policy with its adapters disabled, a value head trains in full on the shared backbone. */
  lora: LoraFields;
  data: {
    /** Prompts: a JSONL file of {"prompt": …} or a text file, one prompt per line ('' = `prompts`). */
    path: string;
    /** Inline prompts when data.path is ''; [''] = BOS only (unconditional stories). */
    prompts: string[];
  };
  reward: {
    /**
     * Sources: 'function:NAME' (src/reward/functions.ts), 'model:DIR' (a reward model or ensemble),
     * 'module:./file.mjs#export' (your own JavaScript function) or 'http(s)://HOST/get_reward' (OpenRLHF's
     * remote reward protocol); see src/reward/sources.ts.
     */
    sources: string[];
    /** One weight per source (empty = all 1). */
    weights: number[];
    /** Token-level rewards from a reward model's per-prefix scores instead of one reward at the end. */
    dense: boolean;
    /** Clip sequence rewards to ±clip (0 = off). */
    clip: number;
    /** Normalise rewards by running mean and std across steps. */
    normalise: boolean;
    /** Subtracted from a completion that hit maxNewTokens without an end-of-sequence token (0 = off). */
    missingEosPenalty: number;
    /** Subtracted per completion token over lengthTarget (0 = off). */
    lengthPenalty: number;
    lengthTarget: number;
  };
  rollout: {
    /** Prompts per step; each is sampled samplesPerPrompt times (the group of GRPO/RLOO). */
    prompts: number;
    samplesPerPrompt: number;
    maxNewTokens: number;
    temperature: number;
    topK: number;
    topP: number;
    /** Never stop at an end-of-sequence id: every completion has maxNewTokens tokens (benchmarks). */
    ignoreEos: boolean;
  };
  kl: {
    /** β: the KL penalty's coefficient (initial value when adaptive). */
    coef: number;
    /** Per-token estimator (Schulman 2020): k1 in the reward, k3 in the loss. */
    estimator: KlEstimator;
    /** Adaptive control (Ziegler et al. 2019): target KL in nats per sequence (0 = fixed β). */
    target: number;
    horizon: number;
  };
  train: {
    /** RL steps: rollout → score → advantages → update. */
    steps: number;
    /** Passes over each rollout (PPO's epochs; 1 = on-policy). */
    epochs: number;
    /** Sequences per optimiser step (0 = the whole rollout). */
    miniBatchSize: number;
    /** Sequences per forward/backward; gradients accumulate to the mini-batch (0 = the mini-batch). */
    microBatchSize: number;
    lr: number;
    weightDecay: number;
    warmupSteps: number;
    schedule: ScheduleKind;
    clipGradNorm: number;
    /** PPO ratio clip: 1 − clipLow ≤ ρ ≤ 1 + clipHigh (clipHigh > clipLow is DAPO's clip-higher). */
    clipLow: number;
    clipHigh: number;
    /** Dual-clip bound c > 1 on negative advantages (0 = off; Ye et al. 2020). */
    dualClip: number;
    /** How the per-token loss becomes a scalar: token (global token mean), sequence, constant (Dr. GRPO). */
    lossNormalisation: LossNormalisation;
    /** Entropy bonus coefficient (0 = off). */
    entropyCoef: number;
    /** Write a resumable checkpoint every N steps (0 = only at the end). */
    checkpointEvery: number;
    /** Evaluate on fresh samples every N steps (0 = only at the start and end). */
    evalEvery: number;
    /** Fresh samples per evaluation (0 = no evaluation). */
    evalSamples: number;
    /** Intra-op threads (libtorch and OpenBLAS; 0 = leave the default). */
    threads: number;
  };
  /** TensorBoard event files (src/tensorboard.ts). */
  logging: LoggingFields;
}

/** The shared online defaults each algorithm's defaults start from. */
export const ONLINE_DEFAULTS: OnlineConfig = {
  seed: 0,
  out: 'runs/policy',
  model: { policy: 'stories260k', reference: '' },
  lora: LORA_FIELD_DEFAULTS,
  data: { path: '', prompts: [''] },
  reward: { sources: ['function:afinn_comparative'], weights: [], dense: false, clip: 0, normalise: false, missingEosPenalty: 0, lengthPenalty: 0, lengthTarget: 0 },
  rollout: { prompts: 16, samplesPerPrompt: 4, maxNewTokens: 48, temperature: 1, topK: 0, topP: 1, ignoreEos: false },
  kl: { coef: 0.05, estimator: 'k1', target: 0, horizon: 10000 },
  train: {
    steps: 40, epochs: 1, miniBatchSize: 0, microBatchSize: 0, lr: 1e-4, weightDecay: 0, warmupSteps: 0, schedule: 'constant',
    clipGradNorm: 1, clipLow: 0.2, clipHigh: 0.2, dualClip: 0, lossNormalisation: 'token', entropyCoef: 0,
    checkpointEvery: 10, evalEvery: 0, evalSamples: 256, threads: 1,
  },
  logging: { ...LOGGING_DEFAULTS },
};

/** The schema of OnlineConfig: every field's doc and range. */
export const ONLINE_SCHEMA: Schema<OnlineConfig> = {
  seed: { doc: 'seed of sampling, mini-batch order and initialisation', ...SEED_RANGE },
  out: { doc: 'output directory' },
  model: {
    policy: { doc: "initial policy: 'stories260k' or a model directory" },
    reference: { doc: "frozen KL reference ('' = the initial policy)" },
  },
  lora: LORA_SCHEMA,
  data: {
    path: { doc: "prompts file: JSONL {\"prompt\": …} or text, one per line ('' = data.prompts)" },
    prompts: { doc: "inline prompts, cycled ('' = BOS only)", items: 'string' },
  },
  reward: {
    sources: { doc: "reward sources: 'function:afinn_comparative', 'model:DIR' (reward model or ensemble), 'module:./file.mjs#export' (your function, compiled JavaScript), 'http://HOST:PORT/get_reward' (OpenRLHF's remote reward protocol; client options in the #fragment)", items: 'string' },
    weights: { doc: 'one weight per source (empty = all 1)', items: 'number' },
    dense: { doc: "token-level rewards from a reward model's per-prefix scores" },
    clip: { doc: 'clip sequence rewards to ±clip (0 = off)', min: 0 },
    normalise: { doc: 'normalise rewards by running mean/std across steps' },
    missingEosPenalty: { doc: 'subtracted when a completion hits maxNewTokens without ending (0 = off)', min: 0 },
    lengthPenalty: { doc: 'subtracted per completion token over lengthTarget (0 = off)', min: 0 },
    lengthTarget: { doc: 'tokens free of the length penalty', integer: true, min: 0 },
  },
  rollout: {
    prompts: { doc: 'prompts per RL step', integer: true, min: 1 },
    samplesPerPrompt: { doc: 'samples per prompt (the GRPO/RLOO group)', integer: true, min: 1 },
    maxNewTokens: { doc: 'completion token budget', integer: true, min: 1 },
    temperature: { doc: 'sampling temperature (> 0: the policy gradient needs samples from π)', min: 0 },
    topK: { doc: 'top-k filter (0 = off)', integer: true, min: 0 },
    topP: { doc: 'nucleus filter (1 = off)', min: 0 },
    ignoreEos: { doc: 'never stop at end-of-sequence (fixed-length completions, for benchmarks)' },
  },
  kl: {
    coef: { doc: 'KL coefficient β (initial, when adaptive)', min: 0 },
    estimator: { doc: 'per-token KL estimator (Schulman 2020)', oneOf: namesOf(KL_ESTIMATORS) },
    target: { doc: 'adaptive KL target in nats per sequence (0 = fixed β; Ziegler et al. 2019)', min: 0 },
    horizon: { doc: 'adaptive KL horizon in samples', min: 1 },
  },
  train: {
    steps: { doc: 'RL steps (rollout → score → advantages → update)', integer: true, min: 1 },
    epochs: { doc: 'passes over each rollout', integer: true, min: 1 },
    miniBatchSize: { doc: 'sequences per optimiser step (0 = whole rollout)', integer: true, min: 0 },
    microBatchSize: { doc: 'sequences per forward/backward (0 = the mini-batch)', integer: true, min: 0 },
    lr: { doc: 'AdamW learning rate (stories260K collapses at 3e-3)', min: 0 },
    weightDecay: { doc: 'AdamW decoupled weight decay', min: 0 },
    warmupSteps: { doc: 'linear warm-up, in optimiser steps', integer: true, min: 0 },
    schedule: { doc: 'learning-rate schedule after warm-up', oneOf: namesOf(SCHEDULES) },
    clipGradNorm: { doc: 'global gradient-norm clip (0 = off)', min: 0 },
    clipLow: { doc: 'PPO ratio clip below 1 (ε_low)', min: 0 },
    clipHigh: { doc: 'PPO ratio clip above 1 (ε_high; > clipLow = DAPO clip-higher)', min: 0 },
    dualClip: { doc: 'dual-clip bound c > 1 for negative advantages (0 = off)', min: 0 },
    lossNormalisation: { doc: 'per-token loss → scalar', oneOf: LOSS_NORMALISATIONS },
    entropyCoef: { doc: 'entropy bonus coefficient (0 = off)', min: 0 },
    checkpointEvery: { doc: 'checkpoint period in steps (0 = end only)', integer: true, min: 0 },
    evalEvery: { doc: 'evaluation period in steps (0 = start and end only)', integer: true, min: 0 },
    evalSamples: { doc: 'fresh samples per evaluation (0 = none)', integer: true, min: 0 },
    threads: THREADS_FIELD,
  },
  logging: LOGGING_SCHEMA,
};

/** Checks what the per-field schema cannot: fields that must fit together. */
export function checkOnlineConfig(cfg: OnlineConfig): void {
  const { reward, rollout, train } = cfg;
  if (reward.sources.length === 0) throw new Error('reward.sources is empty: name at least one source');
  if (reward.weights.length > 0 && reward.weights.length !== reward.sources.length) {
    throw new Error(`reward.weights has ${reward.weights.length} entries for ${reward.sources.length} reward.sources`);
  }
  if (!(rollout.temperature > 0)) throw new Error(`rollout.temperature must be > 0 for policy-gradient training, got ${rollout.temperature}`);
  if (!(rollout.topP > 0 && rollout.topP <= 1)) throw new Error(`rollout.topP must be in (0, 1], got ${rollout.topP}`);
  const n = rollout.prompts * rollout.samplesPerPrompt;
  const mini = train.miniBatchSize || n;
  if (n % mini !== 0) throw new Error(`train.miniBatchSize ${mini} must divide the rollout of ${n} sequences (rollout.prompts × rollout.samplesPerPrompt)`);
  const micro = train.microBatchSize || mini;
  if (mini % micro !== 0) throw new Error(`train.microBatchSize ${micro} must divide train.miniBatchSize ${mini}`);
  if (train.dualClip !== 0 && !(train.dualClip > 1)) throw new Error(`train.dualClip must be 0 (off) or > 1, got ${train.dualClip}`);
}
