/**
 * rlhf-ts: the public library surface, layer by layer (tensor < nn < models/text < generate < data <
 * reward < rlhf < lab). Every trainer comes with its config type and defaults (`trainPpo(cfg)` with
 * `PPO_DEFAULTS`), every family of variants with its registry, and every export has its doc comment at
 * its definition. test/pure/public-api.test.ts checks that each export is documented.
 */

// ---- tensor engine: the Tensor, creation, ops, autograd, optimisers, lifetime
export * from './tensor/index.js';
export { machineInfo, machineSummary, type MachineInfo, type VectorExtensions } from './machine.js';

// ---- nn: modules, layers, schedules, state dicts and safetensors
export * from './nn/serialize.js';
export { Module, ModuleList } from './nn/module.js';
export { Dropout, Embedding, LayerNorm, Linear, RMSNorm } from './nn/layers.js';
export { lrAt, SCHEDULES, type ScheduleConfig, type ScheduleKind } from './nn/schedule.js';
export {
  parseSafetensors, readSafetensorsFile, readSafetensorsIndex, serializeSafetensors, writeSafetensorsFile,
  type RawTensor, type SafetensorsDtype,
} from './nn/safetensors.js';
export { OPTIMIZERS, type EpochTrainFields, type OptimizerName } from './nn/train-fields.js';
export { applyLora, LORA_DEFAULTS, LORA_FIELD_DEFAULTS, LoraAdapter, LoraAdapters, type LoraConfig, type LoraFields } from './nn/lora.js';
export { DivergedError, InterruptedError } from './nn/train-loop.js';

// ---- models and tokenizers
export * from './text/index.js';
export type { CausalLM, ForwardOptions, ModelConfigCommon } from './models/common.js';
export { KVCache } from './models/cache.js';
export { fusedDecodeFallback, LLAMA_FIELDS, LlamaForCausalLM, type LlamaConfig, parseLlamaConfig } from './models/llama.js';
export type { FieldRule } from './models/config.js';
export { GPT2_FIELDS, Gpt2LMHeadModel, type Gpt2Config, parseGpt2Config } from './models/gpt2.js';
export { readLlama2c } from './models/llama2c.js';
export { loadModel, saveModel, resolveModelDir } from './models/hub.js';
export { loadPeftAdapter, PEFT_FIELDS, savePeftAdapter } from './models/peft.js';
export { loadPolicy, type PolicyModel, referenceView, savePolicy } from './models/adapted.js';
export { initModel, type InitModelResult, parameterCount, publishedConfigs } from './models/init.js';

// ---- generation and scoring
export { type Completion, completionBatch, type FinishReason, generate, type GenerateOptions, leftPad } from './generate/generate.js';
export type { SamplingOptions } from './generate/sampling.js';
export { headLogprobs, logitsChunkBudget, scoreCompletions, type ScoredBatch, tokenLogprobs } from './generate/score.js';
export { mulberry32, streamKey, uniformAt } from './random.js';
export { mean, meanSe, pearson, standardError } from './stats.js';

// ---- feedback data
export * from './data/index.js';

// ---- reward models: training, evaluation, losses, ensembles, reward functions
export { RewardModel } from './reward/model.js';
export { loadRewardModel, saveRewardModel } from './reward/io.js';
export * from './reward/losses.js';
export * from './reward/ensemble.js';
export { evaluatePairs, type PairEvaluation } from './reward/metrics.js';
export { type RewardTrainConfig, type RewardTrainLoss, REWARD_DEFAULTS, REWARD_SCHEMA } from './reward/config.js';
export { trainRewardModel, evaluateRewardModel, type RewardRunOptions, type RewardRunSummary } from './reward/train.js';
export { loadRewardEnsemble, type RewardEnsemble } from './reward/ensemble-model.js';
export { evaluateRatings } from './reward/rating-metrics.js';
export { scoreSequences, type SequenceScores } from './reward/evaluate.js';
export { afinnComparative, REWARD_FUNCTIONS } from './reward/functions.js';

// ---- RL math: KL estimators, GAE, group advantages, clipped losses, preference losses, shaping
export * from './rlhf/core/index.js';
export { clipRewards, lengthPenalty, missingEosPenalty, normaliseRewards, RunningMoments } from './rlhf/core/shaping.js';

// ---- reward sources (what the policy trainers optimise against)
export {
  combinedReward, functionReward, modelReward, parseRewardSpec,
  type ModelRewardOptions, type RewardInput, type RewardOutput, type RewardSource,
} from './reward/sources.js';

