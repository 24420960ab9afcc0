/**
 * The Direct Preference Optimization configuration (`rlhf train dpo --config FILE`), every field with
 * its default, units and meaning. Validated at load (src/config.ts): unknown keys and wrong types are
 * errors. DPO: Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a
 * Reward Model"; defaults after TRL's DPOConfig (β 0.1, sigmoid loss) scaled to stories260K.
 */
import type { Schema } from '../../config.js';
import type { OfflineTrainFields } from '../offline.js';

export interface DpoConfig {
  seed: number;
  /** Output directory: model/ (HF layout), checkpoint/, metrics.jsonl, reference-logprobs.json, eval.json. */
  out: string;
  data: {
    path: string;
    testPath: string;
    format: string;
    splitSeed: number;
    splitRatio: number;
    splitKey: string;
    /** Longest prompt + response in tokens; longer pairs are dropped (and reported). */
    maxTokens: number;
    limit: number;
    skipInvalid: boolean;
  };
  model: {
    /** The policy's initial weights (and tokenizer): a model directory or 'stories260k'. */
    policy: string;
    /** The frozen reference π_ref ('' = the policy's initial weights). */
    reference: string;
  };
  loss: {
    type: string;
    /** β of the implicit reward β log(π/π_ref): larger keeps the policy closer to the reference. */
    beta: number;
    /** ε of conservative DPO: the assumed probability that a preference label is flipped. */
    labelSmoothing: number;
  };
  train: OfflineTrainFields;
}

export const DPO_DEFAULTS: DpoConfig = {
  seed: 0,
  out: 'runs/dpo',
  data: { path: '', testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0.8, splitKey: 'record', maxTokens: 256, limit: 0, skipInvalid: false },
  model: { policy: 'stories260k', reference: '' },
  loss: { type: 'sigmoid', beta: 0.1, labelSmoothing: 0 },
  train: {
    epochs: 1, batchSize: 16, gradAccum: 1, lr: 1e-4, weightDecay: 0, warmupSteps: 10, schedule: 'cosine',
    maxSteps: 0, clipGradNorm: 1, evalEvery: 0, checkpointEvery: 0, threads: 0,
  },
};

/** The data formats DPO reads: every pair format, and rankings as all the pairs they imply. */
export const DPO_FORMATS = ['pairwise', 'hh-rlhf', 'summarize', 'sst2', 'ranking'] as const;

export const DPO_SCHEMA: Schema<DpoConfig> = {
  seed: { doc: 'seed of the data order', integer: true },
  out: { doc: 'output directory (model/, checkpoint/, metrics.jsonl, reference-logprobs.json, eval.json)' },
  data: {
    path: { doc: 'preference file (JSONL, JSONL.gz; SST-2 text for format sst2)' },
    testPath: { doc: 'separate held-out file (no split when set)' },
    format: { doc: 'record format (src/reward/pairs.ts); a ranking of K gives its K(K−1)/2 implied pairs', oneOf: DPO_FORMATS },
    splitSeed: { doc: 'seed of the train/held-out split (seeded hash, shared with `rlhf eval rm`)', integer: true },
    splitRatio: { doc: 'fraction of records in the training part', min: 0 },
    splitKey: { doc: 'what the split hashes: each record, or its prompt (all comparisons of a prompt on one side)', oneOf: ['record', 'prompt'] },
    maxTokens: { doc: 'drop pairs with a prompt + response over this many tokens', integer: true, min: 2 },
    limit: { doc: 'use at most this many training pairs (0 = all)', integer: true, min: 0 },
    skipInvalid: { doc: 'count and skip malformed records instead of failing' },
  },
  model: {
    policy: { doc: "model directory or 'stories260k': the policy's initial weights and the tokenizer" },
    reference: { doc: "frozen reference model directory ('' = the policy's initial weights); its tokenizer must match the policy's" },
  },
  loss: {
    type: { doc: 'preference loss (src/rlhf/core/preference.ts): sigmoid = DPO (Rafailov et al. 2023)', oneOf: ['sigmoid'] },
    beta: { doc: 'β, inverse temperature of the implicit reward β·log(π/π_ref) (TRL default 0.1)', min: 0 },
    labelSmoothing: { doc: 'ε in [0, 0.5): conservative DPO, the assumed label-flip probability (Mitchell 2023)', min: 0 },
  },
  train: {
    epochs: { doc: 'passes over the training pairs', integer: true, min: 1 },
    batchSize: { doc: 'pairs per micro-batch (2× sequences through the policy)', integer: true, min: 1 },
    gradAccum: { doc: 'micro-batches per optimiser step (the loss is a mean over all their pairs)', integer: true, min: 1 },
    lr: { doc: 'peak AdamW learning rate (stories260K collapses near 3e-3, ../shared/FINDINGS.md)', min: 0 },
    weightDecay: { doc: 'AdamW decoupled weight decay (Loshchilov & Hutter 2019)', min: 0 },
    warmupSteps: { doc: 'linear warm-up steps', integer: true, min: 0 },
    schedule: { doc: 'learning-rate schedule after warm-up (src/nn/schedule.ts, as transformers)', oneOf: ['constant', 'linear', 'cosine'] },
    maxSteps: { doc: 'stop after this many optimiser steps (0 = run the epochs)', integer: true, min: 0 },
    clipGradNorm: { doc: 'global gradient-norm clip (0 = off)', min: 0 },
    evalEvery: { doc: 'held-out implicit-reward accuracy period in steps (0 = end only)', integer: true, min: 0 },
    checkpointEvery: { doc: 'checkpoint period in steps (0 = end only)', integer: true, min: 0 },
    threads: { doc: 'libtorch + OpenBLAS threads (0 = default)', integer: true, min: 0 },
  },
};

/** What the per-field schema cannot check. */
export function checkDpoConfig(cfg: DpoConfig): void {
  if (!(cfg.loss.labelSmoothing < 0.5)) throw new Error(`loss.labelSmoothing must be < 0.5 (0.5 makes every label a coin flip), got ${cfg.loss.labelSmoothing}`);
  if (!(cfg.loss.beta > 0)) throw new Error(`loss.beta must be > 0, got ${cfg.loss.beta}`);
  if (!(cfg.data.splitRatio <= 1)) throw new Error(`data.splitRatio must be in [0, 1], got ${cfg.data.splitRatio}`);
}
