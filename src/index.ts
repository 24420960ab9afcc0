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
  combinedReward, functionReward, loadModelReward, modelReward, parseRewardSpec, REWARD_SPEC_KINDS, RewardSourceError,
  type ModelRewardOptions, type RewardInput, type RewardOutput, type RewardSource, type RewardSpecBuilder, type RewardSpecContext,
  type SyncRewardSource,
} from './reward/sources.js';
export { type BatchRewardFunction, moduleReward, type RewardSampleMeta, type SampleRewardFunction } from './reward/module.js';
export { REMOTE_REWARD_DEFAULTS, type RemoteRewardOptions, remoteReward } from './reward/remote.js';
export {
  DEFAULT_RUBRIC, Judge, type JudgedPair, type JudgeOptions, judgePairs, judgeReward, type JudgeStats, parseJudgeSpec, parsePreference, parseScore,
  type UnlabelledPair,
} from './reward/judge.js';
export { LOGGING_DEFAULTS, LOGGING_SCHEMA, type LoggingFields, TensorBoardWriter } from './tensorboard.js';

// ---- serving: an OpenAI-compatible model server, a reward model behind OpenRLHF's /get_reward
export { DEFAULT_CHAT_TEMPLATE, type ModelServer, type ServeModelOptions, serveModel } from './serve/model-server.js';
export { type ServeRewardOptions, serveRewardModel } from './serve/reward-server.js';
export type { RunningServer } from './serve/http.js';

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
export { judgeAnnotator } from './rlhf/iterated/annotator.js';

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

// ---- the feedback app: human feedback collected (every task type), scored (agreement, gold) and exported into training
export { type AlphaLevel, cohenKappa, fleissKappa, krippendorffAlpha } from './feedback/agreement.js';
export { canonicalLabel, checkTaskType, LabelError, TASK_TYPES, type TaskLabels, type TaskSettings, type TaskSpec, type TaskType } from './feedback/tasks.js';
export {
  type Annotator as FeedbackAnnotator, type Assignment, type CandidateRow, FeedbackStore, type LabelRow, type NewCandidate, type NextResult, type Project,
  PROJECT_DEFAULTS, type ProjectSettings, StoreError,
} from './feedback/store.js';
export { SELECTION_RULES, type SelectionFn, type SelectionRule, THOMPSON_ROUNDS } from './feedback/selection.js';
export { type Agreement, agreement, type Behaviour, behaviour, type Reliability, reliability } from './feedback/quality.js';
export { APP_PREFIX, appLines, EXPORT_FORMATS, type ExportFormat, exportRows, impliedPairs, importItems, importItemsFromText } from './feedback/io.js';
export {
  createFeedbackServer, hashPassword, renderMarkdown, type RunningServer as RunningFeedbackServer, type ServeOptions as FeedbackServeOptions, startFeedbackServer, verifyPassword,
} from './app/server.js';
export { type ApiResponse, FeedbackClient, type NextItem } from './app/client.js';
export { generateItems, type GenerateItemsOptions } from './app/candidates.js';
export { type RewardCheck, rewardCheck, startRewardCheck } from './app/reward-check.js';
export { type AppAnnotatorOptions, appAnnotator, type AsyncAnnotator } from './rlhf/iterated/app-annotator.js';
