/**
 * The optimisation-loop fields of every trainer that makes epochs over a dataset (reward models, SFT,
 * DPO and its family, KTO): one interface and one schema, each trainer naming its own unit (records,
 * examples, pairs, completions) and what its periodic evaluation measures.
 */
import { MAX_THREADS, type FieldDoc, namesOf, type Schema } from '../config.js';
import { SCHEDULES, type ScheduleKind } from './schedule.js';
import { AdamW, type Optimizer, type ParamGroup, SGD, type Tensor } from '../tensor/index.js';

/**
 * The optimisers an epoch trainer can run, by config name. AdamW is the default everywhere; plain SGD (no
 * momentum, weightDecay as an L2 term) makes a step exactly lr × the accumulated gradient, which is what a
 * test of gradient accumulation can bound (Adam's first step, ≈ lr·sign(g), turns float noise in
 * near-zero gradients into full-size steps).
 */
export const OPTIMIZERS = {
  /** Fused (one multi-tensor kernel per step) where libtorch has it (≥ 2.4), else per-parameter ops. */
  adamw: (params: Tensor[], t: EpochTrainFields): Optimizer => new AdamW(decayGroups(params, t.weightDecay), { lr: t.lr, weightDecay: t.weightDecay }),
  /** libtorch's per-parameter torch::optim::AdamW on any libtorch (the same state: a checkpoint resumes under either). */
  'adamw-unfused': (params: Tensor[], t: EpochTrainFields): Optimizer =>
    new AdamW(decayGroups(params, t.weightDecay), { lr: t.lr, weightDecay: t.weightDecay, fused: false }),
  sgd: (params: Tensor[], t: EpochTrainFields): Optimizer => new SGD(decayGroups(params, t.weightDecay), { lr: t.lr, weightDecay: t.weightDecay }),
} as const;

/**
 * Weight decay on matrices and embeddings only: biases and norm gains (the 1-D parameters) get none, as
 * Hugging Face's Trainer (no decay for bias and LayerNorm weights) and nanoGPT (no decay below 2-D) do —
 * decaying a norm's gain pulls it toward 0, which only rescales the next layer's input. The groups are runs
 * of consecutive parameters, so the parameters keep their order (and a checkpoint's optimiser state its meaning).
 */
export function decayGroups(params: readonly Tensor[], weightDecay: number): ParamGroup[] {
  const groups: { params: Tensor[]; weightDecay: number }[] = [];
  for (const p of params) {
    const wd = p.ndim >= 2 ? weightDecay : 0;
    const last = groups.at(-1);
    if (last && last.weightDecay === wd) last.params.push(p);
    else groups.push({ params: [p], weightDecay: wd });
  }
  return groups;
}
/** The epoch trainers' optimisers by name. */
export type OptimizerName = keyof typeof OPTIMIZERS;

/** The optimiser `t.optimizer` names, over `params`. */
export function epochOptimizer(params: Tensor[], t: EpochTrainFields): Optimizer {
  return OPTIMIZERS[t.optimizer](params, t);
}

/** The optimisation fields every epoch trainer shares (`rlhf train rm|sft|dpo|kto`): batch, accumulation, optimiser, schedule, clip, periods, threads. */
export interface EpochTrainFields {
  /** Passes over the training data. */
  epochs: number;
  /** Units per micro-batch (the trainer says which). */
  batchSize: number;
  /** Micro-batches per optimiser step. */
  gradAccum: number;
  /** The optimiser (OPTIMIZERS): 'adamw' (fused where libtorch has it), 'adamw-unfused' or 'sgd'. */
  optimizer: OptimizerName;
  /** Peak learning rate. */
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  /** Learning-rate schedule after warm-up (src/nn/schedule.ts). */
  schedule: ScheduleKind;
  /** Stop after this many optimiser steps (0 = run the epochs). */
  maxSteps: number;
  /** Clip the global gradient norm (0 = off). */
  clipGradNorm: number;
  /** Periodic held-out evaluation every this many steps (0 = only at the end). */
  evalEvery: number;
  checkpointEvery: number;
  /** libtorch + OpenBLAS threads (0 = leave the default). */
  threads: number;
}

/** libtorch + OpenBLAS threads, as every trainer's config spells it. */
export const THREADS_FIELD: FieldDoc = { doc: 'libtorch + OpenBLAS threads (0 = default)', integer: true, min: 0, max: MAX_THREADS };

/** The schema of EpochTrainFields with the trainer's own words for its unit and its evaluation. */
export function epochTrainSchema(docs: { epochs: string; batchSize: string; gradAccum: string; evalEvery: string; lr?: string }): Schema<EpochTrainFields> {
  return {
    // The upper bounds only refuse nonsense (1e300 micro-batches per step would run forever).
    epochs: { doc: docs.epochs, integer: true, min: 1, max: 1e6 },
    batchSize: { doc: docs.batchSize, integer: true, min: 1, max: 1 << 20 },
    gradAccum: { doc: docs.gradAccum, integer: true, min: 1, max: 1 << 16 },
    optimizer: {
      doc: "'adamw' (default; libtorch's fused kernel where it has one, ≥ 2.4), 'adamw-unfused' (per-parameter ops) or 'sgd' (plain steps of lr × the gradient; weightDecay then an L2 term)",
      oneOf: namesOf(OPTIMIZERS),
    },
    lr: { doc: docs.lr ?? 'peak learning rate', min: 0 },
    weightDecay: { doc: 'weight decay: decoupled for AdamW (Loshchilov & Hutter 2019), L2 for SGD', min: 0 },
    warmupSteps: { doc: 'linear warm-up steps', integer: true, min: 0 },
    schedule: { doc: 'learning-rate schedule after warm-up (src/nn/schedule.ts, as transformers)', oneOf: namesOf(SCHEDULES) },
    maxSteps: { doc: 'stop after this many optimiser steps (0 = run the epochs)', integer: true, min: 0 },
    clipGradNorm: { doc: 'global gradient-norm clip (0 = off)', min: 0 },
    evalEvery: { doc: docs.evalEvery, integer: true, min: 0 },
    checkpointEvery: { doc: 'checkpoint period in steps (0 = end only)', integer: true, min: 0 },
    threads: THREADS_FIELD,
  };
}
