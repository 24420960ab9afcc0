/**
 * The supervised fine-tuning configuration (`rlhf train sft --config FILE`), every field with its
 * default, units and meaning. Validated at load (src/config.ts): unknown keys and wrong types are errors.
 *
 * SFT is the first stage of the InstructGPT recipe (Ouyang et al. 2022, §3.5): maximum likelihood of
 * demonstration completions given their prompts. The loss covers completion tokens only (TRL's
 * `completion_only_loss`), averaged over every completion token of the optimiser step.
 */
import { LOGGING_DEFAULTS, LOGGING_SCHEMA, type LoggingFields } from '../../tensorboard.js';
import { SPLIT_KEYS, type SplitKey } from '../../data/split.js';
import { SEED_RANGE, type Schema } from '../../config.js';
import { type EpochTrainFields, epochTrainSchema } from '../../nn/train-fields.js';
import { LORA_FIELD_DEFAULTS, LORA_SCHEMA, type LoraFields } from '../../nn/lora.js';

/** The config of `rlhf train sft`: data, the policy, completion-only loss and packing, optimisation. */
export interface SftConfig {
  seed: number;
  /** Output directory: model/ (HF layout), checkpoint/, metrics.jsonl. */
  out: string;
  data: {
    path: string;
    /** A separate held-out file (then `path` is all training data and no split is made). */
    testPath: string;
    /** 'completion': {"prompt", "completion"} or {"text"} lines; a pair format trains on the chosen response. */
    format: (typeof SFT_FORMATS)[number];
    splitSeed: number;
    /** Fraction of records in the training part (1 = no held-out part unless testPath). */
    splitRatio: number;
    splitKey: SplitKey;
    skipInvalid: boolean;
    /** Longest example (prompt + completion + EOS) in tokens; longer ones are dropped. With packing: the row length. */
    maxTokens: number;
    limit: number;
    /** Append the model's end-of-sequence id to each completion, so the policy learns to stop. */
    appendEos: boolean;
    /** Pack several examples into rows of maxTokens (block-diagonal attention, positions restart per example). */
    packing: boolean;
  };
  model: {
    /** The policy to fine-tune: a model directory or 'stories260k'. */
    policy: string;
    /** Recompute each transformer block in backward (the same gradients, activation memory of one block; one more forward). */
    gradientCheckpointing: boolean;
  };
  /** LoRA adapters instead of the whole model (r > 0); saved merged in model/ and in PEFT's layout in adapter/. */
  lora: LoraFields;
  /** batchSize counts rows (examples, or packed rows with data.packing); evalEvery is the held-out loss. */
  train: EpochTrainFields;
  /** TensorBoard event files (src/tensorboard.ts). */
  logging: LoggingFields;
}

/** The defaults of `rlhf train sft`. */
export const SFT_DEFAULTS: SftConfig = {
  seed: 0,
  out: 'runs/sft',
  data: {
    path: '', testPath: '', format: 'completion', splitSeed: 0, splitRatio: 1, splitKey: 'record', skipInvalid: false,
    maxTokens: 256, limit: 0, appendEos: true, packing: false,
  },
  model: { policy: 'stories260k', gradientCheckpointing: false },
  lora: LORA_FIELD_DEFAULTS,
  train: {
    epochs: 1, batchSize: 8, gradAccum: 1, optimizer: 'adamw', lr: 1e-4, weightDecay: 0, warmupSteps: 10, schedule: 'cosine',
    maxSteps: 0, clipGradNorm: 1, evalEvery: 0, checkpointEvery: 0, threads: 0,
  },
  logging: { ...LOGGING_DEFAULTS },
};

/** The data formats SFT reads; the pair formats train on the chosen response (src/reward/pairs.ts). */
export const SFT_FORMATS = ['completion', 'pairwise', 'hh-rlhf', 'summarize', 'sst2'] as const;

/** The schema of SftConfig. */
export const SFT_SCHEMA: Schema<SftConfig> = {
  seed: { doc: 'seed of the data order and of the split', ...SEED_RANGE },
  out: { doc: 'output directory (model/, checkpoint/, metrics.jsonl)' },
  data: {
    path: { doc: "JSONL file: {prompt, completion} or {text} lines (format completion), or a pair file whose chosen response is trained on" },
    testPath: { doc: 'separate held-out file (no split when set)' },
    format: { doc: 'record format', oneOf: SFT_FORMATS },
    splitSeed: { doc: 'seed of the train/held-out split (seeded hash of each record, src/data/split.ts)', ...SEED_RANGE },
    splitRatio: { doc: 'fraction of records in the training part (1 = all; held-out loss needs < 1 or testPath)', min: 0, max: 1 },
    splitKey: { doc: 'what the split hashes: each record, or its prompt', oneOf: SPLIT_KEYS },
    skipInvalid: { doc: 'count and skip malformed records instead of failing' },
    maxTokens: { doc: 'drop examples over this many tokens (prompt + completion + EOS); with packing, the packed row length', integer: true, min: 2 },
    limit: { doc: 'use at most this many training examples (0 = all)', integer: true, min: 0 },
    appendEos: { doc: "append the model's first end-of-sequence id to every completion (trained on)" },
    packing: { doc: 'pack examples into rows of maxTokens; attention never crosses an example boundary and positions restart at 0' },
  },
  model: {
    policy: { doc: "model directory or 'stories260k': the weights to fine-tune, and the tokenizer" },
    gradientCheckpointing: { doc: 'recompute each transformer block in backward: the same gradients, one block\'s activations held instead of all, one more forward of the blocks' },
  },
  lora: LORA_SCHEMA,
  train: epochTrainSchema({
    epochs: 'passes over the training examples',
    batchSize: 'rows per micro-batch (an example, or a packed row)',
    gradAccum: 'micro-batches per optimiser step (the loss is a mean over all their completion tokens)',
    evalEvery: 'held-out loss period in steps (0 = end only)',
    lr: 'peak AdamW learning rate (stories260K collapses near 3e-3)',
  }),
  logging: LOGGING_SCHEMA,
};
