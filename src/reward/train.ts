/**
 * Reward-model training (`rlhf train rm`): feedback → a backbone with a scalar head, trained with a loss
 * from losses.ts. The loop reads: batch → forward (all of a batch's responses together) → loss →
 * backward (accumulated) → clip → schedule → step → log → evaluate → checkpoint. Checkpoints are atomic
 * and hold the model, the optimiser and the step, and the data order is a pure function of (seed,
 * epoch), so a resumed run continues exactly where an uninterrupted one would be.
 *
 * What a micro-batch's loss is depends on loss.type (`OBJECTIVES`, checked against data.format by
 * config.ts): Bradley–Terry on pairs, Plackett–Luce on rankings (or pairs, K = 2), Gaussian on ratings.
 * With model.ensemble.members = K > 0 the same loop trains K members one after another, each on its own
 * bootstrap resample with its own seed and checkpoint, and out/model becomes an ensemble manifest.
 */
import { tensorBoardFor } from '../tensorboard.js';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Optimizer, Generator, manualSeed, scope, setNumThreads, tensor, type Tensor } from '../tensor/index.js';
import { epochOptimizer } from '../nn/train-fields.js';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.js';
import { applyLora, type LoraAdapters, loraConfigOf } from '../nn/lora.js';
import type { Module } from '../nn/module.js';
import { runEpochLoop, StepPlan } from '../nn/train-loop.js';
import { checkResumeConfig, openMetricsLog, recoverRunDir, withRunLock } from '../run-dir.js';
import { leftPad } from '../generate/generate.js';
import { loadModel, resolveModelDir, tokenizerFiles } from '../models/hub.js';
import { LlamaForCausalLM, type LlamaConfig } from '../models/llama.js';
import type { CausalLM } from '../models/common.js';
import { loadTokenizer, type Tokenizer } from '../text/index.js';
import { bootstrapIndices } from './ensemble.js';
import { headEnsemble, loadRewardEnsemble, saveEnsembleManifest, type EnsembleManifest, type RewardEnsemble } from './ensemble-model.js';
import { describeHeldOut, evaluateHeldOut, scoreSequences, type HeldOutReport, type PairReport, type RatingReport } from './evaluate.js';
import { REWARD_LOSSES } from './losses.js';
import { RewardModel } from './model.js';
import { saveRewardModel } from './io.js';
import { checkRewardConfig, configAggregation, type RewardTrainConfig, type RewardTrainLoss } from './config.js';
import { loadRewardRecords, tokenizeRecords, type TokenizedRecord } from './pairs.js';
import { scoreScaleOf, type ScoreScale } from './rating-metrics.js';
import { writeAtomic, readJsonFile } from '../atomic.js';

export { evaluateRewardModel } from './evaluate.js';

// ---- objectives: one micro-batch → its loss

/** What a loss reads besides the rewards: the config's loss fields and the training ratings' scale. */
interface LossContext {
  loss: RewardTrainConfig['loss'];
  scoreScale: ScoreScale | null;
}

/** A micro-batch's loss, and how many of the comparisons it holds the rewards already order correctly. */
interface BatchLoss {
  loss: Tensor;
  correct: number;
  compared: number;
}

type Objective = (rm: RewardModel, batch: readonly TokenizedRecord[], ctx: LossContext) => BatchLoss;

/** Rewards (N, H) of N sequences in one left-padded forward. */
function forward(rm: RewardModel, seqs: readonly number[][]): Tensor {
  const { ids, mask } = leftPad(seqs);
  return rm.rewards(ids, mask);
}

/**
 * A BT loss's margin and weights for a batch: the constant margin plus, with loss.recordMargins, each
 * record's own (B, 1); with loss.recordWeights, each record's weight (B) (1 where it has none).
 */
