/**
 * The reward-model training configuration (`rlhf train rm --config FILE`), every field with its
 * default, units and meaning. Validated at load (src/config.ts): unknown keys and wrong types are errors.
 */
import { LOGGING_DEFAULTS, LOGGING_SCHEMA, type LoggingFields } from '../tensorboard.js';
import { namesOf, SEED_RANGE, type Schema } from '../config.js';
import { type EpochTrainFields, epochTrainSchema } from '../nn/train-fields.js';
import { LORA_FIELD_DEFAULTS, LORA_SCHEMA, type LoraFields } from '../nn/lora.js';
import { type AggregatorName, ENSEMBLE_AGGREGATORS } from './ensemble.js';
import { FORMAT_KINDS, formatKind, type RewardFormat, type RewardRecordKind } from './pairs.js';
import { SPLIT_KEYS, type SplitKey } from '../data/split.js';

/** How a reward model's backbone starts: the base's weights, or fresh weights of the scratch size. */
export const BACKBONE_INITS = ['pretrained', 'scratch'] as const;
export type BackboneInit = (typeof BACKBONE_INITS)[number];

/** The config of `rlhf train rm`: data, backbone, heads or ensemble, loss and optimisation. */
export interface RewardTrainConfig {
  seed: number;
  /** Output directory: the model, checkpoints/, metrics.jsonl. */
  out: string;
  data: {
    path: string;
    /** A separate held-out file (then `path` is all training data and no split is made). */
    testPath: string;
    format: RewardFormat;
    /** Held-out split shared with `rlhf eval rm`: records whose seeded hash falls below `ratio` train. */
    splitSeed: number;
    splitRatio: number;
    /** 'prompt' keeps every comparison of one prompt on the same side (several per post in summarize). */
    splitKey: SplitKey;
    skipInvalid: boolean;
    /** Longest prompt + response in tokens; longer pairs are dropped (and reported). */
    maxTokens: number;
    /** Use at most this many training records (0 = all). */
    limit: number;
  };
  model: {
    /** 'pretrained': the backbone's weights from `base`; 'scratch': `base`'s architecture, fresh weights of `scratch` size. */
    init: BackboneInit;
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
    /**
     * K independent reward models, each its own backbone and head (Coste et al. 2023, "Reward model
     * ensembles help mitigate overoptimization"). Member k trains with seed + k on bootstrap resample k of
     * the training records (ensemble.ts `bootstrapIndices`), in out/member-k/ with its own checkpoint;
     * out/model/ensemble.json lists the members and the default aggregation (ensemble-model.ts).
     */
    ensemble: {
      /** Number of members K (0 = no ensemble: one model in out/model). */
      members: number;
      /** Train each member on a bootstrap resample (false: every member on all records, seeds differ). */
      bootstrap: boolean;
      /** Default aggregation of the members' rewards (ensemble.ts); also used by heads > 1. */
      aggregation: AggregatorName;
      /** λ of mean_minus_std and uwo (reward units, reward² for uwo). */
      lambda: number;
    };
  };
  loss: {
    /** Must fit data.format: pairs train with BT, label-smoothed BT or PL (K = 2), rankings with PL, ratings with gaussian. */
    type: RewardTrainLoss;
    /** Bradley–Terry margin (a constant; 0 = none). */
    margin: number;
    /** Add each pair record's own `margin` (the feedback app's strength) to `margin`. */
    recordMargins: boolean;
    /** Weight each pair's loss by its record's `weight` (the feedback app's annotator reliability); records without one weigh 1. */
    recordWeights: boolean;
    /** Label smoothing ε for the conservative BT loss. */
    labelSmoothing: number;
    /** TRL's reward-centring coefficient (0 = off); pairwise data only. */
    centerCoef: number;
    /** Observation noise σ of the gaussian rating loss, in standardised rating units. */
    sigma: number;
  };
  /** LoRA adapters on the backbone (r > 0) with the score head trained in full; the model is saved merged. */
  lora: LoraFields;
  train: EpochTrainFields & {
    /** Held-out records used by periodic evaluation (0 = all). */
    evalLimit: number;
  };
  /** TensorBoard event files (src/tensorboard.ts). */
  logging: LoggingFields;
}

