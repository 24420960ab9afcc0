/**
 * The Direct Preference Optimization configuration (`rlhf train dpo --config FILE`), every field with
 * its default, units and meaning. Validated at load (src/config.ts): unknown keys and wrong types are
 * errors. DPO: Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a
 * Reward Model"; defaults after TRL's DPOConfig (β 0.1, sigmoid loss) scaled to stories260K.
 *
 * The same configuration trains the rest of the paired family through `loss.type`: IPO, robust DPO, and
 * the reference-free SimPO and ORPO (`rlhf train ipo|simpo|orpo` are `train dpo` with that type as default,
 * OFFLINE_METHOD_DEFAULTS below).
 */
import { LOGGING_DEFAULTS, LOGGING_SCHEMA, type LoggingFields } from '../../tensorboard.js';
import { PAIR_FORMATS, PREFERENCE_TRAIN_DEFAULTS } from '../offline.js';
import { SPLIT_KEYS, type SplitKey } from '../../data/split.js';
import { namesOf, SEED_RANGE, type Schema } from '../../config.js';
import { PREFERENCE_LOSSES, REFERENCE_FREE, type PreferenceLossType } from '../core/preference.js';
import { type EpochTrainFields, epochTrainSchema } from '../../nn/train-fields.js';
import { LORA_FIELD_DEFAULTS, LORA_SCHEMA, type LoraFields } from '../../nn/lora.js';

/** The config of `rlhf train dpo` and the paired family (loss.type): data, policy and reference, loss, optimisation. */
export interface DpoConfig {
  seed: number;
  /** Output directory: model/ (HF layout), checkpoint/, metrics.jsonl, reference-logprobs.json, eval.json. */
  out: string;
  data: {
    path: string;
    testPath: string;
    format: (typeof DPO_FORMATS)[number];
    splitSeed: number;
    splitRatio: number;
    splitKey: SplitKey;
    /** Longest prompt + response in tokens; longer pairs are dropped (and reported). */
    maxTokens: number;
    limit: number;
    skipInvalid: boolean;
  };
  model: {
    /** The policy's initial weights (and tokenizer): a model directory or 'stories260k'. */
    policy: string;
    /** The frozen reference π_ref ('' = the policy's initial weights); never loaded by SimPO and ORPO. */
    reference: string;
  };
  loss: {
    /** The preference loss (src/rlhf/core/preference.ts PREFERENCE_LOSSES). */
    type: PreferenceLossType;
    /** β of the implicit reward β log(π/π_ref) (SimPO: β log π/|y|): larger keeps the policy closer to the reference. */
    beta: number;
    /** ε of conservative (sigmoid) and robust DPO: the assumed probability that a preference label is flipped. */
    labelSmoothing: number;
    /** γ, SimPO's target margin between the length-normalised rewards. */
    simpoGamma: number;
    /** λ, the weight of ORPO's odds-ratio term next to its SFT loss. */
    orpoLambda: number;
  };
  /** LoRA adapters instead of the whole model (r > 0); the reference is then the policy with its adapters disabled. Saved merged in model/ and in PEFT's layout in adapter/. */
  lora: LoraFields;
  train: EpochTrainFields;
  /** TensorBoard event files (src/tensorboard.ts). */
  logging: LoggingFields;
}

/** The defaults of `rlhf train dpo`. */
export const DPO_DEFAULTS: DpoConfig = {
  seed: 0,
  out: 'runs/dpo',
  data: { path: '', testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0.8, splitKey: 'record', maxTokens: 256, limit: 0, skipInvalid: false },
  model: { policy: 'stories260k', reference: '' },
  loss: { type: 'sigmoid', beta: 0.1, labelSmoothing: 0, simpoGamma: 1, orpoLambda: 0.1 },
  lora: LORA_FIELD_DEFAULTS,
  train: { ...PREFERENCE_TRAIN_DEFAULTS },
  logging: { ...LOGGING_DEFAULTS },
};

/** Every paired `loss.type` (the keys of PREFERENCE_LOSSES). */
export const PREFERENCE_LOSS_TYPES: readonly PreferenceLossType[] = namesOf(PREFERENCE_LOSSES);

/**
 * The defaults of `rlhf train <method>` for the methods that are a loss of this trainer: the loss type,
 * the output directory, and the hyper-parameters whose scale differs from DPO's (SimPO's β multiplies a
 * per-token log-prob, so it is ~20× DPO's; Meng et al. 2024 use β 2–2.5 and γ/β ≈ 0.5).
 */
