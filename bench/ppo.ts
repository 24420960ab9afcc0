/**
 * `rlhf bench ppo`: one PPO iteration on stories260K (issue 5, [bench]) against bench/baseline/ppo.py —
 * the same iteration in plain PyTorch on the same libtorch, weights, thread counts and fp32. Read ppo.py's
 * docstring for the iteration itself; here both sides run it as:
 *   batch 64 BOS-only prompts, 64 new tokens (no early stop), temperature 1;
 *   reward = a reward model on the stories260K backbone (score head 0.1·sin(i + 1), saved to a temporary
 *   directory and loaded as `model:DIR`); value head on the policy (weight 0.1·sin(i + 1); its bias, which
 *   ppo.py's head does not have, stays 0 and frozen); frozen reference; k1 KL penalty β = 0.05 in the
 *   reward; GAE γ = 1, λ = 0.95; whitened advantages; 1 epoch of 4 minibatches of 16; clip 0.2, value clip
 *   0.2, value coefficient 0.1; clip grad norm 1; AdamW lr 1e-5, betas (0.9, 0.999), eps 1e-8, wd 0.
 * Ours is `rlStep` (src/rlhf/online/trainer.ts) on a run opened once (openRun: the same path `rlhf train
 * ppo` takes), so our iteration also computes the metrics row a training loop logs (KL, entropy,
 * distinct-2, explained variance, …), which the baseline does not.
 *
 * Timing: interleaved repetitions (ours, theirs, theirs, ours, …) of one whole iteration each, after one
 * untimed warm-up per side; medians and spread of the total and of each phase (generation, scoring,
 * update). Ratios Python / ours: > 1 means we are faster.
 *
 * `checks`: ppo.py's deterministic `check` case (a fixed LCG rollout, perturbed old log-probs and values,
 * four fixed minibatches) computed by our own functions — packActions / actorForward, the reward source,
 * ppoAlgorithm's advantages (ppoTokenRewards → gae → whiten) and `update` (called once per minibatch on
 * that minibatch's 16 rows, so the order is fixed and each call reports its own loss and gradient norm).
 * The bench stops if any value disagrees (1e-4 relative, scaled by max(1, |x|); the clip fraction, a count,
 * within 2/1024): the ratios would then compare different work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, getNumThreads, noGrad, scope, setNumThreads, type Tensor, tensor } from '../src/tensor/index.js';
import { loadModel, resolveModelDir, tokenizerFiles } from '../src/models/hub.js';
import { RewardModel } from '../src/reward/model.js';
import { saveRewardModel } from '../src/reward/io.js';
import { gae } from '../src/rlhf/core/advantages.js';
import { clippedPolicyLoss, clippedValueLoss, normalise } from '../src/rlhf/core/losses.js';
import { actorForward, packActions, referenceLogProbs, sliceActions } from '../src/rlhf/online/actor.js';
import { closeRun, openRun, rlStep, type Run, update } from '../src/rlhf/online/trainer.js';
import type { Scored } from '../src/rlhf/online/rollout.js';
import { checkOnlineConfig } from '../src/rlhf/online/config.js';
import { PPO_DEFAULTS, type PpoConfig } from '../src/rlhf/ppo/config.js';
import { ppoAlgorithm } from '../src/rlhf/ppo/trainer.js';
import { tokenRewards as ppoTokenRewards } from '../src/rlhf/online/token-rewards.js';
import { type BenchResult, type CaseResult, captureEnv, defaultPython, log, now, PythonBaseline, since, stats } from './common.js';

export interface PpoBenchOptions {
  /** Interleaved repetitions per side (default 5; quick: 2). */
  reps?: number;
  /** Intra-op threads for libtorch and OpenBLAS on both sides (default: libtorch's default here). */
  threads?: number;
  /** Interpreter with PyTorch (default $PYTHON, else the Python whose torch is the libtorch the addon links). */
  python?: string;
  /** Batch 16 and 16 new tokens for the timed iteration, 2 repetitions: checks the machinery, measures nothing. */
  quick?: boolean;
}

export type PpoBenchResult = BenchResult & {
  /** The iteration's sizes (the check always runs ppo.py's fixed 64 × 64). */
  shape: { batch: number; newTokens: number; minibatches: number };
};

const BOS = 1;
const FIRST_ID = 3;
const SEED = 12345;
const CHECK_B = 64;
const CHECK_N = 64;
const MINIBATCHES = 4;
const PHASES = ['generation', 'scoring', 'update'] as const;

/** 0.1·sin(i + 1), i = 0 … d − 1 (fp64 → fp32), as a (1, d) weight: ppo.py's (and rm.py's) head pattern. */
function sinWeight(d: number): Tensor {
  return tensor(Float32Array.from({ length: d }, (_, i) => 0.1 * Math.sin(i + 1)), { shape: [1, d] });
}

