/**
 * The Kahneman–Tversky Optimization configuration (`rlhf train kto --config FILE`), every field with its
 * default, units and meaning. Validated at load (src/config.ts): unknown keys and wrong types are errors.
 * KTO: Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization"; defaults after
 * TRL's KTOConfig (β 0.1, λ_D = λ_U = 1) with DPO's training defaults for stories260K.
 *
 * KTO learns from unpaired feedback — one completion with a thumbs up or down, format `binary`
 * ({prompt, completion, label}) — and is evaluated on held-out PAIRS (data.testPath), by the implicit
 * reward β(log π − log π_ref) as DPO is, so the two are compared on the same footing.
 */
import { LOGGING_DEFAULTS, LOGGING_SCHEMA, type LoggingFields } from '../../tensorboard.js';
import { SEED_RANGE, type Schema } from '../../config.js';
import { type EpochTrainFields, epochTrainSchema } from '../../nn/train-fields.js';
import { LORA_FIELD_DEFAULTS, LORA_SCHEMA, type LoraFields } from '../../nn/lora.js';
import { PAIR_FORMATS, PREFERENCE_TRAIN_DEFAULTS } from '../offline.js';

/** The config of `rlhf train kto`: unpaired data, policy and reference, KTO's loss, optimisation. */
export interface KtoConfig {
  seed: number;
  /** Output directory: model/ (HF layout), checkpoint/, metrics.jsonl, reference-logprobs.json, eval.json. */
  out: string;
  data: {
    /** Unpaired feedback, format binary: {prompt, completion, label} JSONL (all of it trains). */
    path: string;
    format: 'binary';
    /** Held-out preference pairs, evaluated by implicit-reward accuracy ('' = no evaluation). */
    testPath: string;
    /** The format of testPath (a pair format, or rankings as their implied pairs). */
    testFormat: string;
    /** Longest prompt + completion in tokens; longer records are dropped (and reported). */
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
    /** β of the reward β(log π − log π_ref) inside the value function. */
    beta: number;
    /** λ_D, the weight of desirable completions. */
    desirableWeight: number;
    /** λ_U, the weight of undesirable completions. */
    undesirableWeight: number;
  };
  /** LoRA adapters instead of the whole model (r > 0); the reference is then the policy with its adapters disabled. Saved merged in model/ and in PEFT's layout in adapter/. */
  lora: LoraFields;
  train: EpochTrainFields;
  /** TensorBoard event files (src/tensorboard.ts). */
  logging: LoggingFields;
}

/** The defaults of `rlhf train kto`. */
export const KTO_DEFAULTS: KtoConfig = {
  seed: 0,
  out: 'runs/kto',
  data: { path: '', format: 'binary', testPath: '', testFormat: 'pairwise', maxTokens: 256, limit: 0, skipInvalid: false },
  model: { policy: 'stories260k', reference: '' },
  loss: { beta: 0.1, desirableWeight: 1, undesirableWeight: 1 },
  lora: LORA_FIELD_DEFAULTS,
  train: { ...PREFERENCE_TRAIN_DEFAULTS },
  logging: { ...LOGGING_DEFAULTS },
};

/** The schema of KtoConfig. */
export const KTO_SCHEMA: Schema<KtoConfig> = {
  seed: { doc: 'seed of the data order', ...SEED_RANGE },
  out: { doc: 'output directory (model/, checkpoint/, metrics.jsonl, reference-logprobs.json, eval.json)' },
  data: {
    path: { doc: 'unpaired feedback JSONL: {prompt, completion, label: true|false} per line (`rlhf sample sentiment-labels`)' },
    format: { doc: 'record format: binary only (KTO is unpaired; pairs train with `rlhf train dpo|ipo|simpo|orpo`)', oneOf: ['binary'] },
    testPath: { doc: "held-out preference pairs for implicit-reward accuracy ('' = none)" },
    testFormat: { doc: 'format of testPath (src/reward/pairs.ts); a ranking gives its implied pairs', oneOf: PAIR_FORMATS },
    maxTokens: { doc: 'drop records with a prompt + completion over this many tokens', integer: true, min: 2 },
    limit: { doc: 'use at most this many training completions (0 = all)', integer: true, min: 0 },
    skipInvalid: { doc: 'count and skip malformed records instead of failing' },
  },
  model: {
    policy: { doc: "model directory or 'stories260k': the policy's initial weights and the tokenizer" },
    reference: { doc: "frozen reference model directory ('' = the policy's initial weights); its tokenizer must match the policy's" },
  },
  loss: {
    beta: { doc: 'β of the reward β(log π − log π_ref) in the value function (TRL default 0.1)', min: 0 },
    desirableWeight: { doc: 'λ_D, the weight of desirable completions (Ethayarajh et al.: keep λ_D·n_D / (λ_U·n_U) in [1, 4/3])', min: 0 },
    undesirableWeight: { doc: 'λ_U, the weight of undesirable completions', min: 0 },
  },
  lora: LORA_SCHEMA,
  train: epochTrainSchema({
    epochs: 'passes over the training completions',
    batchSize: 'completions per micro-batch',
    gradAccum: 'micro-batches per optimiser step (the loss is a mean over all their completions)',
    evalEvery: 'held-out implicit-reward accuracy period in steps (0 = end only)',
    lr: 'peak AdamW learning rate (stories260K collapses near 3e-3)',
  }),
  logging: LOGGING_SCHEMA,
};

/** What the per-field schema cannot check. */
export function checkKtoConfig(cfg: KtoConfig): void {
  if (!(cfg.loss.beta > 0)) throw new Error(`loss.beta must be > 0, got ${cfg.loss.beta}`);
  if (!(cfg.loss.desirableWeight > 0 || cfg.loss.undesirableWeight > 0)) throw new Error('loss.desirableWeight and loss.undesirableWeight are both 0: nothing to learn');
}
