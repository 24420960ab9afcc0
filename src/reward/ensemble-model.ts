/**
 * A reward ensemble as one scorer: K members' rewards (K, B) for a batch, aggregated into one reward
 * with ensemble.ts's rules. The members are the heads of one or more RewardModels, in order: K
 * independent models (`model.ensemble.members`, Coste et al. 2023) or the heads of one multi-head model
 * (`model.heads`) — a single one-head model is an ensemble of one, whose spread is 0.
 *
 * On disk an ensemble of models is a directory with ensemble.json (`EnsembleManifest`) and the
 * tokenizer files; the members are reward-model directories named relative to it (a training run writes
 * out/model/ensemble.json naming ../member-k/model, so the run directory moves as a whole).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { cat, type Tensor } from '../tensor/index.js';
import { resolveModelDir, writeDirAtomic } from '../models/hub.js';
import { aggregateEnsemble, ENSEMBLE_AGGREGATORS, type AggregatorName, type EnsembleOptions, type EnsembleReward } from './ensemble.js';
import { loadRewardModel, readRewardInfo } from './io.js';
import type { RewardModel } from './model.js';
import type { ScoreScale } from './rating-metrics.js';
import { readJsonFile } from '../atomic.js';

/** ensemble.json. */
export interface EnsembleManifest {
  /** Marks the file (and its version). */
  rlhf_reward_ensemble: 1;
  /** Member reward-model directories, relative to the manifest's directory (or absolute). */
  members: string[];
  /** Default aggregation and its λ (ensemble.ts). */
  aggregation: AggregatorName;
  lambda: number;
  /** How the members were made: bootstrap resamples or not, and the base seed (member k: seed + k). */
  bootstrap: boolean;
  seed: number;
  /** Statistics of the aggregated reward on a reference set (training responses), for normalisation in RL. */
  mean: number | null;
  std: number | null;
  /** The rating scale of members trained on ratings (shared by all of them), else null. */
  score_scale: ScoreScale | null;
}

export interface EnsembleDefaults {
  aggregation: AggregatorName;
  lambda: number;
  scoreScale: ScoreScale | null;
}

/** K reward models (or one model's K heads) scored together and aggregated (ENSEMBLE_AGGREGATORS). */
export class RewardEnsemble {
  readonly aggregation: AggregatorName;
  readonly lambda: number;
  readonly scoreScale: ScoreScale | null;

  /** `models` are owned: dispose() disposes them. */
  constructor(readonly models: readonly RewardModel[], defaults: Partial<EnsembleDefaults> = {}) {
    if (models.length === 0) throw new Error('RewardEnsemble: no members');
    this.aggregation = defaults.aggregation ?? 'mean';
    if (!Object.hasOwn(ENSEMBLE_AGGREGATORS, this.aggregation)) throw new Error(`RewardEnsemble: unknown aggregation '${this.aggregation}'`);
    this.lambda = defaults.lambda ?? 1;
    this.scoreScale = defaults.scoreScale ?? null;
  }

  /** Number of members K: every head of every model. */
  get size(): number {
    return this.models.reduce((k, m) => k + m.head.heads, 0);
  }

  /** Member rewards (K, B) for left-padded ids (B, T) with mask (B, T). */
  rewards(ids: Tensor, mask: Tensor | null): Tensor {
    const perModel = this.models.map((m) => m.rewards(ids, mask)); // each (B, H_m)
    const all = perModel.length === 1 ? perModel[0]! : cat(perModel, 1); // (B, K)
    return all.transpose(0, 1); // (K, B)
  }

  /** The aggregated reward (B) and spread (B) of members (K, B); the ensemble's defaults unless named. */
  aggregate(members: Tensor, name: AggregatorName = this.aggregation, opts: EnsembleOptions = { lambda: this.lambda }): EnsembleReward {
    return aggregateEnsemble(members, name, opts);
  }

  dispose(): void {
    for (const m of this.models) m.dispose();
  }
}

/** The heads of one (multi-head) reward model as an ensemble, with the model's own default aggregation. */
export function headEnsemble(rm: RewardModel, defaults: Partial<EnsembleDefaults> = {}): RewardEnsemble {
  return new RewardEnsemble([rm], defaults);
}

export function isEnsembleDir(dir: string): boolean {
  return existsSync(join(dir, 'ensemble.json'));
}

function readManifest(dir: string): EnsembleManifest {
  const path = join(dir, 'ensemble.json');
  const m = readJsonFile<Partial<EnsembleManifest>>(path);
  if (m.rlhf_reward_ensemble !== 1) throw new Error(`${path}: not a reward-ensemble manifest (rlhf_reward_ensemble must be 1)`);
  if (!Array.isArray(m.members) || m.members.length === 0 || !m.members.every((x) => typeof x === 'string')) throw new Error(`${path}: 'members' must be a non-empty list of directories`);
  if (typeof m.aggregation !== 'string' || !Object.hasOwn(ENSEMBLE_AGGREGATORS, m.aggregation)) {
    throw new Error(`${path}: 'aggregation' must be one of ${Object.keys(ENSEMBLE_AGGREGATORS).join(', ')}, got ${JSON.stringify(m.aggregation)}`);
  }
  return m as EnsembleManifest;
}

/**
 * Loads a reward ensemble: a directory with ensemble.json (its members, each a reward-model directory),
 * or a single reward-model directory (its heads the members, e.g. one model of K heads).
 */
export function loadRewardEnsemble(nameOrDir: string): RewardEnsemble {
  const dir = resolveModelDir(nameOrDir);
  if (!isEnsembleDir(dir)) {
    const info = readRewardInfo(dir);
    return headEnsemble(loadRewardModel(dir), info);
  }
  const m = readManifest(dir);
  const models: RewardModel[] = [];
  try {
    for (const member of m.members) models.push(loadRewardModel(resolve(dir, member)));
  } catch (e) {
    for (const x of models) x.dispose();
    throw e;
  }
  return new RewardEnsemble(models, { aggregation: m.aggregation, lambda: m.lambda ?? 1, scoreScale: m.score_scale ?? null });
}

/** Writes an ensemble directory atomically: ensemble.json plus `extraFiles` (the tokenizer's). */
export function saveEnsembleManifest(dir: string, manifest: EnsembleManifest, opts: { extraFiles?: string[] } = {}): void {
  writeDirAtomic(dir, (tmp) => {
    writeFileSync(join(tmp, 'ensemble.json'), JSON.stringify(manifest, null, 2) + '\n');
    for (const f of opts.extraFiles ?? []) writeFileSync(join(tmp, basename(f)), readFileSync(f));
  });
}
