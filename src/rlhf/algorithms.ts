/**
 * The online algorithms by name: every place that lets a user pick one — `rlhf train <name>`, the demo's
 * and the lab's `rl.algorithm`, iterated RLHF's `rl.algorithm` — reads this registry, and their config
 * enums are its keys (`OnlineAlgorithmName`). An entry erases its config type behind methods built from
 * the typed parts (defaults, schema, Algorithm), so callers need no casts and adding an algorithm is one
 * entry here.
 */
import { describeSchema, loadConfig, namesOf, type Schema, validateConfig } from '../config.js';
import type { OnlineConfig } from './online/config.js';
import { type Algorithm, type OnlineRunOptions, type OnlineRunSummary, trainOnline } from './online/trainer.js';
import { PPO_DEFAULTS, PPO_SCHEMA } from './ppo/config.js';
import { ppoAlgorithm } from './ppo/trainer.js';
import { GRPO_DEFAULTS, GRPO_SCHEMA } from './grpo/config.js';
import { grpoAlgorithm } from './grpo/trainer.js';
import { RLOO_DEFAULTS, RLOO_SCHEMA } from './rloo/config.js';
import { rlooAlgorithm } from './rloo/trainer.js';
import { REMAX_DEFAULTS, REMAX_SCHEMA } from './remax/config.js';
import { remaxAlgorithm } from './remax/trainer.js';
import { REINFORCE_DEFAULTS, REINFORCE_SCHEMA } from './reinforce/config.js';
import { reinforceAlgorithm } from './reinforce/trainer.js';
import { REINFORCEPP_DEFAULTS, REINFORCEPP_SCHEMA } from './reinforcepp/config.js';
import { reinforceppAlgorithm } from './reinforcepp/trainer.js';

/** One online algorithm, its config type erased: what the command line, the demo, the lab and iterated RLHF use. */
export interface OnlineAlgorithmEntry {
  /** As messages and reports write it: 'PPO', 'REINFORCE++'. */
  title: string;
  /** One line for `rlhf train <name> --help`. */
  summary: string;
  /**
   * Mini-batches each rollout is split into when the demo, the lab or iterated RLHF embed the algorithm
   * (PPO: 2, several updates per rollout; 1 = one update on the whole rollout).
   */
  embeddedMiniBatches: number;
  /** Samples per prompt it needs at least (a group: GRPO, RLOO), with the reason for messages. */
  minSamplesPerPrompt: { min: number; why: string };
  /** The config fields as --help lines. */
  describeConfig(): string[];
  /** Reads a config file with --set overrides against this algorithm's schema and trains. */
  trainFromFile(file: string | undefined, sets: readonly string[], opts: OnlineRunOptions): Promise<OnlineRunSummary>;
  /** Trains on `raw` (any subset of the fields, validated against this algorithm's schema; `where` names it in errors). */
  train(raw: unknown, where: string, opts: OnlineRunOptions): Promise<OnlineRunSummary>;
}

interface TypedEntry<C extends OnlineConfig> extends Pick<OnlineAlgorithmEntry, 'title' | 'summary'> {
  defaults: C;
  schema: Schema<C>;
  /** A fresh Algorithm for a run (REINFORCE keeps per-run state in it). */
  algorithm(cfg: C): Algorithm<C>;
  embeddedMiniBatches?: number;
  minSamplesPerPrompt?: { min: number; why: string };
}

function entry<C extends OnlineConfig>(e: TypedEntry<C>): OnlineAlgorithmEntry {
  const run = (cfg: C, opts: OnlineRunOptions) => trainOnline(cfg, e.algorithm(cfg), opts);
  return {
    title: e.title,
    summary: e.summary,
    embeddedMiniBatches: e.embeddedMiniBatches ?? 1,
    minSamplesPerPrompt: e.minSamplesPerPrompt ?? { min: 1, why: '' },
    describeConfig: () => describeSchema(e.defaults, e.schema),
    trainFromFile: (file, sets, opts) => run(loadConfig(file, sets, e.defaults, e.schema), opts),
    train: (raw, where, opts) => run(validateConfig(raw, e.defaults, e.schema, where), opts),
  };
}

