/**
 * The online RL loop every sampling trainer runs (PPO, GRPO, RLOO, ReMax, REINFORCE, REINFORCE++): per step
 *   rollout → score → advantages → update (epochs × mini-batches × micro-batches) → log → checkpoint,
 * with an `Algorithm` supplying what differs: where the KL penalty goes, how advantages are made, and
 * whether a critic trains alongside. The update normalises each mini-batch's loss by its global token
 * (or sequence) count, so gradient accumulation over micro-batches reproduces one big batch exactly.
 *
 * Determinism: step s samples with seed hash(seed, s) and shuffles mini-batches with (seed, s, epoch), the
 * reward normaliser, KL controller and any algorithm state are saved in the checkpoint — so resuming from
 * step k reproduces an uninterrupted run.
 */
import { mean } from '../../stats.js';
import { tensorBoardFor } from '../../tensorboard.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdamW, cat, clipGradNorm, keep, manualSeed, memory, noGrad, type Optimizer, resetPeakMemory, scope, setNumThreads, type Tensor, tensor } from '../../tensor/index.js';
import { loadCheckpoint, openMetricsLog, readCheckpointState, saveCheckpoint } from '../../nn/checkpoint.js';
import type { Module } from '../../nn/module.js';
import { lrAt } from '../../nn/schedule.js';
import { loadModel, resolveModelDir, tokenizerFiles } from '../../models/hub.js';
import { disposePolicy, loadPolicy, savePolicy, trainablePart } from '../../models/adapted.js';
import type { LoraAdapters } from '../../nn/lora.js';
import { referenceLoader } from '../offline.js';
import type { CausalLM } from '../../models/common.js';
import { loadTokenizer, type Tokenizer } from '../../text/index.js';
import { epochOrder, guardFinite, InterruptedError } from '../../nn/train-loop.js';
import { checkResumeConfig, recoverRunDir, withRunLock } from '../../run-dir.js';
import { RewardModel } from '../../reward/model.js';
import { AdaptiveKlController, FixedKlController, type KlController } from '../core/kl-controller.js';
import { KL_ESTIMATORS } from '../core/advantages.js';
import { clippedPolicyLoss, clippedValueLoss, normalise } from '../core/losses.js';
import { clipRewards, lengthPenalty, missingEosPenalty, normaliseRewards, RunningMoments } from '../core/shaping.js';
import { combinedReward, parseRewardSpec, RewardSourceError, sameTokenizer, type RewardSource } from '../../reward/sources.js';
import { actorForward, criticForward, disposeActions, sliceActions, ValueHead } from './actor.js';
import { checkOnlineConfig, type CriticKind, type OnlineConfig } from './config.js';
import { type Critic, disposeScored, distinctTokenN, evaluatePolicy, type PolicyEvaluation, sample, type SamplingSettings, type Scored, scoreRollout, sequenceKl } from './rollout.js';
import { loadPrompts } from './prompts.js';

/** What the update reads from the critic's side: the loss coefficient and value clip. */
export interface CriticSpec {
  kind: CriticKind;
  /** Weights of a separate value model ('' = the policy's initial weights). */
  init: string;
  coef: number;
  clip: number;
  /** Learning rate of the critic's parameters (0 = train.lr). */
  lr: number;
}

/** What differs between online algorithms. */
export interface Algorithm<C extends OnlineConfig> {
  name: string;
  /** A critic trained alongside (PPO), or none. */
  critic(cfg: C): CriticSpec | null;
  /** The KL penalty in the loss (GRPO: β·k3 per token) rather than in the reward (PPO, RLOO). */
  klInLoss: boolean;
  /**
   * Advantages (B, A) (and returns for the critic) of a scored rollout. `rewards` are the shaped
   * per-sequence rewards; `klCoef` is β this step; `baseline` is what baseline() returned (absent without it).
   */
  advantages(r: Scored, rewards: readonly number[], klCoef: number, cfg: C, baseline?: readonly number[]): { advantages: Tensor; returns: Tensor | null };
  /**
   * Per-sequence baselines (B) that need the run itself — the policy, the tokenizer, the reward source —
   * computed after scoring and before advantages(), e.g. ReMax's reward of the greedy decode under the
   * current policy. Its mean is logged as `baseline`, its time as seconds.baseline.
   */
  baseline?(run: Run<C>, r: Scored, step: number): Promise<number[]>;
  /**
   * State the algorithm carries across steps (REINFORCE's moving baseline), as JSON: saved in every
   * checkpoint's trainer.json and handed back to load() on resume, so a resumed run is exact.
   */
  state?(): unknown;
  load?(state: unknown): void;
  /** An extra loss per mini-batch, added before backward (PPO-ptx's pre-training loss); null = none. */
  extraLoss?(policy: CausalLM, step: number, miniBatch: number, cfg: C): Tensor | null;
  /** Checks the algorithm's own config section. */
  check?(cfg: C): void;
}

