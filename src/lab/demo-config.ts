/**
 * The main job's configuration (`rlhf demo`): Gao et al.'s (2022) over-optimisation setting on the
 * embedded default. Every phase's settings, documented; `--quick` swaps in QUICK_OVERRIDES (under a
 * minute, for tests).
 */
import { MAX_THREADS, SEED_RANGE, type Schema } from '../config.js';
import { ONLINE_ALGORITHM_NAMES, type OnlineAlgorithmName } from '../rlhf/algorithms.js';

/** The config of `rlhf demo`: the preference data, the proxy reward model, RL (any online algorithm), best-of-n. */
export interface DemoConfig {
  seed: number;
  /** Output directory: report.html, metrics.jsonl, summary.json, and one folder per phase. */
  out: string;
  /** The policy being optimised (and the proxy's backbone). */
  model: string;
  preferences: {
    /** Comparisons labelled: two fresh samples of the initial policy per comparison. */
    pairs: number;
    /** Completion tokens per sample (also the RL and best-of-n budget). */
    maxNewTokens: number;
    /** The annotators' rationality β per unit of gold (P(a ≻ b) = σ(β·(gold_a − gold_b))). */
    rationality: number;
  };
  proxy: {
    epochs: number;
    batchSize: number;
    lr: number;
  };
  rl: {
    /** The policy optimiser, by its name in the online-algorithm registry (src/rlhf/algorithms.ts): 'ppo' (default), 'grpo', 'rloo', … */
    algorithm: OnlineAlgorithmName;
    steps: number;
    lr: number;
    /** KL coefficient β (small: the point is to let the policy over-optimise the proxy). */
    klCoef: number;
    prompts: number;
    samplesPerPrompt: number;
    /** Evaluate gold and proxy on fresh samples every N steps. */
    evalEvery: number;
    evalSamples: number;
  };
  bon: {
    /** Best-of-n is measured for every power of two up to maxN. */
    maxN: number;
    prompts: number;
  };
  /** Intra-op threads (libtorch and OpenBLAS). */
  threads: number;
}

/** The defaults of `rlhf demo` (the published run). */
export const DEMO_DEFAULTS: DemoConfig = {
  seed: 0,
  out: 'runs/demo',
  model: 'stories260k',
  preferences: { pairs: 768, maxNewTokens: 48, rationality: 20 },
  proxy: { epochs: 2, batchSize: 16, lr: 3e-4 },
  // 35 steps at lr 5e-4, β 0.01, gold and proxy measured every 2 steps (every 5 before: a detector of
  // over-optimisation needs the resolution). At the default seed the gold peaks at step 14 (0.90) and ends at 0.76
  // while the proxy climbs from −0.09 to 0.96 (libtorch 2.13, fused AdamW, AMD EPYC). Other seeds are not all so
  // clear: in probes at seeds 2–4 the gold was still rising at step 35, and no setting tried (lr 7e-4
  // to 1e-3, β 0 to 0.01, 384 pairs) over-optimised on every seed, kernel path and thread count — the closing
  // note of issue 14 has the table. A lab run over seeds is the way to read this effect, not one run.
  rl: { algorithm: 'ppo', steps: 35, lr: 5e-4, klCoef: 0.01, prompts: 16, samplesPerPrompt: 4, evalEvery: 2, evalSamples: 128 },
  bon: { maxN: 32, prompts: 64 },
  threads: 1,
};

/** What --quick changes: the same pipeline, small. */
export const QUICK_OVERRIDES = {
  preferences: { pairs: 96, maxNewTokens: 24 },
  proxy: { epochs: 1 },
  rl: { steps: 6, prompts: 8, evalEvery: 2, evalSamples: 32 },
  bon: { maxN: 8, prompts: 16 },
};

/** The schema of DemoConfig: every field's doc and range. */
export const DEMO_SCHEMA: Schema<DemoConfig> = {
  seed: { doc: 'seed of every phase', ...SEED_RANGE },
  out: { doc: 'output directory' },
  model: { doc: "the policy: 'stories260k' or a model directory" },
  preferences: {
    pairs: { doc: 'comparisons the synthetic annotators label', integer: true, min: 8 },
    maxNewTokens: { doc: 'completion tokens per sample (all phases)', integer: true, min: 4 },
    rationality: { doc: 'annotator rationality β per unit of gold (Bradley–Terry)', min: 0 },
  },
  proxy: {
    epochs: { doc: 'proxy reward-model epochs', integer: true, min: 1 },
    batchSize: { doc: 'pairs per proxy training step', integer: true, min: 1 },
    lr: { doc: 'proxy learning rate', min: 0 },
  },
  rl: {
    algorithm: { doc: 'policy optimiser (an online algorithm)', oneOf: ONLINE_ALGORITHM_NAMES },
    steps: { doc: 'RL steps', integer: true, min: 1 },
    lr: { doc: 'policy learning rate', min: 0 },
    klCoef: { doc: 'KL coefficient β', min: 0 },
    prompts: { doc: 'prompts per RL step', integer: true, min: 1 },
    samplesPerPrompt: { doc: 'samples per prompt (the GRPO group)', integer: true, min: 2 },
    evalEvery: { doc: 'gold/proxy evaluation period in steps', integer: true, min: 1 },
    evalSamples: { doc: 'fresh samples per evaluation', integer: true, min: 8 },
  },
  bon: {
    maxN: { doc: 'largest n of best-of-n (powers of two up to it)', integer: true, min: 1 },
    prompts: { doc: 'prompts of the best-of-n measurement', integer: true, min: 1 },
  },
  threads: { doc: 'libtorch + OpenBLAS threads', integer: true, min: 1, max: MAX_THREADS },
};