function recordTerms(ctx: LossContext, batch: readonly TokenizedRecord[]): { margin: Tensor | number; weights?: Tensor } {
  const margin = ctx.loss.recordMargins
    ? tensor(Float32Array.from(batch, (p) => ctx.loss.margin + (p.record.meta.margin ?? 0)), { shape: [batch.length, 1] })
    : ctx.loss.margin;
  return ctx.loss.recordWeights ? { margin, weights: tensor(Float32Array.from(batch, (p) => p.record.meta.weight ?? 1)) } : { margin };
}

/** Pairs: chosen rows first, then rejected, one forward of 2B sequences. */
function pairwise(loss: (chosen: Tensor, rejected: Tensor, ctx: LossContext, batch: readonly TokenizedRecord[]) => Tensor): Objective {
  return (rm, batch, ctx) => {
    const b = batch.length;
    const r = forward(rm, [...batch.map((p) => p.seqs[0]!), ...batch.map((p) => p.seqs[1]!)]); // (2B, H)
    const chosen = r.narrow(0, 0, b);
    const rejected = r.narrow(0, b, b);
    let l = loss(chosen, rejected, ctx, batch);
    if (ctx.loss.centerCoef > 0) l = l.add(REWARD_LOSSES.centering({ chosen, rejected, coefficient: ctx.loss.centerCoef }));
    // Ties count ½, as pair accuracy does everywhere (src/reward/metrics.ts, src/rlhf/core/preference.ts).
    const wins = chosen.gt(rejected).float().add(chosen.eq(rejected).float().mul(0.5));
    return { loss: l, correct: wins.sum().item() / chosen.size(1), compared: b };
  };
}

/**
 * Rankings (and pairs as rankings of 2): every record's K_b responses in one forward, gathered into
 * rewards (B·H, K) best first, K = max K_b; the positions past K_b are masked out of the loss.
 */
const plackettLuce: Objective = (rm, batch, ctx) => {
  const b = batch.length;
  const k = Math.max(...batch.map((x) => x.seqs.length));
  const r = forward(rm, batch.flatMap((x) => x.seqs)); // (ΣK_b, H)
  const h = r.size(1);
  // The row of r for each (record, position); a padded position repeats the record's first response.
  const rows = new BigInt64Array(b * k);
  const valid: boolean[] = [];
  let off = 0;
  batch.forEach((x, i) => {
    for (let j = 0; j < k; j++) {
      rows[i * k + j] = BigInt(off + (j < x.seqs.length ? j : 0));
      valid.push(j < x.seqs.length);
    }
    off += x.seqs.length;
  });
  const ranked = r.indexSelect(0, tensor(rows)).reshape(b, k, h).transpose(1, 2).reshape(b * h, k); // (B·H, K): one ranking per head
  const mask = tensor(valid, { shape: [b, 1, k] }).expand(b, h, k).reshape(b * h, k); // (B·H, K)
  let loss = REWARD_LOSSES.plackett_luce({ rewards: ranked, mask });
  if (ctx.loss.centerCoef > 0) loss = loss.add(REWARD_LOSSES.centering({ chosen: ranked.select(1, 0), rejected: ranked.select(1, 1), coefficient: ctx.loss.centerCoef }));
  // Training accuracy: the implied pairs (i < j ≤ K_b) in order, averaged over heads; ties ½.
  const v = ranked.data() as Float32Array;
  let correct = 0;
  let compared = 0;
  batch.forEach((x, i) => {
    const kb = x.seqs.length;
    compared += (kb * (kb - 1)) / 2;
    for (let head = 0; head < h; head++) {
      const row = (i * h + head) * k;
      for (let p = 0; p < kb; p++) {
        for (let q = p + 1; q < kb; q++) correct += (v[row + p]! > v[row + q]! ? 1 : v[row + p] === v[row + q] ? 0.5 : 0) / h;
      }
    }
  });
  return { loss, correct, compared };
};