/** Options of an online run: fresh start, progress, an evaluation hook, an abort signal, a reward source in place of cfg.reward. */
export interface OnlineRunOptions {
  fresh?: boolean;
  progress?: (line: string) => void;
  /** Called after every evaluation (the demo scores its gold reward here). */
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook that only observes returns nothing (void), one that adds fields returns them
  onEval?: (step: number, e: PolicyEvaluation) => Record<string, unknown> | void;
  /** Stops cleanly after the current step (checkpoint written) when aborted, e.g. on SIGINT. */
  signal?: AbortSignal;
  /** A reward source to use instead of cfg.reward.sources (owned by the caller: not disposed). */
  reward?: RewardSource;
}

/** What an online run returns: the algorithm, steps, resume point, and the first and last evaluations. */
export interface OnlineRunSummary {
  algorithm: string;
  out: string;
  steps: number;
  resumedFrom: number | null;
  seconds: number;
  initial: EvalRow | null;
  final: EvalRow | null;
}

/** An evaluation as logged: PolicyEvaluation without the samples, plus what the onEval hook added. */
export type EvalRow = Omit<PolicyEvaluation, 'samples' | 'rewards'> & Record<string, unknown>;

/** The models, optimiser and state one run owns (openRun → rlStep… → closeRun). */
export interface Run<C extends OnlineConfig> {
  cfg: C;
  tok: Tokenizer;
  policy: CausalLM;
  /** The policy's LoRA adapters (cfg.lora.r > 0), else null: the whole policy trains. */
  adapters: LoraAdapters | null;
  /** What the optimiser trains of the policy and its checkpoint holds: the adapters, or the policy. */
  trainable: Module;
  /** The KL reference: a model of its own, or the LoRA policy with its adapters disabled. */
  reference: CausalLM;
  critic: Critic | null;
  spec: CriticSpec | null;
  reward: RewardSource;
  opt: Optimizer;
  kl: KlController;
  moments: RunningMoments;
  prompts: string[];
}

interface TrainerState<C> {
  step: number;
  algorithm: string;
  config: C;
  klCoef: number;
  moments: { mean: number; variance: number; count: number };
  /** Algorithm.state() at the checkpoint (absent for stateless algorithms). */
  algorithmState?: unknown;
}

function makeReward(cfg: OnlineConfig, tok: Tokenizer): RewardSource {
  const sources = cfg.reward.sources.map((s) => parseRewardSpec(s, tok, { dense: cfg.reward.dense }));
  if (sources.length === 1 && (cfg.reward.weights[0] ?? 1) === 1) return sources[0]!;
  return combinedReward(sources.map((source, i) => ({ source, weight: cfg.reward.weights[i] ?? 1 })));
}

