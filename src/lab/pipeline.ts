/**
 * The lab's building blocks, written once and composed by the demo and every experiment:
 *   - phase: a resumable step, skipped when its done-marker holds this configuration's fingerprint;
 *   - sampleComparisons → labelPreferences: pairs of fresh samples labelled through Bradley–Terry on the gold;
 *   - trainProxy: a reward model on those labels, on the policy's backbone;
 *   - rlWithGold: RL (any online algorithm) against a reward, gold measured on the fresh samples of every
 *     evaluation and logged beside the proxy; readEvals reads the evaluations back from metrics.jsonl.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile, writeAtomic } from '../atomic.js';
import type { ConfigOverrides } from '../config.js';
import { validateConfig } from '../config.js';
import { loadModel, resolveModelDir } from '../models/hub.js';
import { REWARD_DEFAULTS, REWARD_SCHEMA, type RewardTrainConfig } from '../reward/config.js';
import type { RewardSource } from '../reward/sources.js';
import { type RewardRunSummary, trainRewardModel } from '../reward/train.js';
import { ONLINE_ALGORITHMS, type OnlineAlgorithmName } from '../rlhf/algorithms.js';
import type { PolicyEvaluation } from '../rlhf/online/rollout.js';
import { sample } from '../rlhf/online/rollout.js';
import type { OnlineRunSummary } from '../rlhf/online/trainer.js';
import { meanSe } from '../stats.js';
import { loadTokenizer } from '../text/index.js';
import { annotatePairs, type Comparison, toJsonl } from './annotators.js';
import { goldReward } from './gold.js';

/** A done-marker's content: the fingerprint it was made under and the phase's result. */
interface Marker<T> {
  fingerprint: unknown;
  result: T;
}

/** The marker's result when it was made under `fingerprint`; undefined when absent or stale. */
function fresh<T>(marker: string, fingerprint: unknown): { result: T } | undefined {
  if (!existsSync(marker)) return undefined;
  const saved = readJsonFile<Marker<T>>(marker);
  return JSON.stringify(saved.fingerprint) === JSON.stringify(fingerprint) ? { result: saved.result } : undefined;
}

/**
 * A resumable phase: skipped (its saved result returned) when `dir/<name>.done.json` holds this
 * fingerprint; otherwise run, and the marker written last (atomically), so a killed phase reruns. A stale
 * marker is removed first, with `clean` (the phase's output directory) when given.
 */
export async function phase<T>(dir: string, name: string, fingerprint: unknown, run: () => T | Promise<T>, clean?: string): Promise<T> {
  const marker = join(dir, `${name}.done.json`);
  const hit = fresh<T>(marker, fingerprint);
  if (hit) return hit.result;
  if (existsSync(marker)) {
    rmSync(marker);
    if (clean) rmSync(clean, { recursive: true, force: true });
  }
  const result = await run();
  writeAtomic(marker, JSON.stringify({ fingerprint, result }));
  return result;
}

/** phase for a synchronous step whose marker is the file `path` itself. */
export function cachedResult<T>(path: string, fingerprint: unknown, make: () => T): T {
  const hit = fresh<T>(path, fingerprint);
  if (hit) return hit.result;
  const result = make();
  writeAtomic(path, JSON.stringify({ fingerprint, result }));
  return result;
}

/**
 * `n` comparisons, each of two fresh unconditional samples of `model` (temperature 1, no top-k/p): 2n
 * samples in batches of 128, sample 2i against 2i + 1.
 */
export function sampleComparisons(model: string, n: number, maxNewTokens: number, seed: number, say: (l: string) => void): Comparison[] {
  const policy = loadModel(model);
  const tok = loadTokenizer(resolveModelDir(model));
  try {
    const settings = { maxNewTokens, temperature: 1, topK: 0, topP: 1 };
    const texts: string[] = [];
    for (let i = 0; i < 2 * n; i += 128) {
      texts.push(...sample(policy, tok, Array.from({ length: Math.min(128, 2 * n - i) }, () => ''), settings, seed, i).completions);
      say(`sampled ${texts.length}/${2 * n}`);
    }
    return Array.from({ length: n }, (_, i) => ({ prompt: '', a: texts[2 * i]!, b: texts[2 * i + 1]! }));
  } finally {
    policy.dispose();
  }
}

/** What labelPreferences draws: `pairs` comparisons of `maxNewTokens`-token samples, labelled with rationality β. */
export interface PreferenceSettings {
  pairs: number;
  maxNewTokens: number;
  rationality: number;
}

/**
 * Preference data: comparisons of fresh samples of `model` (sampling seed seed + 101), labelled by one
 * Bradley–Terry annotator of rationality β on the gold reward (seed `seed`), written to
 * `out`/preferences.jsonl; `agreement` is the fraction of labels that agree with the gold ordering.
 */