/** Ratings: rewards (B, H) regressed onto the standardised scores (B, 1); no comparisons. */
const gaussian: Objective = (rm, batch, ctx) => {
  const r = forward(rm, batch.map((x) => x.seqs[0]!)); // (B, H)
  const scores = tensor(Float32Array.from(batch, (x) => (x.record.kind === 'rating' ? x.record.score : NaN)), { shape: [batch.length, 1] });
  return { loss: REWARD_LOSSES.gaussian({ rewards: r, scores, scoreScale: ctx.scoreScale!, sigma: ctx.loss.sigma }), correct: 0, compared: 0 };
};

/** The micro-batch loss of each loss.type. */
const OBJECTIVES: Readonly<Record<RewardTrainLoss, Objective>> = {
  bradley_terry: pairwise((chosen, rejected, ctx, batch) => REWARD_LOSSES.bradley_terry({ chosen, rejected, ...recordTerms(ctx, batch) })),
  label_smoothed_bt: pairwise((chosen, rejected, ctx, batch) => REWARD_LOSSES.label_smoothed_bt({ chosen, rejected, ...recordTerms(ctx, batch), labelSmoothing: ctx.loss.labelSmoothing })),
  plackett_luce: plackettLuce,
  gaussian,
};

// ---- backbone, checkpoints

function buildBackbone(cfg: RewardTrainConfig, tok: Tokenizer, gen: Generator): CausalLM {
  if (cfg.model.init === 'pretrained') return loadModel(cfg.model.base);
  const s = cfg.model.scratch;
  if (s.hiddenSize % s.heads !== 0) throw new Error(`model.scratch.hiddenSize ${s.hiddenSize} must be divisible by model.scratch.heads ${s.heads}`);
  const config: LlamaConfig = {
    architecture: 'llama', modelType: 'llama', vocabSize: tok.vocabSize, hiddenSize: s.hiddenSize, intermediateSize: s.intermediateSize,
    numLayers: s.layers, numHeads: s.heads, numKvHeads: s.heads, headDim: s.hiddenSize / s.heads, maxPositions: s.maxPositions,
    rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: true, qkvBias: false, oBias: false, mlpBias: false, qkNorm: false, slidingWindow: null, slidingLayers: [],
    initializerRange: 0.02, bosTokenId: tok.bosId, eosTokenIds: [...tok.eosIds], padTokenId: tok.padId,
  };
  return new LlamaForCausalLM(config, { generator: gen });
}

interface TrainerState {
  step: number;
  config: RewardTrainConfig;
  /** The ensemble member this checkpoint belongs to (absent for a single model). */
  member?: number;
}

/** Writes the resumable state atomically: model and optimiser tensors, the step, the config. */
function saveRunCheckpoint(dir: string, run: Pick<OpenRun, 'rm' | 'adapters' | 'opt'>, state: TrainerState): void {
  saveCheckpoint(dir, checkpointParts(run), state);
}

function loadRunCheckpoint(dir: string, run: Pick<OpenRun, 'rm' | 'adapters' | 'opt'>): number {
  return loadCheckpoint<TrainerState>(dir, checkpointParts(run)).step;
}

/** The model (its head, and a full backbone when it trains), its LoRA adapters when it has them, the optimiser. */
function checkpointParts(run: Pick<OpenRun, 'rm' | 'adapters' | 'opt'>): { modules: Record<string, Module>; optimizers: { optimizer: Optimizer } } {
  return { modules: { model: run.rm, ...(run.adapters ? { adapters: run.adapters } : {}) }, optimizers: { optimizer: run.opt } };
}

/** Mean and sample standard deviation of the (aggregated) rewards of the first 256 training records' responses. */
function referenceStats(model: RewardEnsemble, train: readonly TokenizedRecord[]): { mean: number; std: number } {
  const all = scoreSequences(model, train.slice(0, 256).flatMap((r) => r.seqs)).reward;
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, all.length - 1));
  return { mean, std };
}

// ---- one model's run