/** Builds everything a run needs; the caller disposes it (closeRun). */
export function openRun<C extends OnlineConfig>(cfg: C, algo: Algorithm<C>, rewardOverride?: RewardSource): Run<C> {
  manualSeed(cfg.seed);
  const policyDir = resolveModelDir(cfg.model.policy);
  const tok = loadTokenizer(policyDir);
  const refDir = resolveModelDir(cfg.model.reference || cfg.model.policy);
  if (cfg.model.reference && !sameTokenizer(tok, loadTokenizer(refDir))) {
    throw new Error(`model.reference ${cfg.model.reference} does not share the policy's tokenizer (${cfg.model.policy}): the KL needs both over the same tokens`);
  }
  const prompts = loadPrompts(cfg.data);
  const p = loadPolicy(policyDir, cfg.lora, { seed: cfg.seed });
  const policy = p.model;
  const reference = referenceLoader(p, policyDir, (dir) => loadModel(dir).freeze())(refDir).eval();
  const spec = algo.critic(cfg);
  let critic: Critic | null = null;
  if (spec?.kind === 'head') critic = { head: new ValueHead(policy.config.hiddenSize), model: null };
  if (spec?.kind === 'separate') {
    const backbone = loadModel(resolveModelDir(spec.init || cfg.model.policy));
    const model = new RewardModel(backbone, { heads: 1 });
    noGrad(() => model.score.weight.zero_());
    critic = { head: null, model };
  }
  const criticModule: Module | null = critic?.head ?? critic?.model ?? null;
  const groups = [{ params: trainablePart(p).trainableParameters() }];
  if (criticModule) groups.push({ params: criticModule.trainableParameters(), ...(spec!.lr > 0 ? { lr: spec!.lr } : {}) } as { params: Tensor[] });
  const opt = new AdamW(groups, { lr: cfg.train.lr, weightDecay: cfg.train.weightDecay });
  const kl = cfg.kl.target > 0 ? new AdaptiveKlController(cfg.kl.coef, cfg.kl.target, cfg.kl.horizon) : new FixedKlController(cfg.kl.coef);
  const reward: RewardSource = rewardOverride ? { name: rewardOverride.name, score: (x) => rewardOverride.score(x), ready: async () => rewardOverride.ready?.(), dispose() {} } : makeReward(cfg, tok);
  return { cfg, tok, policy, adapters: p.adapters, trainable: trainablePart(p), reference, critic, spec, reward, opt, kl, moments: new RunningMoments(), prompts };
}

export function closeRun(r: Run<OnlineConfig>): void {
  r.opt.dispose();
  r.reward.dispose();
  r.critic?.head?.dispose();
  r.critic?.model?.dispose();
  r.reference.dispose();
  disposePolicy({ model: r.policy, adapters: r.adapters });
}

function checkpointParts(r: Run<OnlineConfig>): { modules: Record<string, Module>; optimizers: Record<string, Optimizer> } {
  const modules: Record<string, Module> = { policy: r.trainable };
  if (r.critic?.head) modules.value_head = r.critic.head;
  if (r.critic?.model) modules.value_model = r.critic.model;
  return { modules, optimizers: { optimizer: r.opt } };
}

/** The shaped per-sequence rewards: clip → missing-EOS and length penalties → running normalisation. */
export function shapeRewards(r: Pick<Scored, 'reward' | 'finish' | 'completionIds'>, run: Run<OnlineConfig>): number[] {
  const c = run.cfg.reward;
  let x = clipRewards(r.reward.rewards, c.clip);
  if (c.missingEosPenalty > 0) x = missingEosPenalty(x, r.finish.map((f) => f === 'eos'), c.missingEosPenalty);
  if (c.lengthPenalty > 0) x = lengthPenalty(x, r.completionIds.map((t) => t.length), c.lengthPenalty, c.lengthTarget);
  return c.normalise ? normaliseRewards(x, run.moments) : x;
}

/** Explained variance 1 − Var(R − V) / Var(R) over the completion tokens (1 = perfect critic). */
function explainedVariance(values: Tensor, returns: Tensor, mask: Tensor): number {
  return scope(() => {
    const n = mask.sum();
    const varOf = (x: Tensor) => {
      const m = x.mul(mask).sum().div(n);
      return x.sub(m).mul(mask).square().sum().div(n).item();
    };
    const vr = varOf(returns);
    return vr > 0 ? 1 - varOf(returns.sub(values)) / vr : 0;
  });
}

interface UpdateStats {
  loss: number;
  valueLoss: number | null;
  clipFraction: number;
  approxKl: number;
  gradNorm: number;
  optimiserSteps: number;
}

/** Rows of `t` (B, …) as a new tensor. */
function rowsOf(t: Tensor, idx: Tensor): Tensor {
  return t.indexSelect(0, idx);
}