export const OFFLINE_METHOD_DEFAULTS: Readonly<Record<'dpo' | 'ipo' | 'simpo' | 'orpo', DpoConfig>> = {
  dpo: DPO_DEFAULTS,
  ipo: { ...DPO_DEFAULTS, out: 'runs/ipo', loss: { ...DPO_DEFAULTS.loss, type: 'ipo' } },
  simpo: { ...DPO_DEFAULTS, out: 'runs/simpo', loss: { ...DPO_DEFAULTS.loss, type: 'simpo', beta: 2 } },
  orpo: { ...DPO_DEFAULTS, out: 'runs/orpo', loss: { ...DPO_DEFAULTS.loss, type: 'orpo' } },
};

/** The data formats DPO reads: every pair format, and rankings as all the pairs they imply. */
export const DPO_FORMATS = PAIR_FORMATS;

/** The schema of DpoConfig: every field's doc and range. */
export const DPO_SCHEMA: Schema<DpoConfig> = {
  seed: { doc: 'seed of the data order', ...SEED_RANGE },
  out: { doc: 'output directory (model/, checkpoint/, metrics.jsonl, reference-logprobs.json, eval.json)' },
  data: {
    path: { doc: 'preference file (JSONL, JSONL.gz; SST-2 text for format sst2)' },
    testPath: { doc: 'separate held-out file (no split when set)' },
    format: { doc: 'record format (src/reward/pairs.ts); a ranking of K gives its K(K−1)/2 implied pairs', oneOf: DPO_FORMATS },
    splitSeed: { doc: 'seed of the train/held-out split (seeded hash, shared with `rlhf eval rm`)', ...SEED_RANGE },
    splitRatio: { doc: 'fraction of records in the training part', min: 0, max: 1 },
    splitKey: { doc: 'what the split hashes: each record, or its prompt (all comparisons of a prompt on one side)', oneOf: SPLIT_KEYS },
    maxTokens: { doc: 'drop pairs with a prompt + response over this many tokens', integer: true, min: 2 },
    limit: { doc: 'use at most this many training pairs (0 = all)', integer: true, min: 0 },
    skipInvalid: { doc: 'count and skip malformed records instead of failing' },
  },
  model: {
    policy: { doc: "model directory or 'stories260k': the policy's initial weights and the tokenizer" },
    reference: { doc: "frozen reference model directory ('' = the policy's initial weights); its tokenizer must match the policy's" },
  },
  loss: {
    type: {
      doc: 'preference loss (src/rlhf/core/preference.ts): sigmoid = DPO (Rafailov et al. 2023; with labelSmoothing, conservative DPO), ' +
        'ipo (Azar et al. 2023), robust (Chowdhury et al. 2024), simpo (Meng et al. 2024, no reference), orpo (Hong et al. 2024, no reference)',
      oneOf: PREFERENCE_LOSS_TYPES,
    },
    beta: { doc: 'β, inverse temperature of the implicit reward β·log(π/π_ref) (TRL default 0.1; IPO target margin 1/(2β) nats; SimPO: β·log π/|y|, Meng et al. use 2–2.5)', min: 0 },
    labelSmoothing: { doc: 'ε in [0, 0.5): the assumed label-flip probability, for sigmoid (conservative DPO, Mitchell 2023) and robust', min: 0, below: 0.5 },
    simpoGamma: { doc: "γ, SimPO's target margin between β·log π(c)/|c| and β·log π(r)/|r| (loss.type simpo)", min: 0 },
    orpoLambda: { doc: "λ, weight of ORPO's odds-ratio term next to the SFT loss on the chosen response (loss.type orpo; Hong et al. use 0.1)", min: 0 },
  },
  lora: LORA_SCHEMA,
  train: epochTrainSchema({
    epochs: 'passes over the training pairs',
    batchSize: 'pairs per micro-batch (2× sequences through the policy)',
    gradAccum: 'micro-batches per optimiser step (the loss is a mean over all their pairs)',
    evalEvery: 'held-out implicit-reward accuracy period in steps (0 = end only)',
    lr: 'peak AdamW learning rate (stories260K collapses near 3e-3)',
  }),
  logging: LOGGING_SCHEMA,
};

/** What the per-field schema cannot check. */
export function checkDpoConfig(cfg: DpoConfig): void {
  if (!(cfg.loss.labelSmoothing < 0.5)) throw new Error(`loss.labelSmoothing must be < 0.5 (0.5 makes every label a coin flip), got ${cfg.loss.labelSmoothing}`);
  if (!(cfg.loss.beta > 0)) throw new Error(`loss.beta must be > 0, got ${cfg.loss.beta}`);
  if (REFERENCE_FREE.has(cfg.loss.type) && cfg.model.reference) {
    throw new Error(`model.reference is set ('${cfg.model.reference}') but loss.type ${cfg.loss.type} uses no reference model: leave it ''`);
  }
  if (!(cfg.data.splitRatio <= 1)) throw new Error(`data.splitRatio must be in [0, 1], got ${cfg.data.splitRatio}`);
}