/** Every online algorithm by its command-line name (the order is the one help and messages list). */
export const ONLINE_ALGORITHMS = {
  ppo: entry({
    title: 'PPO',
    summary: 'optimise a policy with PPO (value head or separate critic, GAE, KL penalty in the reward, PPO-ptx)',
    defaults: PPO_DEFAULTS,
    schema: PPO_SCHEMA,
    algorithm: ppoAlgorithm,
    embeddedMiniBatches: 2,
  }),
  grpo: entry({
    title: 'GRPO',
    summary: 'optimise a policy with GRPO (group-normalised advantages, k3 KL in the loss; Dr. GRPO via grpo.scaleByStd=false)',
    defaults: GRPO_DEFAULTS,
    schema: GRPO_SCHEMA,
    algorithm: () => grpoAlgorithm,
    minSamplesPerPrompt: { min: 2, why: 'advantages are relative within a group' },
  }),
  rloo: entry({
    title: 'RLOO',
    summary: 'optimise a policy with RLOO (leave-one-out baselines, KL in the reward)',
    defaults: RLOO_DEFAULTS,
    schema: RLOO_SCHEMA,
    algorithm: () => rlooAlgorithm,
    minSamplesPerPrompt: { min: 2, why: "each sample's baseline is the mean of the other samples of its prompt" },
  }),
  remax: entry({
    title: 'ReMax',
    summary: "optimise a policy with ReMax (REINFORCE, the greedy decode's reward as baseline, KL in the reward)",
    defaults: REMAX_DEFAULTS,
    schema: REMAX_SCHEMA,
    algorithm: () => remaxAlgorithm,
  }),
  reinforce: entry({
    title: 'REINFORCE',
    summary: 'optimise a policy with REINFORCE and a moving-average baseline (KL in the reward)',
    defaults: REINFORCE_DEFAULTS,
    schema: REINFORCE_SCHEMA,
    algorithm: () => reinforceAlgorithm(),
  }),
  reinforcepp: entry({
    title: 'REINFORCE++',
    summary: 'optimise a policy with REINFORCE++ (token-level KL in the reward, globally whitened returns, PPO clipping)',
    defaults: REINFORCEPP_DEFAULTS,
    schema: REINFORCEPP_SCHEMA,
    algorithm: () => reinforceppAlgorithm,
  }),
} satisfies Record<string, OnlineAlgorithmEntry>;

/** An online algorithm's name: the type of every `rl.algorithm` field. */
export type OnlineAlgorithmName = keyof typeof ONLINE_ALGORITHMS;

/** The names, for a schema's `oneOf`. */
export const ONLINE_ALGORITHM_NAMES: readonly OnlineAlgorithmName[] = namesOf(ONLINE_ALGORITHMS);

/**
 * What an embedding (the demo, the lab, iterated RLHF) checks at config time, before any phase runs:
 * the algorithm's group size and that its mini-batches divide the rollout. `field` prefixes the names.
 */
export function checkEmbeddedRl(name: OnlineAlgorithmName, rl: { prompts: number; samplesPerPrompt: number }, field: string): void {
  const a = ONLINE_ALGORITHMS[name];
  const { min, why } = a.minSamplesPerPrompt;
  if (rl.samplesPerPrompt < min) throw new Error(`${field}.samplesPerPrompt must be ≥ ${min} for ${a.title} (${why}), got ${rl.samplesPerPrompt}`);
  const n = rl.prompts * rl.samplesPerPrompt;
  if (n % a.embeddedMiniBatches !== 0) {
    throw new Error(
      `${field}.prompts × ${field}.samplesPerPrompt must be divisible by ${a.embeddedMiniBatches} for ${a.title} (${a.embeddedMiniBatches} mini-batches per epoch), got ${n}`,
    );
  }
}

/** The train section an embedding adds for `name`: the rollout split into its mini-batches (nothing when 1). */
export function embeddedMiniBatch(name: OnlineAlgorithmName, rolloutSize: number): { miniBatchSize?: number } {
  const k = ONLINE_ALGORITHMS[name].embeddedMiniBatches;
  return k > 1 ? { miniBatchSize: rolloutSize / k } : {};
}
