/**
 * Reward-model directories: a Hugging Face `*ForSequenceClassification` layout (config.json with
 * num_labels and the backbone's fields, model.safetensors with the backbone's names plus `score.weight`)
 * and an `rlhf_reward` block with our extras: the number of heads and the reward statistics on a
 * reference set, for normalisation in RL.
 */
import { join } from 'node:path';
import { dispose, type Tensor } from '../tensor/index.js';
import { fromRaw } from '../nn/serialize.js';
import { buildModel, configToHf, parseConfig, readJson, readWeights, resolveModelDir, writeDirAtomic, writeModelFiles, type AnyModelConfig } from '../models/hub.js';
import { type RewardHeadConfig, RewardModel } from './model.js';

const SEQ_CLS: Record<string, string> = { llama: 'LlamaForSequenceClassification', qwen2: 'Qwen2ForSequenceClassification', gpt2: 'GPT2ForSequenceClassification' };

export function saveRewardModel(rm: RewardModel, dir: string, opts: { extraFiles?: string[] } = {}): void {
  const c = rm.config as AnyModelConfig;
  const hf = configToHf(c);
  const type = String(hf.model_type);
  hf.architectures = [SEQ_CLS[type] ?? 'LlamaForSequenceClassification'];
  hf.num_labels = rm.head.heads;
  hf.rlhf_reward = { heads: rm.head.heads, mean: rm.head.mean ?? null, std: rm.head.std ?? null };
  writeDirAtomic(dir, (tmp) => writeModelFiles(tmp, hf, rm.stateDict(), { ...opts, metadata: { rlhf: 'reward-model' } }));
}

export function loadRewardModel(nameOrDir: string): RewardModel {
  const dir = resolveModelDir(nameOrDir);
  const path = join(dir, 'config.json');
  const raw = readJson(path);
  const config = parseConfig(raw, path);
  const extra = (raw.rlhf_reward ?? {}) as { heads?: number; mean?: number | null; std?: number | null };
  const heads = extra.heads ?? (typeof raw.num_labels === 'number' ? raw.num_labels : 1);
  const head: RewardHeadConfig = { heads, ...(extra.mean != null ? { mean: extra.mean } : {}), ...(extra.std != null ? { std: extra.std } : {}) };
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
