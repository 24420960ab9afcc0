/**
 * RAFT (Dong et al. 2023, "RAFT: Reward rAnked FineTuning for generative foundation model alignment"),
 * rejection-sampling fine-tuning: for each round, N samples per prompt from the current policy, the best
 * under a reward source kept (optionally only above a threshold), supervised fine-tuning on the winners;
 * the next round samples from the fine-tuned policy. Units: rewards in the reward source's units, KL in
 * nats (evaluation only: RAFT has no KL term), lengths in tokens.
 */
import { SEED_RANGE, type Schema } from '../../config.js';
import type { EpochTrainFields } from '../../nn/train-fields.js';
import { ONLINE_DEFAULTS, ONLINE_SCHEMA, type OnlineConfig } from '../online/config.js';
import { SFT_SCHEMA } from '../sft/config.js';

/** The SFT fields a RAFT round takes (the rest are fixed: no step cap, no periodic evaluation or checkpoints). */
const RAFT_SFT_FIELDS = ['epochs', 'batchSize', 'gradAccum', 'lr', 'weightDecay', 'warmupSteps', 'schedule', 'clipGradNorm'] as const;
type RaftSftField = (typeof RAFT_SFT_FIELDS)[number];

/** The config of `rlhf train raft`: rounds of best-of-N under a reward source, then SFT on the winners. */
export interface RaftConfig {
  seed: number;
  /** Output directory: round-R/ (winners.jsonl, sft/, summary.json), initial.json, metrics.jsonl, model/. */
  out: string;
  model: {
    /** The initial policy, and the reference of the evaluations' KL: 'stories260k' or a model directory. */
    policy: string;
  };
  /** Prompts, as the online trainers read them. */
  data: OnlineConfig['data'];
  reward: Pick<OnlineConfig['reward'], 'sources' | 'weights'>;
  /** Sampling: rollout.prompts prompts per round, each sampled rollout.samplesPerPrompt (= N) times. */
  rollout: Omit<OnlineConfig['rollout'], 'ignoreEos'>;
  raft: {
    rounds: number;
    /** Keep a prompt's best sample only when its reward exceeds this (null = always keep it). */
    threshold: number | null;
    /**
     * Append end-of-sequence to every winner in the SFT data. Off by default: most winners are cut at
     * maxNewTokens rather than finished, and training a stop after them would shorten the policy's texts.
     */
    appendEos: boolean;
  };
  /** The SFT of each round on its winners (src/rlhf/sft; fields as `rlhf train sft`'s train section). */
  sft: Pick<EpochTrainFields, RaftSftField>;
  train: {
    /** Fresh samples per evaluation, at the start and after every round (0 = none). */
    evalSamples: number;
    /** Intra-op threads (libtorch and OpenBLAS; 0 = leave the default). */
    threads: number;
  };
}

/** The defaults of `rlhf train raft`. */
export const RAFT_DEFAULTS: RaftConfig = {
  seed: 0,
  out: 'runs/raft',
  model: { policy: 'stories260k' },
  data: { ...ONLINE_DEFAULTS.data },
  reward: { sources: [...ONLINE_DEFAULTS.reward.sources], weights: [] },
  rollout: { prompts: 64, samplesPerPrompt: 8, maxNewTokens: 48, temperature: 1, topK: 0, topP: 1 },
  raft: { rounds: 3, threshold: null, appendEos: false },
  sft: { epochs: 2, batchSize: 8, gradAccum: 1, lr: 1e-4, weightDecay: 0, warmupSteps: 0, schedule: 'constant', clipGradNorm: 1 },
  train: { evalSamples: 256, threads: 1 },
};

/** The schema of RaftConfig. */
export const RAFT_SCHEMA: Schema<RaftConfig> = {
  seed: { doc: 'seed of sampling and of the SFT data order', ...SEED_RANGE },
  out: { doc: 'output directory' },
  model: { policy: { doc: "initial policy (and the evaluations' KL reference): 'stories260k' or a model directory" } },
  data: ONLINE_SCHEMA.data,
  reward: { sources: ONLINE_SCHEMA.reward.sources, weights: ONLINE_SCHEMA.reward.weights },
  rollout: {
    prompts: { doc: 'prompts per round (cycling through the prompt list)', integer: true, min: 1 },
    samplesPerPrompt: { doc: 'N: samples per prompt, the best of which is kept', integer: true, min: 1 },
    maxNewTokens: ONLINE_SCHEMA.rollout.maxNewTokens,
    temperature: { doc: 'sampling temperature (> 0: the candidates must differ)', min: 0 },
    topK: ONLINE_SCHEMA.rollout.topK,
    topP: ONLINE_SCHEMA.rollout.topP,
  },
  raft: {
    rounds: { doc: 'sample → keep the best → SFT rounds', integer: true, min: 1 },
    threshold: { doc: "keep a prompt's best sample only when its reward exceeds this (null = always)", optional: true },
    appendEos: { doc: 'append end-of-sequence to every winner in the SFT data (most are cut, not finished)' },
  },
  sft: Object.fromEntries(RAFT_SFT_FIELDS.map((k) => [k, SFT_SCHEMA.train[k]])) as Schema<RaftConfig['sft']>,
  train: {
    evalSamples: { doc: 'fresh samples per evaluation, at the start and after each round (0 = none)', integer: true, min: 0 },
    threads: ONLINE_SCHEMA.train.threads,
  },
};

/** Checks what the per-field schema cannot. */
export function checkRaftConfig(cfg: RaftConfig): void {
  if (cfg.reward.sources.length === 0) throw new Error('reward.sources is empty: name at least one source');
  if (cfg.reward.weights.length > 0 && cfg.reward.weights.length !== cfg.reward.sources.length) {
    throw new Error(`reward.weights has ${cfg.reward.weights.length} entries for ${cfg.reward.sources.length} reward.sources`);
  }
  if (!(cfg.rollout.temperature > 0)) throw new Error(`rollout.temperature must be > 0 for RAFT (the N candidates must differ), got ${cfg.rollout.temperature}`);
  if (!(cfg.rollout.topP > 0 && cfg.rollout.topP <= 1)) throw new Error(`rollout.topP must be in (0, 1], got ${cfg.rollout.topP}`);
  const t = cfg.raft.threshold;
  if (t !== null && t !== undefined && !(typeof t === 'number' && Number.isFinite(t))) throw new Error(`raft.threshold must be a number or null (keep every best sample), got ${JSON.stringify(t)}`);
  if (cfg.rollout.samplesPerPrompt < 2) throw new Error(`RAFT needs rollout.samplesPerPrompt ≥ 2 (a best of N), got ${cfg.rollout.samplesPerPrompt}`);
}