/**
 * The update phase: epochs × mini-batches (one optimiser step each) × micro-batches (gradient
 * accumulation). Every micro-batch's loss is normalised by its mini-batch's totals, so the accumulated
 * gradient equals the mini-batch's in one piece.
 */
export function update<C extends OnlineConfig>(run: Run<C>, algo: Algorithm<C>, r: Scored, adv: Tensor, ret: Tensor | null, step: number, klCoef: number): UpdateStats {
  const { cfg, policy, critic, spec, opt } = run;
  const t = cfg.train;
  const n = r.promptIds.length;
  const mini = t.miniBatchSize || n;
  const micro = t.microBatchSize || mini;
  const perStep = n / mini;
  const schedule = { kind: t.schedule, warmupSteps: t.warmupSteps, totalSteps: t.steps * t.epochs * perStep };
  const params = [...run.trainable.trainableParameters(), ...(critic?.head ?? critic?.model)?.trainableParameters() ?? []];
  const lengths = r.completionIds.map((c) => c.length);
  const s: UpdateStats = { loss: 0, valueLoss: spec ? 0 : null, clipFraction: 0, approxKl: 0, gradNorm: 0, optimiserSteps: 0 };
  let tokensSeen = 0;
  // With r.oldFromUpdate (one epoch, one mini-batch: checked by the caller), each micro-batch's detached
  // log-probs are the old ones; they are gathered here and put back in row order after the loop.
  const fromUpdate = r.oldFromUpdate ? { pieces: [] as Tensor[], rows: [] as number[], entropy: 0 } : null;
  for (let epoch = 0; epoch < t.epochs; epoch++) {
    const order = epochOrder(n, cfg.seed, step * t.epochs + epoch);
    for (let m = 0; m < perStep; m++) {
      const rows = order.slice(m * mini, (m + 1) * mini);
      const miniTokens = rows.reduce((a, i) => a + lengths[i]!, 0);
      const global = (step * t.epochs + epoch) * perStep + m;
      const lr = lrAt(Math.min(global, schedule.totalSteps), t.lr, { ...schedule, warmupSteps: Math.min(schedule.warmupSteps, schedule.totalSteps) });
      opt.setLr(lr, 0);
      if (spec) opt.setLr(spec.lr > 0 ? lrAt(Math.min(global, schedule.totalSteps), spec.lr, { ...schedule, warmupSteps: Math.min(schedule.warmupSteps, schedule.totalSteps) }) : lr, 1);
      for (let k = 0; k < rows.length; k += micro) {
        scope(() => {
          const idxRows = rows.slice(k, k + micro);
          const idx = tensor(BigInt64Array.from(idxRows, BigInt));
          const mb = sliceActions(r.batch, idxRows);
          const mask = mb.actionMask;
          const out = actorForward(policy, mb, { valueHead: critic?.head ?? null, entropy: t.entropyCoef > 0 || fromUpdate !== null });
          const old = fromUpdate ? out.logProbs.detach() : rowsOf(r.oldLogProbs, idx);
          if (fromUpdate) {
            fromUpdate.pieces.push(keep(old));
            fromUpdate.rows.push(...idxRows);
            fromUpdate.entropy += noGrad(() => out.entropy!.sum().item());
          }
          const { loss: pl, clipped } = clippedPolicyLoss(out.logProbs, old, rowsOf(adv, idx), { clipLow: t.clipLow, clipHigh: t.clipHigh, ...(t.dualClip > 1 ? { dualClip: t.dualClip } : {}) });
          let perToken = pl;
          if (algo.klInLoss && klCoef > 0) perToken = perToken.add(KL_ESTIMATORS[cfg.kl.estimator](out.logProbs, rowsOf(r.refLogProbs, idx)).mul(klCoef));
          if (t.entropyCoef > 0) perToken = perToken.sub(out.entropy!.mul(t.entropyCoef));
          let loss = normalise(perToken, mask, t.lossNormalisation, { tokenCount: miniTokens, sequences: rows.length, constant: cfg.rollout.maxNewTokens * rows.length });
          if (spec && critic && ret && r.oldValues) {
            const values = critic.head ? out.values! : criticForward(critic.model!, mb);
            // The logged value loss is the unscaled one (dividing the scaled one back out is 0/0 at coef 0).
            const vl = normalise(clippedValueLoss(values, rowsOf(r.oldValues, idx), rowsOf(ret, idx), spec.clip), mask, 'token', { tokenCount: miniTokens });
            loss = loss.add(vl.mul(spec.coef));
            s.valueLoss! += vl.item();
          }
          loss.backward();
          s.loss += loss.item();
          noGrad(() => {
            s.clipFraction += clipped.mul(mask).sum().item();
            s.approxKl += KL_ESTIMATORS.k3(out.logProbs.detach(), old).mul(mask).sum().item();
          });
          tokensSeen += mb.tokens;
          disposeActions(mb);
        });
      }
      scope(() => algo.extraLoss?.(policy, step, m, cfg)?.backward());
      s.gradNorm += t.clipGradNorm > 0 ? clipGradNorm(params, t.clipGradNorm) : 0;
      opt.step();
      opt.zeroGrad();
      s.optimiserSteps++;
    }
  }
  if (fromUpdate) fillOldFromUpdate(r, fromUpdate);
  const steps = s.optimiserSteps;
  return {
    loss: s.loss / steps, valueLoss: s.valueLoss === null ? null : s.valueLoss / steps,
    clipFraction: s.clipFraction / Math.max(1, tokensSeen), approxKl: s.approxKl / Math.max(1, tokensSeen), gradNorm: s.gradNorm / steps, optimiserSteps: steps,
  };
}