/** The defaults of `rlhf train rm`. */
export const REWARD_DEFAULTS: RewardTrainConfig = {
  seed: 0,
  out: 'runs/rm',
  data: { path: '', testPath: '', format: 'pairwise', splitSeed: 0, splitRatio: 0.8, splitKey: 'record', skipInvalid: false, maxTokens: 256, limit: 0 },
  model: {
    init: 'pretrained', base: 'stories260k', tokenizer: '',
    scratch: { hiddenSize: 64, layers: 2, heads: 4, intermediateSize: 172, maxPositions: 512 },
    heads: 1, headOnly: false,
    ensemble: { members: 0, bootstrap: true, aggregation: 'mean', lambda: 1 },
  },
  loss: { type: 'bradley_terry', margin: 0, recordMargins: false, recordWeights: false, labelSmoothing: 0, centerCoef: 0, sigma: 1 },
  lora: LORA_FIELD_DEFAULTS,
  train: {
    epochs: 1, batchSize: 16, gradAccum: 1, optimizer: 'adamw', lr: 1e-3, weightDecay: 0.01, warmupSteps: 10, schedule: 'cosine',
    maxSteps: 0, clipGradNorm: 1, evalEvery: 0, checkpointEvery: 0, threads: 0, evalLimit: 512,
  },
  logging: { ...LOGGING_DEFAULTS },
};

/** The loss types `rlhf train rm` trains with. */
export type RewardTrainLoss = 'bradley_terry' | 'label_smoothed_bt' | 'plackett_luce' | 'gaussian';

/**
 * The record kinds each loss trains on. Plackett–Luce over a pair is a ranking of K = 2, where it equals
 * Bradley–Terry exactly (losses.ts), so pairs may train with it too.
 */
export const LOSS_KINDS: Readonly<Record<RewardTrainLoss, readonly RewardRecordKind[]>> = {
  bradley_terry: ['pair'],
  label_smoothed_bt: ['pair'],
  plackett_luce: ['pair', 'ranking'],
  gaussian: ['rating'],
};

/** The schema of RewardTrainConfig: every field's doc and range. */
export const REWARD_SCHEMA: Schema<RewardTrainConfig> = {
  seed: { doc: 'seed for initialisation and data order', ...SEED_RANGE },
  out: { doc: 'output directory' },
  data: {
    path: { doc: 'feedback file (JSONL, JSONL.gz; SST-2 text for format sst2)' },
    testPath: { doc: 'separate held-out file (no split when set)' },
    format: { doc: 'record format: pairs (pairwise, hh-rlhf, summarize, sst2), rankings or ratings', oneOf: namesOf(FORMAT_KINDS) },
    splitSeed: { doc: 'seed of the train/held-out split', ...SEED_RANGE },
    splitRatio: { doc: 'fraction of records in the training part', min: 0, max: 1 },
    splitKey: { doc: "what the split hashes: each record, or its prompt (all comparisons of a prompt on one side)", oneOf: SPLIT_KEYS },
    skipInvalid: { doc: 'count and skip malformed records instead of failing' },
    maxTokens: { doc: 'drop records with a prompt + response over this many tokens', integer: true, min: 1 },
    limit: { doc: 'use at most this many training records (0 = all)', integer: true, min: 0 },
  },
  model: {
    init: { doc: 'backbone initialisation', oneOf: BACKBONE_INITS },
    base: { doc: "model directory or 'stories260k' (architecture, tokenizer and, if pretrained, weights)" },
    tokenizer: { doc: "tokenizer directory for init 'scratch' (e.g. assets/gpt2-bpe); '' = the base's" },
    scratch: {
      hiddenSize: { doc: 'scratch backbone width', integer: true, min: 8, max: 1 << 14 },
      layers: { doc: 'scratch backbone layers', integer: true, min: 1, max: 1024 },
      heads: { doc: 'scratch attention heads', integer: true, min: 1, max: 1024 },
      intermediateSize: { doc: 'scratch MLP width', integer: true, min: 1, max: 1 << 16 },
      maxPositions: { doc: 'scratch context length', integer: true, min: 8, max: 1 << 20 },
    },
    heads: { doc: 'number of scalar heads (an ensemble on one backbone)', integer: true, min: 1, max: 1024 },
    headOnly: { doc: 'freeze the backbone, train the head only' },
    ensemble: {
      members: { doc: 'independent reward models K, each in out/member-k (0 = off)', integer: true, min: 0, max: 256 },
      bootstrap: { doc: 'train member k on bootstrap resample k of the training records' },
      aggregation: { doc: 'default aggregation of members (and of heads > 1)', oneOf: namesOf(ENSEMBLE_AGGREGATORS) },
      lambda: { doc: 'uncertainty penalty λ of mean_minus_std and uwo', min: 0 },
    },
  },
  loss: {
    type: { doc: 'loss (src/reward/losses.ts)', oneOf: namesOf(LOSS_KINDS) },
    margin: { doc: 'Bradley–Terry margin', min: 0 },
    recordMargins: { doc: "add each pair record's `margin` field (the feedback app's strength) to the margin (BT losses)" },
    recordWeights: { doc: "weight each pair by its record's `weight` field (the feedback app's annotator reliability; BT losses)" },
    labelSmoothing: { doc: 'ε in [0, 0.5) for the label-smoothed BT loss', min: 0, below: 0.5 },
    centerCoef: { doc: "reward-centring coefficient (TRL's center_rewards_coefficient); pairs only", min: 0 },
    sigma: { doc: 'observation noise σ of the gaussian rating loss (standardised units)', min: 0 },
  },
  lora: LORA_SCHEMA,
  train: {
    ...epochTrainSchema({
      epochs: 'passes over the training records',
      batchSize: "records per micro-batch (a record's responses go through the model together: 2× sequences for pairs, K× for rankings)",
      gradAccum: 'micro-batches per optimiser step',
      evalEvery: 'held-out evaluation period in steps (0 = end only)',
    }),
    evalLimit: { doc: 'held-out records used by periodic evaluation (0 = all)', integer: true, min: 0 },
  },
  logging: LOGGING_SCHEMA,
};