export function labelPreferences(
  o: { model: string; out: string; seed: number; p: PreferenceSettings; source: string },
  say: (l: string) => void,
): { path: string; pairs: number; agreement: number } {
  const comparisons = sampleComparisons(o.model, o.p.pairs, o.p.maxNewTokens, o.seed + 101, say);
  const records = annotatePairs(comparisons, { annotators: [{ id: 'bt', beta: o.p.rationality }], seed: o.seed, source: o.source });
  const agreement = records.filter((r) => goldReward(r.chosen) >= goldReward(r.rejected)).length / records.length;
  const path = join(o.out, 'preferences.jsonl');
  writeAtomic(path, toJsonl(records));
  return { path, pairs: records.length, agreement };
}

/** A proxy reward model: pairwise data (identical pairs skipped), a pretrained backbone, 5 warm-up steps unless the caller says otherwise. */
export interface ProxySpec {
  seed: number;
  /** The run directory; the model lands in out/model. */
  out: string;
  /** The backbone: the policy's initial weights. */
  base: string;
  threads: number;
  data: ConfigOverrides<RewardTrainConfig['data']>;
  model?: ConfigOverrides<RewardTrainConfig['model']>;
  loss?: ConfigOverrides<RewardTrainConfig['loss']>;
  train: ConfigOverrides<RewardTrainConfig['train']>;
  /** Names the config in errors. */
  where: string;
  fresh?: boolean;
}

/** Trains the proxy reward model; returns its model directory and the run's summary (held-out evaluation included). */
export async function trainProxy(s: ProxySpec, progress: (l: string) => void): Promise<{ dir: string; summary: RewardRunSummary }> {
  const cfg = validateConfig(
    {
      seed: s.seed,
      out: s.out,
      // Two samples can be the same text: such a pair says nothing and is skipped (counted in the proxy's run).
      data: { format: 'pairwise', skipInvalid: true, ...s.data },
      model: { init: 'pretrained', base: s.base, ...s.model },
      ...(s.loss ? { loss: s.loss } : {}),
      train: { warmupSteps: 5, threads: s.threads, ...s.train },
    },
    REWARD_DEFAULTS,
    REWARD_SCHEMA,
    s.where,
  );
  const summary = await trainRewardModel(cfg, { progress, ...(s.fresh ? { fresh: true } : {}) });
  return { dir: join(cfg.out, 'model'), summary };
}

/** The gold reward of texts: each text's, their mean and its standard error. */
export interface GoldStats {
  gold: number;
  goldSe: number;
  values: number[];
}

/** The gold reward's per-text values, mean and standard error over texts. */
export function goldStats(texts: readonly string[]): GoldStats {
  const values = texts.map(goldReward);
  const { mean, se } = meanSe(values);
  return { gold: mean, goldSe: se, values };
}

/** An RL run of the lab: the algorithm, its config (any subset of the fields), and what it runs against. */
export interface RlSpec {
  /** An online algorithm (default 'ppo'). */
  algorithm?: OnlineAlgorithmName;
  /** The run's config, validated against the algorithm's schema. */
  config: object;
  /** Names the config in errors. */
  where: string;
  /** A reward source in place of config.reward.sources (owned by the caller). */
  reward?: RewardSource;
  fresh?: boolean;
  signal?: AbortSignal;
  progress: (l: string) => void;
  /**
   * Gold is measured on every evaluation's fresh samples and logged as `gold`, `goldSe` (false: no gold,
   * e.g. when the reward is the gold itself). The hook sees each evaluation with its gold.
   */
  gold?: boolean;
  onEval?: (step: number, e: PolicyEvaluation, gold: GoldStats | null) => Record<string, unknown> | undefined;
}

/** Runs RL as `spec` says, measuring gold on the fresh samples of every evaluation. */
export function rlWithGold(spec: RlSpec): Promise<OnlineRunSummary> {
  const withGold = spec.gold ?? true;
  const onEval = (step: number, e: PolicyEvaluation) => {
    const g = withGold ? goldStats(e.samples.completions) : null;
    return { ...(g ? { gold: g.gold, goldSe: g.goldSe } : {}), ...spec.onEval?.(step, e, g) };
  };
  return ONLINE_ALGORITHMS[spec.algorithm ?? 'ppo'].train(spec.config, spec.where, {
    onEval,
    progress: spec.progress,
    ...(spec.signal ? { signal: spec.signal } : {}),
    ...(spec.reward ? { reward: spec.reward } : {}),
    ...(spec.fresh ? { fresh: true } : {}),
  });
}

/** One evaluation of an RL run as metrics.jsonl holds it (gold fields when the run measured gold). */
export interface EvalPoint {
  step: number;
  kl: number;
  reward: number;
  rewardSe: number;
  gold: number;
  goldSe: number;
  distinct2: number;
  length: number;
}

/** The evaluations of the RL run in `dir`, in step order, from its metrics.jsonl (a resumed run's included). */
export function readEvals(dir: string): EvalPoint[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; eval?: Omit<EvalPoint, 'step'> })
    .flatMap((r) => (r.eval ? [{ ...r.eval, step: r.step }] : []));
}