/** Puts the update's detached log-probs (gathered in `rows` order) into r.oldLogProbs in row order, and the entropy. */
function fillOldFromUpdate(r: Scored, got: { pieces: Tensor[]; rows: number[]; entropy: number }): void {
  const inverse = new BigInt64Array(got.rows.length);
  got.rows.forEach((row, j) => (inverse[row] = BigInt(j)));
  const filled = scope(() => keep(cat(got.pieces, 0).indexSelect(0, tensor(inverse))));
  for (const p of got.pieces) p.dispose();
  r.oldLogProbs.dispose();
  r.oldLogProbs = filled;
  r.entropy = got.entropy / Math.max(1, r.batch.tokens);
}

/**
 * Whether the old log-probs can come from the update's forward (scoreRollout's `oldFromUpdate`): exactly one
 * optimiser step per rollout, no critic, and the KL in the loss, so nothing before the update reads them.
 */
export function oldFromUpdate(cfg: OnlineConfig, algo: Pick<Algorithm<OnlineConfig>, 'klInLoss' | 'critic' | 'baseline'>, rollouts: number): boolean {
  const t = cfg.train;
  return t.epochs === 1 && (t.miniBatchSize === 0 || t.miniBatchSize >= rollouts) && algo.klInLoss && algo.critic(cfg) === null && algo.baseline === undefined;
}

/** The seed of step s's rollout: a pure function of (seed, s). */
export function stepSeed(seed: number, step: number): number {
  return (Math.imul(seed, 1000003) + Math.imul(step + 1, 7919)) >>> 0;
}

/** The evaluation seed: fixed across a run, so every evaluation samples the same streams. */
export function evalSeed(seed: number): number {
  return (seed ^ 0x5eed5eed) >>> 0;
}

export function settings(cfg: OnlineConfig): SamplingSettings {
  const r = cfg.rollout;
  return { maxNewTokens: r.maxNewTokens, temperature: r.temperature, topK: r.topK, topP: r.topP, ignoreEos: r.ignoreEos };
}

/** The prompt rows of step s: P prompts (cycling through the prompt list), each repeated G times in a row. */
function stepPrompts(run: Run<OnlineConfig>, step: number): string[] {
  const { prompts: p, samplesPerPrompt: g } = run.cfg.rollout;
  return Array.from({ length: p * g }, (_, i) => run.prompts[(step * p + Math.floor(i / g)) % run.prompts.length]!);
}