/** What trainRewardModel returns: steps, records used and dropped, reward statistics for RL, the held-out evaluation. */
export interface RewardRunSummary {
  out: string;
  /** Optimiser steps (an ensemble: each member's; they all take the same number). */
  steps: number;
  /** The step a resumed run continued from (an ensemble: null; see each member's). */
  resumedFrom: number | null;
  seconds: number;
  /** Training records (pairs, rankings or ratings; a member: its resample) and held-out records. */
  trainPairs: number;
  heldOutPairs: number;
  dropped: { invalid: number; tooLong: number };
  /** Statistics of the (aggregated) reward on training responses, for normalisation in RL. */
  rewardMean: number;
  rewardStd: number;
  /** Held-out pairwise evaluation: pairs, or every pair rankings imply (evaluate.ts); null for ratings. */
  eval: PairReport | null;
  /** Held-out rating evaluation (data.format rating), else null. */
  ratingEval: RatingReport | null;
  /** The training ratings' scale the gaussian loss regressed onto, else null. */
  scoreScale: ScoreScale | null;
  /** An ensemble's members, each its own run (model.ensemble.members > 0), else null. */
  members: RewardRunSummary[] | null;
}

/** Everything a run's members share: the config, tokenizer and tokenized records. */
interface RunData {
  cfg: RewardTrainConfig;
  tokDir: string;
  tok: Tokenizer;
  train: TokenizedRecord[];
  test: TokenizedRecord[];
  dropped: { invalid: number; tooLong: number };
  scoreScale: ScoreScale | null;
}

/** One model to train: a single run (member null) or ensemble member k. */
interface ModelRun {
  member: number | null;
  seed: number;
  out: string;
  train: readonly TokenizedRecord[];
}

/** Options of trainRewardModel: a fresh start, progress lines, an abort signal. */
export interface RewardRunOptions {
  fresh?: boolean;
  progress?: (line: string) => void;
  /** Stops before the next step with a checkpoint written (InterruptedError); a rerun resumes. */
  signal?: AbortSignal;
}

/** A run's model and optimiser, the step they are at, and its metrics log. */
interface OpenRun {
  rm: RewardModel;
  /** LoRA adapters on the backbone (cfg.lora.r > 0; the score head trains in full beside them), else null. */
  adapters: LoraAdapters | null;
  opt: Optimizer;
  resumedFrom: number | null;
  logMetrics: (m: Record<string, unknown>) => void;
}

/**
 * Builds the model and optimiser and, unless `fresh`, loads the checkpoint in run.out when it is this
 * configuration's (and member's); any other checkpoint is refused. metrics.jsonl keeps only the rows the
 * checkpoint covers: later ones belong to the interrupted run.
 */
function openRewardRun(d: RunData, run: ModelRun, fresh: boolean, say: (line: string) => void): OpenRun {
  const { cfg } = d;
  manualSeed(run.seed);
  mkdirSync(run.out, { recursive: true });
  for (const l of recoverRunDir(run.out)) say(l);
  const gen = new Generator(run.seed);
  const rm = new RewardModel(buildBackbone(cfg, d.tok, gen), { heads: cfg.model.heads }, { generator: gen });
  const lora = loraConfigOf(cfg.lora);
  if (lora && cfg.model.headOnly) throw new Error('model.headOnly and lora.r > 0 exclude each other: the first freezes the backbone the second adapts');
  // LoRA targets the backbone's layers (the score head is no target: it trains in full).
  const adapters = lora ? applyLora(rm, lora, { generator: gen }) : null;
  gen.dispose();
  if (cfg.model.headOnly || adapters) rm.freeze((n) => !n.startsWith('score.')).unfreeze((n) => n.startsWith('score.'));
  const opt = epochOptimizer([...rm.trainableParameters(), ...(adapters?.trainableParameters() ?? [])], cfg.train);
  let resumedFrom: number | null = null;
  const ckpt = join(run.out, 'checkpoint');
  if (!fresh && existsSync(join(ckpt, 'trainer.json'))) {
    const saved = readJsonFile<TrainerState>(join(ckpt, 'trainer.json'));
    try {
      checkResumeConfig(run.out, { ...saved.config, member: saved.member ?? null }, { ...cfg, member: run.member });
    } catch (e) {
      opt.dispose();
      adapters?.detach();
      rm.dispose();
      throw e;
    }
    resumedFrom = loadRunCheckpoint(ckpt, { rm, adapters, opt });
  }
  return { rm, adapters, opt, resumedFrom, logMetrics: openMetricsLog(join(run.out, 'metrics.jsonl'), resumedFrom, say, tensorBoardFor(memberLogging(cfg, run.member), resumedFrom)) };
}

