/**
 * Reward-model directories: a Hugging Face `*ForSequenceClassification` layout (config.json with
 * num_labels and the backbone's fields, model.safetensors with the backbone's names plus `score.weight`)
 * and an `rlhf_reward` block with our extras: the number of heads, the reward statistics on a reference
 * set (for normalisation in RL), the default aggregation of several heads, and, for a model trained on
 * ratings, the rating scale its rewards are in units of. An ensemble of whole models is a directory with
 * an ensemble.json instead (ensemble-model.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dispose, type Tensor } from '../tensor/index.js';
import { fromRaw } from '../nn/serialize.js';
import { buildModel, configToHf, parseConfig, readJson, readWeights, resolveModelDir, writeDirAtomic, writeModelFiles, type AnyModelConfig } from '../models/hub.js';
import type { AggregatorName } from './ensemble.js';
import { type RewardHeadConfig, RewardModel } from './model.js';
import type { ScoreScale } from './rating-metrics.js';

const SEQ_CLS: Record<string, string> = { llama: 'LlamaForSequenceClassification', qwen2: 'Qwen2ForSequenceClassification', gpt2: 'GPT2ForSequenceClassification' };

/** What a reward-model directory says beyond the weights (its `rlhf_reward` block). */
export interface RewardModelInfo {
  heads: number;
  mean: number | null;
  std: number | null;
  /** How the heads combine by default (heads > 1); 'mean' when the directory does not say. */
  aggregation: AggregatorName;
  lambda: number;
  /** Ratings z = (score − mean) / std the rewards were regressed onto (loss gaussian), else null. */
  scoreScale: ScoreScale | null;
}

export interface SaveRewardOptions {
  extraFiles?: string[];
  aggregation?: { aggregation: AggregatorName; lambda: number };
  scoreScale?: ScoreScale | null;
}

/** Writes a reward model as a Hugging Face-layout directory plus its head and score normalisation, atomically. */
export function saveRewardModel(rm: RewardModel, dir: string, opts: SaveRewardOptions = {}): void {
  const c = rm.config as AnyModelConfig;
  const hf = configToHf(c);
  const type = String(hf.model_type);
  hf.architectures = [SEQ_CLS[type] ?? 'LlamaForSequenceClassification'];
  hf.num_labels = rm.head.heads;
  hf.rlhf_reward = {
    heads: rm.head.heads, mean: rm.head.mean ?? null, std: rm.head.std ?? null,
    ...(rm.head.heads > 1 && opts.aggregation ? { aggregation: opts.aggregation.aggregation, lambda: opts.aggregation.lambda } : {}),
    ...(opts.scoreScale ? { score_scale: opts.scoreScale } : {}),
  };
  writeDirAtomic(dir, (tmp) => writeModelFiles(tmp, hf, rm.stateDict(), { extraFiles: opts.extraFiles, metadata: { rlhf: 'reward-model' } }));
}

/** Reads a reward-model directory's `rlhf_reward` block (with defaults for a plain HF classifier). */
export function readRewardInfo(dir: string): RewardModelInfo {
  const raw = readJson(join(dir, 'config.json'));
  const extra = (raw.rlhf_reward ?? {}) as { heads?: number; mean?: number | null; std?: number | null; aggregation?: AggregatorName; lambda?: number; score_scale?: ScoreScale };
  return {
    heads: extra.heads ?? (typeof raw.num_labels === 'number' ? raw.num_labels : 1),
    mean: extra.mean ?? null, std: extra.std ?? null,
    aggregation: extra.aggregation ?? 'mean', lambda: extra.lambda ?? 1,
    scoreScale: extra.score_scale ?? null,
  };
}

/** Reads a reward model directory written by saveRewardModel (or 'stories260k' with a fresh head). */
export function loadRewardModel(nameOrDir: string): RewardModel {
  const dir = resolveModelDir(nameOrDir);
  if (existsSync(join(dir, 'ensemble.json'))) throw new Error(`${nameOrDir} is a reward-model ensemble: load it with loadRewardEnsemble`);
  const path = join(dir, 'config.json');
  const config = parseConfig(readJson(path), path);
  const info = readRewardInfo(dir);
  const head: RewardHeadConfig = { heads: info.heads, ...(info.mean != null ? { mean: info.mean } : {}), ...(info.std != null ? { std: info.std } : {}) };
  const rm = new RewardModel(buildModel(config), head);
  const state = new Map<string, Tensor>();
  for (const [k, r] of readWeights(dir)) state.set(k, fromRaw(r));
  try {
    rm.loadStateDict(state, { source: dir });
  } catch (e) {
    rm.dispose();
    throw e;
  } finally {
    dispose([...state.values()]);
  }
  return rm.eval();
}