// ---- online policy optimisation: the registry, the shared loop and config, each algorithm
export {
  checkEmbeddedRl, ONLINE_ALGORITHM_NAMES, ONLINE_ALGORITHMS, type OnlineAlgorithmEntry, type OnlineAlgorithmName,
} from './rlhf/algorithms.js';
export { CRITIC_KINDS, type CriticKind, ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from './rlhf/online/config.js';
export {
  type Algorithm, type CriticSpec, describeEval, type EvalRow, type OnlineRunOptions, type OnlineRunSummary, trainOnline,
} from './rlhf/online/trainer.js';
export type { PolicyEvaluation } from './rlhf/online/rollout.js';
export { asGroups, broadcastToTokens, klPenalty, sequenceKlPenalty, tokenRewards } from './rlhf/online/token-rewards.js';
export { PPO_DEFAULTS, PPO_SCHEMA, type PpoConfig } from './rlhf/ppo/config.js';
export { ppoAlgorithm, trainPpo } from './rlhf/ppo/trainer.js';
export { GRPO_DEFAULTS, GRPO_SCHEMA, type GrpoConfig } from './rlhf/grpo/config.js';
export { grpoAlgorithm, trainGrpo } from './rlhf/grpo/trainer.js';
export { RLOO_DEFAULTS, RLOO_SCHEMA, type RlooConfig } from './rlhf/rloo/config.js';
export { rlooAlgorithm, trainRloo } from './rlhf/rloo/trainer.js';
export { REMAX_DEFAULTS, REMAX_SCHEMA, type RemaxConfig } from './rlhf/remax/config.js';
export { remaxAlgorithm, trainRemax } from './rlhf/remax/trainer.js';
export { REINFORCE_DEFAULTS, REINFORCE_SCHEMA, type ReinforceConfig } from './rlhf/reinforce/config.js';
export { movingBaseline, reinforceAlgorithm, trainReinforce } from './rlhf/reinforce/trainer.js';
export { REINFORCEPP_DEFAULTS, REINFORCEPP_SCHEMA, type ReinforceppConfig } from './rlhf/reinforcepp/config.js';
export { discountedReturns, reinforceppAlgorithm, trainReinforcepp } from './rlhf/reinforcepp/trainer.js';

// ---- offline policy training: SFT, the DPO family, KTO; RAFT; best-of-N; iterated RLHF
export type { OfflineRunOptions } from './rlhf/offline.js';
export { SFT_DEFAULTS, SFT_SCHEMA, type SftConfig } from './rlhf/sft/config.js';
export { trainSft, type SftRunOptions, type SftRunSummary } from './rlhf/sft/trainer.js';
export { DPO_DEFAULTS, DPO_SCHEMA, type DpoConfig, OFFLINE_METHOD_DEFAULTS, PREFERENCE_LOSS_TYPES } from './rlhf/dpo/config.js';
export { type DpoEval, type DpoRunOptions, type DpoRunSummary, trainDpo } from './rlhf/dpo/trainer.js';
export { KTO_DEFAULTS, KTO_SCHEMA, type KtoConfig } from './rlhf/kto/config.js';
export { type KtoRunSummary, trainKto } from './rlhf/kto/trainer.js';
export {
  evaluatePolicyPairs, type PairEval, type PairLogprobs, referenceLogprobs, scorePairs, sequenceLogprobs, type TokenCompletion, type TokenPair,
} from './rlhf/reference.js';
export { sentimentLabels, sentimentPairs, writeLabels, writePairs } from './rlhf/dpo/synthetic-pairs.js';
export { RAFT_DEFAULTS, RAFT_SCHEMA, type RaftConfig } from './rlhf/raft/config.js';
export { type RaftRunOptions, type RaftRunSummary, trainRaft } from './rlhf/raft/trainer.js';
export { type BestOfNResult, bestOfN, klBestOfN } from './rlhf/bon.js';
export { ITERATED_DEFAULTS, ITERATED_SCHEMA, type IteratedConfig } from './rlhf/iterated/config.js';
export { type IteratedRunOptions, type IteratedSummary, type RoundRow, trainIterated } from './rlhf/iterated/trainer.js';
export type {
  AnnotationContext, Annotator as RoundAnnotator, Comparison as RoundComparison, PairwiseLabel,
} from './rlhf/iterated/annotator.js';

// ---- configs: YAML/JSON files with --set overrides, validated against a schema
export { type ConfigOverrides, describeSchema, type FieldDoc, loadConfig, makeConfig, namesOf, type Schema, validateConfig } from './config.js';

// ---- the lab: the demo and the experiments of the reward model's known failures
export * from './lab/index.js';
export { DEMO_DEFAULTS, DEMO_SCHEMA, type DemoConfig } from './lab/demo-config.js';
export { type DemoOptions, runDemo } from './lab/demo.js';
export type { DemoSummary } from './lab/demo-report.js';
export { overoptimisationSweep, type SweepResult } from './lab/overoptimisation.js';
export { LAB_EXPERIMENTS } from './lab/experiments.js';
export type { Experiment, LabContext, LabOutcome } from './lab/experiment.js';
