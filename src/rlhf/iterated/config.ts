/**
 * Iterated (online) RLHF (Bai et al. 2022, "Training a Helpful and Harmless Assistant…", §4.5; "RLHF
 * Deciphered" §7.6.4): the reward model is refreshed with comparisons of the policy's *current* samples
 * every round, so its labels follow the policy to where the proxy would otherwise be extrapolating.
 * Per round r = 1..R: sample pairs from the current policy → an annotator labels them → a reward model
 * is trained on all labels so far → RL (any online algorithm, PPO by default) continues from the current policy against it, with
 * the KL measured from the *initial* policy. Units: labels = pairwise comparisons, steps = RL iterations
 * (one rollout each), KL in nats.
 */
import { SEED_RANGE, type Schema } from '../../config.js';
import { checkEmbeddedRl, ONLINE_ALGORITHM_NAMES, type OnlineAlgorithmName } from '../algorithms.js';
import { THREADS_FIELD } from '../../nn/train-fields.js';

/** The config of `rlhf train online` (iterated RLHF): rounds, labels per round, the reward model, RL. */
export interface IteratedConfig {
  seed: number;
  /** Output directory: rounds.jsonl, and round-r/ with labels.jsonl, rm-data.jsonl, rm/, rl/, done.json. */
  out: string;
  /** The initial policy: round 1 starts from it, it is every round's KL reference and the reward model's backbone. */
  model: string;
  /** Total rounds R (a rerun with more rounds reuses the finished ones). */
  rounds: number;
  /** Prompts, cycled, for both the comparisons and the RL rollouts ([''] = BOS only: unconditional stories). */
  prompts: string[];
  /** Completion tokens per sample (comparisons, rollouts and evaluations alike). */
  maxNewTokens: number;
  labels: {
    /** Comparisons labelled per round: two fresh samples of the current policy for one prompt each. */
    perRound: number;
  };
  /** The reward model, retrained from `model`'s backbone each round on every label so far. */
  rm: {
    epochs: number;
    batchSize: number;
    lr: number;
    warmupSteps: number;
    /** Fraction of the labels it trains on; the rest is its held-out accuracy (a seeded hash split, stable across rounds). */
    splitRatio: number;
    /** Longest prompt + completion in tokens; longer pairs are dropped. */
    maxTokens: number;
  };
  rl: {
    /** The policy optimiser, by its name in the online-algorithm registry (../algorithms.ts): 'ppo' (default), 'grpo', 'rloo', … */
    algorithm: OnlineAlgorithmName;
    /** RL steps per round. */
    steps: number;
    lr: number;
    /** KL coefficient β, against the initial policy. */
    klCoef: number;
    /** Prompts per RL step, each sampled samplesPerPrompt times. */
    prompts: number;
    samplesPerPrompt: number;
    /** Evaluate on fresh samples every N steps of a round (0 = at each round's start and end only). */
    evalEvery: number;
    /** Fresh samples per evaluation (the evaluator's score, e.g. gold, is their mean). */
    evalSamples: number;
    /** Checkpoint period in steps within a round (0 = end only); an interrupted round resumes from it. */
    checkpointEvery: number;
  };
  /** Intra-op threads (libtorch and OpenBLAS; 0 = leave the default). */
  threads: number;
}

/** The defaults of `rlhf train online`. */
export const ITERATED_DEFAULTS: IteratedConfig = {
  seed: 0,
  out: 'runs/online',
  model: 'stories260k',
  rounds: 3,
  prompts: [''],
  maxNewTokens: 48,
  labels: { perRound: 256 },
  rm: { epochs: 2, batchSize: 16, lr: 3e-4, warmupSteps: 5, splitRatio: 0.85, maxTokens: 128 },
  rl: { algorithm: 'ppo', steps: 20, lr: 5e-4, klCoef: 0.01, prompts: 16, samplesPerPrompt: 4, evalEvery: 0, evalSamples: 128, checkpointEvery: 5 },
  threads: 1,
};

/** The schema of IteratedConfig. */
export const ITERATED_SCHEMA: Schema<IteratedConfig> = {
  seed: { doc: 'seed of sampling, labelling, reward-model and RL runs (each round derives its own)', ...SEED_RANGE },
  out: { doc: 'output directory (a rerun resumes: finished rounds are skipped)' },
  model: { doc: "initial policy, KL reference and reward-model backbone: 'stories260k' or a model directory" },
  rounds: { doc: 'rounds R of sample → label → reward model → RL', integer: true, min: 1 },
  prompts: { doc: "prompts, cycled ('' = BOS only)", items: 'string' },
  maxNewTokens: { doc: 'completion tokens per sample', integer: true, min: 1 },
  labels: {
    perRound: { doc: 'comparisons labelled per round (two samples of the current policy each)', integer: true, min: 2 },
  },
  rm: {
    epochs: { doc: 'reward-model epochs over all labels so far', integer: true, min: 1 },
    batchSize: { doc: 'pairs per reward-model step', integer: true, min: 1 },
    lr: { doc: 'reward-model learning rate', min: 0 },
    warmupSteps: { doc: 'reward-model linear warm-up steps', integer: true, min: 0 },
    splitRatio: { doc: 'fraction of labels trained on (the rest: held-out accuracy)', min: 0, max: 1 },
    maxTokens: { doc: 'drop pairs with a prompt + completion over this many tokens', integer: true, min: 1 },
  },
  rl: {
    algorithm: { doc: 'policy optimiser (an online algorithm)', oneOf: ONLINE_ALGORITHM_NAMES },
    steps: { doc: 'RL steps per round', integer: true, min: 1 },
    lr: { doc: 'policy learning rate', min: 0 },
    klCoef: { doc: 'KL coefficient β (KL to the initial policy)', min: 0 },
    prompts: { doc: 'prompts per RL step', integer: true, min: 1 },
    samplesPerPrompt: { doc: 'samples per prompt (the GRPO group)', integer: true, min: 1 },
    evalEvery: { doc: "evaluation period in steps within a round (0 = round's start and end)", integer: true, min: 0 },
    evalSamples: { doc: 'fresh samples per evaluation', integer: true, min: 1 },
    checkpointEvery: { doc: 'RL checkpoint period in steps (0 = end of the round only)', integer: true, min: 0 },
  },
  threads: THREADS_FIELD,
};

/** Checks what the per-field schema cannot. */
export function checkIteratedConfig(cfg: IteratedConfig): void {
  if (cfg.prompts.length === 0) throw new Error("prompts is empty: give at least one ('' = BOS only)");
  if (!(cfg.rm.splitRatio > 0 && cfg.rm.splitRatio < 1)) throw new Error(`rm.splitRatio must be in (0, 1) (some labels train, some are held out), got ${cfg.rm.splitRatio}`);
  checkEmbeddedRl(cfg.rl.algorithm, cfg.rl, 'rl');
}
