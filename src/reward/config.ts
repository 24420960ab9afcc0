/**
 * The reward-model training configuration (`rlhf train rm --config FILE`), every field with its
 * default, units and meaning. Validated at load (src/config.ts): unknown keys and wrong types are errors.
 */
import type { Schema } from '../config.js';

export interface RewardTrainConfig {
  seed: number;
  /** Output directory: the model, checkpoints/, metrics.jsonl. */
  out: string;
  data: {
    path: string;
    /** A separate held-out file (then `path` is all training data and no split is made). */
    testPath: string;
    format: string;
    /** Held-out split shared with `rlhf eval rm`: records whose seeded hash falls below `ratio` train. */
    splitSeed: number;
    splitRatio: number;
    /** 'prompt' keeps every comparison of one prompt on the same side (several per post in summarize). */
    splitKey: string;
    skipInvalid: boolean;
    /** Longest prompt + response in tokens; longer pairs are dropped (and reported). */
    maxTokens: number;
    /** Use at most this many training pairs (0 = all). */
    limit: number;
  };
  model: {
    /** 'pretrained': the backbone's weights from `base`; 'scratch': `base`'s architecture, fresh weights of `scratch` size. */
    init: string;
    /** A model directory or 'stories260k': the architecture and, if pretrained, the weights. */
    base: string;
    /** A tokenizer directory for a scratch backbone ('' = the base's tokenizer). */
    tokenizer: string;
    /** Backbone size for init 'scratch' (Llama family). */
    scratch: { hiddenSize: number; layers: number; heads: number; intermediateSize: number; maxPositions: number };
    /** Scalar heads on the backbone: > 1 is an ensemble sharing it (aggregated at use). */
    heads: number;
    /** Train only the head (the backbone frozen). */
    headOnly: boolean;
  };
  loss: {
    type: string;
    /** Bradley–Terry margin (a constant; 0 = none). */
    margin: number;
    /** Label smoothing ε for the conservative BT loss. */
    labelSmoothing: number;
    /** TRL's reward-centring coefficient (0 = off). */
    centerCoef: number;
  };
  train: {
    epochs: number;
    /** Pairs per micro-batch (chosen and rejected go through the model together: 2× sequences). */
    batchSize: number;
    /** Micro-batches per optimiser step. */
    gradAccum: number;
    lr: number;
    weightDecay: number;
    warmupSteps: number;
    schedule: string;
    /** Stop after this many optimiser steps (0 = run the epochs). */
    maxSteps: number;
    /** Clip the global gradient norm (0 = off). */
    clipGradNorm: number;
    /** Evaluate on held-out pairs every this many steps (0 = only at the end). */
    evalEvery: number;
    /** Held-out pairs used by periodic evaluation (0 = all). */
    evalLimit: number;
    /** Save a resumable checkpoint every this many steps (0 = only at the end). */
    checkpointEvery: number;
    /** Intra-op threads (libtorch and OpenBLAS); 0 = leave the default. */
    threads: number;
  };
}

export const REWARD_DEFAULTS: RewardTrainConfig = {
  seed: 0,
  out: 'runs/rm',
  data: { path: '', testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0.8, splitKey: 'record', skipInvalid: false, maxTokens: 256, limit: 0 },
  model: {
    init: 'pretrained', base: 'stories260k', tokenizer: '',
    scratch: { hiddenSize: 64, layers: 2, heads: 4, intermediateSize: 172, maxPositions: 512 },
    heads: 1, headOnly: false,
  },
  loss: { type: 'bradley_terry', margin: 0, labelSmoothing: 0, centerCoef: 0 },
  train: {
    epochs: 1, batchSize: 16, gradAccum: 1, lr: 1e-3, weightDecay: 0.01, warmupSteps: 10, schedule: 'cosine',
    maxSteps: 0, clipGradNorm: 1, evalEvery: 0, evalLimit: 512, checkpointEvery: 0, threads: 0,
  },
};

export const REWARD_SCHEMA: Schema<RewardTrainConfig> = {
  seed: { doc: 'seed for initialisation and data order', integer: true },
  out: { doc: 'output directory' },
  data: {
    path: { doc: 'feedback file (JSONL, JSONL.gz; SST-2 text for format sst2)' },
    testPath: { doc: 'separate held-out file (no split when set)' },
    format: { doc: 'record format', oneOf: ['pairwise', 'hh-rlhf', 'summarize', 'sst2'] },
    splitSeed: { doc: 'seed of the train/held-out split', integer: true },
    splitRatio: { doc: 'fraction of records in the training part', min: 0 },
    splitKey: { doc: "what the split hashes: each record, or its prompt (all comparisons of a prompt on one side)", oneOf: ['record', 'prompt'] },
    skipInvalid: { doc: 'count and skip malformed records instead of failing' },
    maxTokens: { doc: 'drop pairs whose prompt + response exceeds this many tokens', integer: true, min: 1 },
    limit: { doc: 'use at most this many training pairs (0 = all)', integer: true, min: 0 },
  },
  model: {
    init: { doc: 'backbone initialisation', oneOf: ['pretrained', 'scratch'] },
    base: { doc: "model directory or 'stories260k' (architecture, tokenizer and, if pretrained, weights)" },
    tokenizer: { doc: "tokenizer directory for init 'scratch' (e.g. assets/gpt2-bpe); '' = the base's" },
    scratch: {
      hiddenSize: { doc: 'scratch backbone width', integer: true, min: 8 },
      layers: { doc: 'scratch backbone layers', integer: true, min: 1 },
      heads: { doc: 'scratch attention heads', integer: true, min: 1 },
      intermediateSize: { doc: 'scratch MLP width', integer: true, min: 1 },
      maxPositions: { doc: 'scratch context length', integer: true, min: 8 },
    },
    heads: { doc: 'number of scalar heads (an ensemble on one backbone)', integer: true, min: 1 },
    headOnly: { doc: 'freeze the backbone, train the head only' },
  },
  loss: {
    type: { doc: 'loss (src/reward/losses.ts)', oneOf: ['bradley_terry', 'label_smoothed_bt'] },
    margin: { doc: 'Bradley–Terry margin', min: 0 },
    labelSmoothing: { doc: 'ε for the label-smoothed BT loss', min: 0 },
    centerCoef: { doc: "reward-centring coefficient (TRL's center_rewards_coefficient)", min: 0 },
  },
  train: {
    epochs: { doc: 'passes over the training pairs', integer: true, min: 1 },
    batchSize: { doc: 'pairs per micro-batch', integer: true, min: 1 },
    gradAccum: { doc: 'micro-batches per optimiser step', integer: true, min: 1 },
    lr: { doc: 'peak AdamW learning rate', min: 0 },
    weightDecay: { doc: 'AdamW decoupled weight decay', min: 0 },
    warmupSteps: { doc: 'linear warm-up steps', integer: true, min: 0 },
    schedule: { doc: 'learning-rate schedule after warm-up', oneOf: ['constant', 'linear', 'cosine'] },
    maxSteps: { doc: 'stop after this many optimiser steps (0 = run the epochs)', integer: true, min: 0 },
    clipGradNorm: { doc: 'global gradient-norm clip (0 = off)', min: 0 },
    evalEvery: { doc: 'held-out evaluation period in steps (0 = end only)', integer: true, min: 0 },
    evalLimit: { doc: 'held-out pairs used by periodic evaluation (0 = all)', integer: true, min: 0 },
    checkpointEvery: { doc: 'checkpoint period in steps (0 = end only)', integer: true, min: 0 },
    threads: { doc: 'libtorch + OpenBLAS threads (0 = default)', integer: true, min: 0 },
  },
};