/** An ensemble member logs TensorBoard events to its own subdirectory, member-K (one run per member). */
function memberLogging(cfg: RewardTrainConfig, member: number | null): RewardTrainConfig {
  return member === null || !cfg.logging.tensorboard ? cfg : { ...cfg, logging: { tensorboard: join(cfg.logging.tensorboard, `member-${member}`) } };
}

/** Trains one reward model into run.out: the loop, then its final checkpoint, model and held-out evaluation. */
async function fitRewardModel(d: RunData, run: ModelRun, opts: RewardRunOptions, t0: number): Promise<RewardRunSummary> {
  const { cfg } = d;
  const tag = run.member === null ? '[train rm]' : `[train rm member ${run.member}]`;
  const say = (l: string) => (opts.progress ?? ((x: string) => process.stderr.write(x + '\n')))(`${tag} ${l}`);
  const open = openRewardRun(d, run, opts.fresh ?? false, say);
  const { rm, adapters, opt, resumedFrom, logMetrics } = open;
  if (resumedFrom !== null) say(`resuming from step ${resumedFrom}`);
  const plan = new StepPlan(run.train.length, cfg.train, run.seed);
  const ckpt = join(run.out, 'checkpoint');
  const state = (step: number): TrainerState => ({ step, config: cfg, ...(run.member === null ? {} : { member: run.member }) });

  const objective = OBJECTIVES[cfg.loss.type];
  const ctx: LossContext = { loss: cfg.loss, scoreScale: d.scoreScale };
  const scorer = headEnsemble(rm, configAggregation(cfg)); // the trainer's own model: not disposed through it
  const evaluate = (records: readonly TokenizedRecord[]): HeldOutReport => evaluateHeldOut(scorer, records, { seed: cfg.seed, scoreScale: d.scoreScale });
  const evalSet = cfg.train.evalLimit > 0 ? d.test.slice(0, cfg.train.evalLimit) : d.test;
  try {
    const step = await runEpochLoop({
      plan, opt, params: () => [...rm.trainableParameters(), ...(adapters?.trainableParameters() ?? [])], train: cfg.train, resumedFrom,
      // Each micro-batch's mean loss weighs 1/gradAccum; the logged loss is their mean.
      step: (micro) => {
        let lossSum = 0;
        let correct = 0;
        let compared = 0;
        for (const idx of micro) {
          scope(() => {
            const b = objective(rm, idx.map((i) => run.train[i]!), ctx);
            b.loss.div(cfg.train.gradAccum).backward();
            lossSum += b.loss.item();
            correct += b.correct;
            compared += b.compared;
          });
        }
        return { loss: lossSum / cfg.train.gradAccum, metrics: { accuracy: compared > 0 ? correct / compared : null } };
      },
      describe: (r) => `loss ${r.loss.toFixed(4)}${r.metrics.accuracy === null ? '' : ` acc ${(r.metrics.accuracy as number).toFixed(3)}`} lr ${r.lr.toExponential(2)}`,
      evaluate: (step) => {
        if (!evalSet.length) return;
        const e = evaluate(evalSet);
        logMetrics({ step, eval: evalRow(e) });
        say(`eval at step ${step}: ${describeHeldOut(e)}`);
      },
      checkpoint: (step) => saveRunCheckpoint(ckpt, open, state(step)),
      log: logMetrics, say, out: run.out, t0, ...(opts.signal ? { signal: opts.signal } : {}),
    });

    // ---- reward statistics on a reference set (training responses), for normalisation in RL; save; evaluate
    adapters?.merge(); // training is over: the saved model and what follows are the merged weights
    const { mean, std } = referenceStats(scorer, run.train);
    rm.head.mean = mean;
    rm.head.std = std;
    saveRewardModel(rm, join(run.out, 'model'), { extraFiles: tokenizerFiles(d.tokDir), aggregation: configAggregation(cfg), scoreScale: d.scoreScale });
    const final = evaluate(d.test);
    if (writeEval(run.out, final)) logMetrics({ step, eval: { ...evalRow(final), final: true } });
    return {
      out: run.out, steps: step, resumedFrom, seconds: (Date.now() - t0) / 1000,
      trainPairs: run.train.length, heldOutPairs: d.test.length, dropped: d.dropped,
      rewardMean: mean, rewardStd: std, ...final, scoreScale: d.scoreScale, members: null,
    };
  } finally {
    opt.dispose();
    adapters?.detach();
    rm.dispose();
  }
}