/**
 * Checks what the per-field schema cannot: that the fields fit together. Each message names the fields
 * at odds and what would fit.
 */
export function checkRewardConfig(cfg: RewardTrainConfig): void {
  const kind = formatKind(cfg.data.format);
  const loss = cfg.loss.type;
  if (!LOSS_KINDS[loss]?.includes(kind)) {
    const fits = namesOf(LOSS_KINDS).filter((l) => LOSS_KINDS[l].includes(kind));
    throw new Error(`data.format '${cfg.data.format}' does not fit loss.type '${loss}': ${kind} records train with loss.type ${fits.join(' or ')}`);
  }
  if (cfg.loss.centerCoef > 0 && kind !== 'pair') throw new Error(`loss.centerCoef applies to pairwise data, not to data.format '${cfg.data.format}'`);
  if (cfg.loss.margin > 0 && loss !== 'bradley_terry' && loss !== 'label_smoothed_bt') {
    throw new Error(`loss.margin applies to loss.type bradley_terry and label_smoothed_bt, not '${loss}'`);
  }
  if (cfg.loss.type === 'gaussian' && !(cfg.loss.sigma > 0)) throw new Error(`loss.sigma must be > 0 for loss.type gaussian, got ${cfg.loss.sigma}`);
  const s = cfg.model.scratch;
  if (cfg.model.init === 'scratch' && s.hiddenSize % s.heads !== 0) {
    throw new Error(`model.scratch.hiddenSize ${s.hiddenSize} must be divisible by model.scratch.heads ${s.heads}`);
  }
  if (cfg.model.ensemble.members > 0 && cfg.model.heads > 1) {
    throw new Error(`model.ensemble.members ${cfg.model.ensemble.members} and model.heads ${cfg.model.heads}: choose one kind of ensemble (independent members, or heads on one backbone)`);
  }
}

/** The aggregation an ensemble (or a multi-head model) of this config uses by default. */
export function configAggregation(cfg: RewardTrainConfig): { aggregation: AggregatorName; lambda: number } {
  return { aggregation: cfg.model.ensemble.aggregation, lambda: cfg.model.ensemble.lambda };
}