/** The reward model ppo.py builds (stories260K backbone + `score` = sinWeight), saved with the tokenizer. */
function saveBenchRewardModel(dir: string): void {
  const gen = new Generator(0);
  const rm = new RewardModel(loadModel('stories260k'), { heads: 1 }, { generator: gen });
  gen.dispose();
  try {
    noGrad(() => scope(() => rm.score.weight.copy_(sinWeight(rm.config.hiddenSize))));
    saveRewardModel(rm, dir, { extraFiles: tokenizerFiles(resolveModelDir('stories260k')) });
  } finally {
    rm.dispose();
  }
}

function benchConfig(rmDir: string, batch: number, newTokens: number, threads: number): PpoConfig {
  const d = PPO_DEFAULTS;
  const cfg: PpoConfig = {
    ...d,
    out: join(rmDir, 'unused-run'),
    data: { path: '', prompts: [''] },
    reward: { ...d.reward, sources: [`model:${rmDir}`], weights: [], dense: false, clip: 0, normalise: false, missingEosPenalty: 0, lengthPenalty: 0 },
    rollout: { prompts: batch, samplesPerPrompt: 1, maxNewTokens: newTokens, temperature: 1, topK: 0, topP: 1, ignoreEos: true },
    kl: { coef: 0.05, estimator: 'k1', target: 0, horizon: 10000 },
    train: {
      ...d.train, steps: 1_000_000, epochs: 1, miniBatchSize: batch / MINIBATCHES, microBatchSize: 0, lr: 1e-5, weightDecay: 0, warmupSteps: 0,
      schedule: 'constant', clipGradNorm: 1, clipLow: 0.2, clipHigh: 0.2, dualClip: 0, lossNormalisation: 'token', entropyCoef: 0,
      checkpointEvery: 0, evalEvery: 0, evalSamples: 0, threads,
    },
    ppo: {
      gamma: 1, lambda: 0.95, whitenAdvantages: true,
      value: { kind: 'head', init: '', coef: 0.1, clip: 0.2, lr: 0 },
      ptx: { ...d.ppo.ptx, coef: 0 },
    },
  };
  checkOnlineConfig(cfg);
  return cfg;
}

/** openRun + ppo.py's value head: weight sinWeight, the bias (ppo.py has none) 0 and out of training. */
function openBenchRun(cfg: PpoConfig): Run<PpoConfig> {
  const run = openRun(cfg, ppoAlgorithm(cfg));
  const head = run.critic!.head!.v_head;
  noGrad(() => scope(() => {
    head.weight.copy_(sinWeight(run.policy.config.hiddenSize));
    head.bias?.zero_();
  }));
  // A parameter without a gradient is skipped by clip_grad_norm_ and by AdamW, as if it were not there.
  head.bias?.requiresGrad_(false);
  return run;
}

/** ppo.py's synthetic_completions: b rows of n ids from the LCG, s₀ = 12345 (no BOS: the prompt is [BOS]). */
function syntheticCompletions(b: number, n: number, vocab: number): number[][] {
  let s = SEED;
  return Array.from({ length: b }, () => Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return FIRST_ID + ((s >>> 16) % (vocab - FIRST_ID));
  }));
}

/** A (b, n) fp32 tensor of scale·f(64·row + col + 1), computed in fp64 (ppo.py's perturbation). */
function perturbation(b: number, n: number, f: (x: number) => number, scale: number): Tensor {
  return tensor(Float32Array.from({ length: b * n }, (_, k) => scale * f(k + 1)), { shape: [b, n] });
}

type CheckValues = Record<string, number>;