async function evaluate(run: Run<OnlineConfig>, step: number, opts: OnlineRunOptions, log: (row: Record<string, unknown>) => void): Promise<EvalRow | null> {
  const n = run.cfg.train.evalSamples;
  if (n === 0) return null;
  const e = await evaluatePolicy(run.policy, run.reference, run.tok, run.reward, run.prompts, settings(run.cfg), { n, seed: evalSeed(run.cfg.seed) });
  const extra = opts.onEval?.(step, e) ?? {};
  const { samples: _s, rewards: _r, ...row } = e;
  const out: EvalRow = { ...row, ...extra };
  log({ step, eval: out });
  return out;
}

const std = (xs: readonly number[]): number => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

/** One RL step: rollout → score → advantages → update; returns its metrics row. */
export async function rlStep<C extends OnlineConfig>(run: Run<C>, algo: Algorithm<C>, step: number): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  // Each phase's peak native bytes: the peak restarts at each phase's start (src/tensor/lifetime.ts).
  resetPeakMemory();
  const samples = sample(run.policy, run.tok, stepPrompts(run, step), settings(run.cfg), stepSeed(run.cfg.seed, step));
  const t1 = performance.now();
  const peakBytes = { generation: resetPeakAfter(), scoring: 0, update: 0 };
  const r = await scoreRollout(samples, run.policy, run.reference, run.critic, run.reward, { oldFromUpdate: oldFromUpdate(run.cfg, algo as Algorithm<OnlineConfig>, samples.promptIds.length) });
  try {
    const tb = performance.now();
    const baseline = await algo.baseline?.(run, r, step);
    const baselineSeconds = (performance.now() - tb) / 1000;
    const shaped = shapeRewards(r, run);
    const klCoef = run.kl.value;
    const { advantages, returns } = scope(() => {
      const a = algo.advantages(r, shaped, klCoef, run.cfg, baseline);
      return { advantages: keep(a.advantages), returns: a.returns ? keep(a.returns) : null };
    });
    const ev = returns && r.oldValues ? explainedVariance(r.oldValues, returns, r.batch.actionMask) : null;
    const t2 = performance.now();
    peakBytes.scoring = resetPeakAfter();
    const u = update(run, algo, r, advantages, returns, step, klCoef);
    const t3 = performance.now();
    peakBytes.update = memory().nativePeakBytes;
    const kls = sequenceKl(r.oldLogProbs, r.refLogProbs, r.batch.actionMask); // after the update: it may fill oldLogProbs
    advantages.dispose();
    returns?.dispose();
    run.kl.update(mean(kls), kls.length);
    const tokens = r.batch.tokens;
    return {
      step: step + 1, reward: mean(r.reward.rewards), rewardStd: std(r.reward.rewards), shapedReward: mean(shaped),
      ...(r.reward.spread ? { rewardSpread: mean(r.reward.spread) } : {}),
      ...(baseline ? { baseline: mean(baseline) } : {}),
      kl: mean(kls), klCoef, entropy: r.entropy, length: tokens / kls.length,
      ended: r.finish.filter((f) => f === 'eos').length / kls.length, distinct2: distinct2(r.completions),
      loss: u.loss, valueLoss: u.valueLoss, explainedVariance: ev, clipFraction: u.clipFraction, approxKl: u.approxKl, gradNorm: u.gradNorm,
      tokensPerSecond: { generation: tokens / ((t1 - t0) / 1000), scoring: tokens / ((t2 - t1) / 1000), update: (tokens * run.cfg.train.epochs) / ((t3 - t2) / 1000) },
      seconds: { generation: (t1 - t0) / 1000, scoring: (t2 - t1) / 1000 - (baseline ? baselineSeconds : 0), update: (t3 - t2) / 1000, ...(baseline ? { baseline: baselineSeconds } : {}) },
      peakBytes,
    };
  } finally {
    disposeScored(r);
  }
}

const distinct2 = (texts: readonly string[]): number => distinctTokenN(texts, 2);

/** The peak native bytes since the last reset; the peak then restarts from now. */
function resetPeakAfter(): number {
  const peak = memory().nativePeakBytes;
  resetPeakMemory();
  return peak;
}

export { InterruptedError };