/** The headline numbers of an evaluation, for metrics.jsonl. */
function evalRow(e: HeldOutReport): Record<string, unknown> {
  if (e.eval) return { accuracy: e.eval.accuracy, ece: e.eval.ece, n: e.eval.n, ...(e.eval.spread !== undefined ? { spread: e.eval.spread } : {}) };
  if (e.ratingEval) return { pearson: e.ratingEval.pearson, spearman: e.ratingEval.spearman, rmse: e.ratingEval.rmse, n: e.ratingEval.n, ...(e.ratingEval.spread !== undefined ? { spread: e.ratingEval.spread } : {}) };
  return {};
}

/** Writes the final held-out evaluation to out/eval.json; false when there is none. */
function writeEval(out: string, e: HeldOutReport): boolean {
  const report = e.eval ?? e.ratingEval;
  if (report) writeAtomic(join(out, 'eval.json'), JSON.stringify(report, null, 2));
  return report !== null;
}

// ---- an ensemble's run

/**
 * Trains K members (model.ensemble.members) one after another through fitRewardModel: member k with
 * seed + k on bootstrap resample k of the training records, into out/member-k/; then writes the manifest
 * out/model/ensemble.json and evaluates the ensemble as `rlhf eval rm` would (aggregated reward, spread).
 */
async function trainEnsemble(d: RunData, opts: RewardRunOptions, t0: number): Promise<RewardRunSummary> {
  const { cfg } = d;
  const k = cfg.model.ensemble.members;
  const resamples = cfg.model.ensemble.bootstrap ? bootstrapIndices(d.train.length, k, cfg.seed) : null;
  const memberDirs = Array.from({ length: k }, (_, m) => `member-${m}`);
  const members: RewardRunSummary[] = [];
  for (const [m, dir] of memberDirs.entries()) {
    members.push(await fitRewardModel(d, {
      member: m, seed: cfg.seed + m, out: join(cfg.out, dir),
      train: resamples ? resamples[m]!.map((i) => d.train[i]!) : d.train,
    }, opts, t0));
  }

  // The manifest first, so the ensemble is loaded and evaluated exactly as `rlhf eval rm` will; then again
  // with the aggregated reward's statistics.
  const manifest: EnsembleManifest = {
    rlhf_reward_ensemble: 1, members: memberDirs.map((dir) => `../${dir}/model`), ...configAggregation(cfg),
    bootstrap: cfg.model.ensemble.bootstrap, seed: cfg.seed, mean: null, std: null, score_scale: d.scoreScale,
  };
  const dir = join(cfg.out, 'model');
  saveEnsembleManifest(dir, manifest, { extraFiles: tokenizerFiles(d.tokDir) });
  const ens = loadRewardEnsemble(dir);
  try {
    const { mean, std } = referenceStats(ens, d.train);
    saveEnsembleManifest(dir, { ...manifest, mean, std }, { extraFiles: tokenizerFiles(d.tokDir) });
    const final = evaluateHeldOut(ens, d.test, { seed: cfg.seed, scoreScale: d.scoreScale });
    writeEval(cfg.out, final);
    return {
      out: cfg.out, steps: members[0]!.steps, resumedFrom: null, seconds: (Date.now() - t0) / 1000,
      trainPairs: d.train.length, heldOutPairs: d.test.length, dropped: d.dropped,
      rewardMean: mean, rewardStd: std, ...final, scoreScale: d.scoreScale, members,
    };
  } finally {
    ens.dispose();
  }
}

