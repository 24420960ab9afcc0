/** rlhf-ts: the public library surface, layer by layer. */
export * from './tensor/index.js';
export { machineInfo, machineSummary, type MachineInfo, type VectorExtensions } from './machine.js';
export * from './nn/serialize.js';
export { Module, ModuleList } from './nn/module.js';
export { Dropout, Embedding, LayerNorm, Linear, RMSNorm } from './nn/layers.js';
export { lrAt, type ScheduleConfig, type ScheduleKind } from './nn/schedule.js';
export {
  parseSafetensors, readSafetensorsFile, readSafetensorsIndex, serializeSafetensors, writeSafetensorsFile,
  type RawTensor, type SafetensorsDtype,
} from './nn/safetensors.js';
export * from './text/index.js';
export { type CausalLM, type ForwardOptions, type ModelConfigCommon } from './models/common.js';
export { KVCache } from './models/cache.js';
export { LlamaForCausalLM, type LlamaConfig, parseLlamaConfig } from './models/llama.js';
export { Gpt2LMHeadModel, type Gpt2Config, parseGpt2Config } from './models/gpt2.js';
export { readLlama2c } from './models/llama2c.js';
export { loadModel, saveModel, resolveModelDir } from './models/hub.js';
export { type Completion, completionBatch, type FinishReason, generate, type GenerateOptions, leftPad } from './generate/generate.js';
export { scoreCompletions, tokenLogprobs } from './generate/score.js';
export * from './data/index.js';
export { RewardModel } from './reward/model.js';
export { loadRewardModel, saveRewardModel } from './reward/io.js';
export * from './reward/losses.js';
export * from './reward/ensemble.js';
export { evaluatePairs, type PairEvaluation } from './reward/metrics.js';
export { type RewardTrainConfig, REWARD_DEFAULTS } from './reward/config.js';
export { trainRewardModel, evaluateRewardModel } from './reward/train.js';
export { loadRewardEnsemble, type RewardEnsemble } from './reward/ensemble-model.js';
export { evaluateRatings } from './reward/rating-metrics.js';