/**
 * Trains a policy with `algo` under `cfg` into cfg.out (locked for the run). Resumes from out/checkpoint
 * when it holds this algorithm and configuration (any other checkpoint is refused, naming the fields that
 * differ; `fresh` starts over).
 */
export async function trainOnline<C extends OnlineConfig>(cfg: C, algo: Algorithm<C>, opts: OnlineRunOptions = {}): Promise<OnlineRunSummary> {
  checkOnlineConfig(cfg);
  algo.check?.(cfg);
  return withRunLock(cfg.out, () => runOnline(cfg, algo, opts));
}

async function runOnline<C extends OnlineConfig>(cfg: C, algo: Algorithm<C>, opts: OnlineRunOptions): Promise<OnlineRunSummary> {
  const start = Date.now();
  const say = (l: string) => (opts.progress ?? ((x: string) => process.stderr.write(x + '\n')))(`[train ${algo.name}] ${l}`);
  if (cfg.train.threads > 0) setNumThreads(cfg.train.threads);
  mkdirSync(cfg.out, { recursive: true });
  for (const l of recoverRunDir(cfg.out)) say(l);
  const ckpt = join(cfg.out, 'checkpoint');
  const run = openRun(cfg, algo, opts.reward);
  try {
    let resumedFrom: number | null = null;
    if (!opts.fresh && existsSync(join(ckpt, 'trainer.json'))) {
      const saved = readCheckpointState<TrainerState<C>>(ckpt);
      if (saved.algorithm !== algo.name) throw new Error(`${cfg.out} holds a checkpoint of a different run (${saved.algorithm}, not ${algo.name}): use another out, or --fresh to start over`);
      checkResumeConfig(cfg.out, saved.config, cfg, 'a checkpoint of a different run (another configuration)');
      loadCheckpoint(ckpt, checkpointParts(run as Run<OnlineConfig>));
      if (run.kl instanceof AdaptiveKlController) run.kl.value = saved.klCoef;
      Object.assign(run.moments, saved.moments);
      if (saved.algorithmState !== undefined) algo.load?.(saved.algorithmState);
      resumedFrom = saved.step;
      say(`resuming from step ${resumedFrom}`);
    }
    const tb = tensorBoardFor(cfg, resumedFrom);
    const log = openMetricsLog(join(cfg.out, 'metrics.jsonl'), resumedFrom, say, tb);
    const hook = opts.onEval;
    if (tb) opts = { ...opts, onEval: (step, e) => (tb.text(step, 'eval/samples', sampleTable(e)), hook?.(step, e)) };
    const state = (step: number): TrainerState<C> => ({ step, algorithm: algo.name, config: cfg, klCoef: run.kl.value, moments: run.moments.state(), ...(algo.state ? { algorithmState: algo.state() } : {}) });
    const save = (step: number) => saveCheckpoint(ckpt, checkpointParts(run as Run<OnlineConfig>), state(step));
    await run.reward.ready?.();
    // An evaluation whose reward fails saves nothing (its step's metrics row is logged): the last checkpoint resumes.
    const evalAt = (at: number) => evaluate(run as Run<OnlineConfig>, at, opts, log).catch((e: unknown) => {
      if (!(e instanceof RewardSourceError)) throw e;
      throw new RewardSourceError(e.source, `${e.message} — in the evaluation at step ${at}; ${saved === null ? 'no checkpoint yet: rerun to start over' : `rerun the same command to resume from the checkpoint of step ${saved}`}`);
    });
    let saved = resumedFrom;
    const initial = resumedFrom === null ? await evalAt(0) : null;
    if (initial) say(`step 0: ${describeEval(initial)}`);
    let step = resumedFrom ?? 0;
    for (; step < cfg.train.steps; step++) {
      await new Promise((r) => setImmediate(r)); // a step is mostly synchronous: let a pending SIGINT handler run
      if (opts.signal?.aborted) {
        save(step);
        throw new InterruptedError(step, cfg.out);
      }
      const row = await stopOnRewardError(() => rlStep(run, algo, step), () => save(step), step, cfg.out);
      // A diverged step is neither logged nor saved: the last checkpoint stays the last finite one.
      guardFinite(step + 1, { loss: row.loss as number, 'gradient norm': row.gradNorm as number }, { name: 'train.lr', value: cfg.train.lr }, cfg.out, saved);
      log(row);
      say(describeStep(row, cfg.train.steps));
      const done = step + 1;
      // Evaluate before checkpointing: a crash between the two resumes from the previous checkpoint, whose
      // metrics truncation drops this evaluation, so no step is ever evaluated twice or skipped.
      if (cfg.train.evalEvery > 0 && done % cfg.train.evalEvery === 0 && done < cfg.train.steps) {
        const e = await evalAt(done);
        if (e) say(`step ${done}: ${describeEval(e)}`);
      }
      if (cfg.train.checkpointEvery > 0 && done % cfg.train.checkpointEvery === 0 && done < cfg.train.steps) {
        save(done);
        saved = done;
      }
    }
    // A run resumed from its final checkpoint has its final evaluation logged already.
    const final = resumedFrom === cfg.train.steps ? lastEval(join(cfg.out, 'metrics.jsonl'), step) : await evalAt(step);
    if (final) say(`step ${step}: ${describeEval(final)}`);
    save(step);
    savePolicy({ model: run.policy, adapters: run.adapters }, join(cfg.out, 'model'), {
      extraFiles: tokenizerFiles(resolveModelDir(cfg.model.policy)), metadata: { rlhf: `policy:${algo.name}` }, adapterDir: join(cfg.out, 'adapter'), baseModel: cfg.model.policy,
    });
    return { algorithm: algo.name, out: cfg.out, steps: step, resumedFrom, seconds: (Date.now() - start) / 1000, initial, final };
  } finally {
    closeRun(run as Run<OnlineConfig>);
  }
}