/** Loads, splits and tokenizes the run's records; computes the rating scale on the training part. */
async function prepareData(cfg: RewardTrainConfig, say: (l: string) => void): Promise<RunData> {
  const baseDir = resolveModelDir(cfg.model.base);
  if (cfg.model.tokenizer && cfg.model.init !== 'scratch') throw new Error("model.tokenizer applies to init 'scratch' only (a pretrained backbone keeps its own)");
  const tokDir = cfg.model.tokenizer ? resolveModelDir(cfg.model.tokenizer) : baseDir;
  const tok = loadTokenizer(tokDir);
  const trainRaw = await loadRewardRecords(cfg.data, 'train');
  const testRaw = await loadRewardRecords(cfg.data, 'test');
  const train = tokenizeRecords(trainRaw.records, tok, cfg.data.maxTokens);
  const test = tokenizeRecords(testRaw.records, tok, cfg.data.maxTokens);
  const records = cfg.data.limit > 0 ? train.records.slice(0, cfg.data.limit) : train.records;
  if (records.length === 0) throw new Error(`${cfg.data.path}: no training records left after splitting and length limits`);
  // Split from one file, both parts read all of it: count its invalid lines once.
  const invalid = cfg.data.testPath ? trainRaw.invalid + testRaw.invalid : trainRaw.invalid;
  const tooLong = train.tooLong + test.tooLong;
  say(`[train rm] ${records.length} training records, ${test.records.length} held out (${invalid} invalid, ${tooLong} over ${cfg.data.maxTokens} tokens)`);
  const scoreScale = cfg.loss.type === 'gaussian' ? scoreScaleOf(records.map((r) => (r.record.kind === 'rating' ? r.record.score : NaN))) : null;
  return { cfg, tokDir, tok, train: records, test: test.records, dropped: { invalid, tooLong }, scoreScale };
}

/**
 * Trains a reward model (or an ensemble, model.ensemble.members > 0) under `cfg` into cfg.out (locked for
 * the run), resuming from its checkpoints when they hold this configuration.
 */
export async function trainRewardModel(cfg: RewardTrainConfig, opts: RewardRunOptions = {}): Promise<RewardRunSummary> {
  checkRewardConfig(cfg);
  return withRunLock(cfg.out, () => runRewardModel(cfg, opts));
}

async function runRewardModel(cfg: RewardTrainConfig, opts: RewardRunOptions): Promise<RewardRunSummary> {
  const t0 = Date.now();
  const say = opts.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  const d = await prepareData(cfg, say);
  mkdirSync(cfg.out, { recursive: true });
  if (cfg.model.ensemble.members > 0) for (const l of recoverRunDir(cfg.out)) say(`[train rm] ${l}`); // a member's own directory is its run's
  if (cfg.model.ensemble.members > 0) return trainEnsemble(d, { ...opts, progress: say }, t0);
  return fitRewardModel(d, { member: null, seed: cfg.seed, out: cfg.out, train: d.train }, { ...opts, progress: say }, t0);
}