/** ppo.py's `check`, on our side (see the header). */
async function ourCheck(cfg: PpoConfig): Promise<CheckValues> {
  const algo = ppoAlgorithm(cfg);
  const run = openBenchRun(cfg);
  try {
    const completionIds = syntheticCompletions(CHECK_B, CHECK_N, run.policy.config.vocabSize);
    const promptIds = completionIds.map(() => [BOS]);
    const reward = await run.reward.score({ prompts: promptIds.map(() => ''), completions: completionIds.map(() => ''), promptIds, completionIds });
    return scope(() => {
      const { policy, reference, critic } = run;
      const batch = packActions(promptIds, completionIds);
      const old = noGrad(() => actorForward(policy, batch, { valueHead: critic!.head }));
      const ref = referenceLogProbs(reference, batch);
      const out: CheckValues = {
        oldLogProbSum: old.logProbs.double().sum().item(),
        refLogProbSum: ref.double().sum().item(),
        reward0: reward.rewards[0]!,
        rewardMean: reward.rewards.reduce((a, x) => a + x, 0) / reward.rewards.length,
        oldValueMean: old.values!.double().mean().item(),
      };
      const oldLogProbs = old.logProbs.add(perturbation(CHECK_B, CHECK_N, Math.sin, 0.3));
      const oldValues = old.values!.add(perturbation(CHECK_B, CHECK_N, Math.cos, 0.3));
      const scored: Scored = {
        prompts: promptIds.map(() => ''), promptIds, completionIds, completions: completionIds.map(() => ''), finish: completionIds.map(() => 'length'),
        batch, oldFromUpdate: false, oldLogProbs, refLogProbs: ref, oldValues, reward, entropy: 0,
      };
      const klCoef = cfg.kl.coef;
      const raw = gae(ppoTokenRewards(scored, reward.rewards, klCoef, 'k1'), oldValues, batch.actionMask, cfg.ppo.gamma, cfg.ppo.lambda);
      out.rawAdvantageMean = raw.advantages.double().mean().item();
      out.returnMean = raw.returns.double().mean().item();
      const { advantages, returns } = algo.advantages(scored, reward.rewards, klCoef, cfg);

      // Minibatch j = rows 16j … 16j + 15, in order: `update` on that minibatch alone takes exactly one
      // optimiser step on exactly those rows (its shuffle only permutes rows within the minibatch).
      const mb = CHECK_B / MINIBATCHES;
      const minibatches = Array.from({ length: MINIBATCHES }, (_, j) => {
        const rows = Array.from({ length: mb }, (_, i) => j * mb + i);
        const pick = (t: Tensor) => t.narrow(0, j * mb, mb);
        const part: Scored = {
          ...scored, prompts: scored.prompts.slice(j * mb, (j + 1) * mb), promptIds: promptIds.slice(j * mb, (j + 1) * mb),
          completionIds: completionIds.slice(j * mb, (j + 1) * mb), completions: scored.completions.slice(j * mb, (j + 1) * mb),
          finish: scored.finish.slice(j * mb, (j + 1) * mb), batch: sliceActions(batch, rows),
          oldLogProbs: pick(oldLogProbs), refLogProbs: pick(ref), oldValues: pick(oldValues),
          reward: { rewards: reward.rewards.slice(j * mb, (j + 1) * mb), spread: null, tokenRewards: null },
        };
        return { part, adv: pick(advantages), ret: pick(returns!) };
      });
      const loss0 = (): number => noGrad(() => scope(() => {
        const { part, adv, ret } = minibatches[0]!;
        const mask = part.batch.actionMask;
        const o = actorForward(policy, part.batch, { valueHead: critic!.head });
        const pg = normalise(clippedPolicyLoss(o.logProbs, part.oldLogProbs, adv, { clipLow: 0.2, clipHigh: 0.2 }).loss, mask, 'token');
        const vf = normalise(clippedValueLoss(o.values!, part.oldValues!, ret, cfg.ppo.value.clip), mask, 'token');
        return pg.add(vf.mul(cfg.ppo.value.coef)).item();
      }));
      const losses: number[] = [];
      const gradNorms: number[] = [];
      minibatches.forEach(({ part, adv, ret }, j) => {
        const u = update(run, algo, part, adv, ret, j, klCoef);
        losses.push(u.loss);
        gradNorms.push(u.gradNorm);
        if (j === 0) {
          out.clipFraction0 = u.clipFraction;
          out.lossAfterFirst = loss0();
        }
      });
      out.lossAfterEpoch = loss0();
      losses.forEach((x, j) => (out[`losses[${j}]`] = x));
      gradNorms.forEach((x, j) => (out[`gradNorms[${j}]`] = x));
      return out;
    });
  } finally {
    closeRun(run);
  }
}

/** ppo.py's answer, flattened the same way (losses[j], gradNorms[j]). */
function flattenTheirs(r: Record<string, unknown>): CheckValues {
  const out: CheckValues = {};
  for (const [k, v] of Object.entries(r)) {
    if (Array.isArray(v)) v.forEach((x, j) => (out[`${k}[${j}]`] = x as number));
    else if (typeof v === 'number') out[k] = v;
  }
  return out;
}

/**
 * Pairs each of ppo.py's check values with ours; throws, naming every value that disagrees (1e-4 relative,
 * scaled by max(1, |x|); clipFraction0 within 2/1024) or is missing on either side.
 */