/** The first 8 evaluation samples as a markdown table (TensorBoard's text plugin renders markdown). */
function sampleTable(e: PolicyEvaluation): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const rows = e.samples.completions.slice(0, 8).map((c, i) => `| ${cell(e.samples.prompts[i]!)} | ${cell(c)} | ${e.rewards[i]!.toFixed(4)} |`);
  return ['| prompt | completion | reward |', '| --- | --- | --- |', ...rows].join('\n');
}

/**
 * Runs step `step`; when its reward source fails (RewardSourceError: a module threw, a server is down), the
 * policy is still as step `step` found it (scoring precedes the update), so a checkpoint of `step` is
 * written and the error says how to resume. Other errors pass through untouched.
 */
async function stopOnRewardError<T>(fn: () => Promise<T>, save: () => void, step: number, out: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof RewardSourceError)) throw e;
    save();
    throw new RewardSourceError(e.source, `${e.message} — stopped before step ${step + 1}; checkpoint written to ${out}/checkpoint; fix the reward and rerun the same command to resume`);
  }
}

/** The evaluation logged at `step` in a metrics log, or null. */
function lastEval(path: string, step: number): EvalRow | null {
  const rows = readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; eval?: EvalRow });
  return rows.filter((r) => r.step === step && r.eval).pop()?.eval ?? null;
}

function describeStep(row: Record<string, unknown>, total: number): string {
  const f = (k: string, d = 3) => (typeof row[k] === 'number' ? (row[k] as number).toFixed(d) : 'n/a');
  const tps = row.tokensPerSecond as { generation: number; scoring: number; update: number };
  return `step ${row.step}/${total} reward ${f('reward')} ± ${f('rewardStd')} kl ${f('kl', 2)} entropy ${f('entropy', 2)} len ${f('length', 1)} clip ${f('clipFraction')}` +
    `${row.valueLoss != null ? ` vloss ${f('valueLoss', 4)} ev ${f('explainedVariance', 2)}` : ''} tok/s gen ${tps.generation.toFixed(0)} score ${tps.scoring.toFixed(0)} update ${tps.update.toFixed(0)}`;
}

/** An evaluation as one line for people. */
export function describeEval(e: EvalRow): string {
  return `eval on ${e.n} fresh samples: reward ${e.reward.toFixed(4)} ± ${e.rewardSe.toFixed(4)} (s.e.), KL ${e.kl.toFixed(2)} nats, length ${e.length.toFixed(1)}, distinct-2 ${e.distinct2.toFixed(3)}`;
}