export function compareChecks(ours: CheckValues, theirs: CheckValues): Record<string, { ours: number; theirs: number }> {
  const checks: Record<string, { ours: number; theirs: number }> = {};
  const bad: string[] = [];
  for (const [name, t] of Object.entries(theirs)) {
    const o = ours[name];
    if (o === undefined) {
      bad.push(`${name}: not computed on our side`);
      continue;
    }
    checks[name] = { ours: o, theirs: t };
    const tol = name === 'clipFraction0' ? 2 / 1024 + 1e-9 : 1e-4 * Math.max(1, Math.abs(t));
    if (!(Math.abs(o - t) <= tol)) bad.push(`${name} ours ${o} vs python ${t}`);
  }
  for (const name of Object.keys(ours)) if (!(name in theirs)) bad.push(`${name}: missing from ppo.py's answer`);
  if (bad.length > 0) {
    throw new Error(`ppo bench: the two sides' PPO iterations differ (${bad.join('; ')}); the comparison would be meaningless`);
  }
  return checks;
}

interface Sample {
  total: number;
  generation: number;
  scoring: number;
  update: number;
}

export async function runPpoBench(opts: PpoBenchOptions = {}): Promise<PpoBenchResult> {
  const quick = opts.quick ?? false;
  const reps = opts.reps ?? (quick ? 2 : 5);
  if (!(Number.isInteger(reps) && reps >= 1)) throw new Error(`reps must be a positive integer, got ${reps}`);
  const previousThreads = getNumThreads().torch;
  const threads = opts.threads ?? previousThreads;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a positive integer, got ${threads}`);
  const python = defaultPython(opts.python);
  const batch = quick ? 16 : 64;
  const newTokens = quick ? 16 : 64;

  log(`ppo: starting the Python baseline (${python}), ${threads} thread(s) each side, batch ${batch}, ${newTokens} new tokens, ${reps} reps${quick ? ', quick' : ''}`);
  const baseline = await PythonBaseline.start('ppo.py', { python, threads, args: ['--batch', String(batch), '--new-tokens', String(newTokens)] });
  setNumThreads(threads); // libtorch's intra-op pool and OpenBLAS's, as the baseline has
  const dir = mkdtempSync(join(tmpdir(), 'rlhf-bench-ppo-'));
  let run: Run<PpoConfig> | null = null;
  try {
    const rmDir = join(dir, 'reward-model');
    saveBenchRewardModel(rmDir);

    // ---- same work on both sides: ppo.py's deterministic check
    const ours = await ourCheck(benchConfig(rmDir, CHECK_B, CHECK_N, threads));
    const checks = compareChecks(ours, flattenTheirs(await baseline.request({ case: 'check', iters: 1 })));
    log(`ppo: checks pass (${Object.keys(checks).length} values within 1e-4 relative)`);

    // ---- timing: one whole iteration per sample, interleaved
    const cfg = benchConfig(rmDir, batch, newTokens, threads);
    const algo = ppoAlgorithm(cfg);
    run = openBenchRun(cfg);
    let step = 0;
    const oursOnce = async (): Promise<Sample> => {
      const t0 = now();
      const row = await rlStep(run!, algo, step++);
      const total = since(t0);
      const s = row.seconds as { generation: number; scoring: number; update: number };
      return { total, ...s };
    };
    const theirsOnce = async (): Promise<Sample> => {
      const r = await baseline.request({ case: 'iteration', iters: 1 });
      return { total: r.seconds as number, generation: r.generation as number, scoring: r.scoring as number, update: r.update as number };
    };
    await oursOnce(); // warm-up: first-call allocations, caches
    await theirsOnce();
    const o: Sample[] = [];
    const t: Sample[] = [];
    for (let r = 0; r < reps; r++) {
      // ABBA order so a load that drifts during the run does not always fall on the same side.
      if (r % 2 === 0) o.push(await oursOnce());
      t.push(await theirsOnce());
      if (r % 2 === 1) o.push(await oursOnce());
    }
    const results: Record<string, CaseResult> = {};
    const ratios: Record<string, number> = {};
    for (const key of ['total', ...PHASES] as const) {
      const name = key === 'total' ? 'iteration' : key;
      const so = stats(o.map((x) => x[key]));
      const st = stats(t.map((x) => x[key]));
      results[name] = { ours: so, theirs: st, unit: 's' };
      ratios[name] = st.median / so.median;
      log(`${name}: ours ${so.median.toFixed(3)} s (${so.min.toFixed(3)}–${so.max.toFixed(3)}), python ${st.median.toFixed(3)} s (${st.min.toFixed(3)}–${st.max.toFixed(3)}); ratio ${ratios[name]!.toFixed(3)}`);
    }
    const env = captureEnv(baseline.info, { reps, quick });
    return { bench: 'ppo', env, results, ratios, checks, shape: { batch, newTokens, minibatches: MINIBATCHES } };
  } finally {
    if (run) closeRun(run);
    rmSync(dir, { recursive: true, force: true });
    await baseline.close();
    if (threads !== previousThreads) setNumThreads(previousThreads);
  }
}
