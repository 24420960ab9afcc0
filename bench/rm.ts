/**
 * `rlhf bench rm`: reward-model throughput on the stories260K backbone (RewardModel, one head), against
 * bench/baseline/rm.py — the same model written in plain PyTorch, on the same libtorch, weights, thread
 * counts, fp32 and data. Both sides score 16 synthetic pairs (chosen and rejected together: one
 * left-padded batch of 32 rows, 32–64 tokens), with the score head set to the same fixed pattern.
 *
 * - train: pairs/s of training steps — forward → Bradley–Terry loss → backward → clip grad norm 1.0 →
 *   AdamW (lr 1e-4, wd 0.01) → zero grad, as src/reward/train.ts does one. Ratio ours / Python. AdamW is
 *   each side's fused kernel where libtorch has it (ours by default, Python's `fused=True`), else both unfused.
 * - train-unfused (only where the fused kernel exists): the same with both sides' per-parameter AdamW.
 * - eval: pairs/s of reward evaluation without gradients (evaluate.ts's scoreSequences loop). Ratio ours / Python.
 *
 * `checks` shows both sides trained the same model: a fresh model's first loss, its gradient norm before
 * clipping (the backward), and the loss after one optimiser step (clipping and AdamW). The bench stops
 * if they disagree, since the ratios would then compare different work.
 */
import {
  AdamW, clipGradNorm, fusedAdamWAvailable, Generator, getNumThreads, noGrad, scope, setNumThreads, tensor, type Tensor,
} from '../src/tensor/index.js';
import { leftPad } from '../src/generate/generate.js';
import { loadModel } from '../src/models/hub.js';
import { bradleyTerryLoss } from '../src/reward/losses.js';
import { RewardModel } from '../src/reward/model.js';
import { type BenchResult, type Case, captureEnv, defaultPython, log, now, PythonBaseline, runInterleaved, since } from './common.js';

export interface RmBenchOptions {
  /** Interleaved repetitions per side (default 5; quick: 2). */
  reps?: number;
  /** Intra-op threads for libtorch and OpenBLAS on both sides (default: libtorch's default here). */
  threads?: number;
  /** Interpreter with PyTorch (default $PYTHON, else the Python whose torch is the libtorch the addon links). */
  python?: string;
  /** Few iterations and 2 repetitions: checks the machinery, measures nothing. */
  quick?: boolean;
}

// ---- the synthetic pairs: the same ids as rm.py's synthetic_pairs ---------------------------------------
const PAIRS = 16;
const MIN_LEN = 32;
const MAX_LEN = 64;
const BOS = 1;
const FIRST_ID = 3;
const SEED = 12345;

/**
 * Pair i: chosen of 32 + 7i mod 33 tokens, rejected of 32 + (11i + 16) mod 33, BOS first, the rest from
 * the LCG s ← (1103515245·s + 12345) mod 2³¹ (in 32-bit arithmetic: only the low 31 bits matter),
 * id = 3 + (s >> 16) mod (vocab − 3).
 */
export function syntheticPairs(vocab: number): { chosen: number[][]; rejected: number[][] } {
  let s = SEED;
  const span = MAX_LEN - MIN_LEN + 1;
  const seq = (n: number): number[] => {
    const out = [BOS];
    for (let j = 1; j < n; j++) {
      s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
      out.push(FIRST_ID + ((s >>> 16) % (vocab - FIRST_ID)));
    }
    return out;
  };
  const chosen: number[][] = [];
  const rejected: number[][] = [];
  for (let i = 0; i < PAIRS; i++) {
    chosen.push(seq(MIN_LEN + ((7 * i) % span)));
    rejected.push(seq(MIN_LEN + ((11 * i + 16) % span)));
  }
  return { chosen, rejected };
}

/** stories260K with a one-head `score` set to 0.1·sin(i + 1), as rm.py's (its random init is overwritten). */
function newRewardModel(): RewardModel {
  const gen = new Generator(0);
  const rm = new RewardModel(loadModel('stories260k'), { heads: 1 }, { generator: gen });
  gen.dispose();
  const d = rm.config.hiddenSize;
  const w = Float32Array.from({ length: d }, (_, i) => 0.1 * Math.sin(i + 1));
  noGrad(() => scope(() => rm.score.weight.copy_(tensor(w, { shape: [1, d] }))));
  return rm;
}

interface Trainer {
  rm: RewardModel;
  params: Tensor[];
  opt: AdamW;
}

function newTrainer(fused: boolean): Trainer {
  const rm = newRewardModel();
  const params = rm.trainableParameters();
  return { rm, params, opt: new AdamW(params, { lr: 1e-4, weightDecay: 0.01, fused }) };
}

/** Bradley–Terry loss of the batch: chosen rows first, then rejected (train.ts's pairRewards). */
function batchLoss(rm: RewardModel, ids: Tensor, mask: Tensor): Tensor {
  const r = rm.rewards(ids, mask); // (2B, 1)
  return bradleyTerryLoss({ chosen: r.narrow(0, 0, PAIRS), rejected: r.narrow(0, PAIRS, PAIRS) });
}

/** One optimiser step, as train.ts takes one (without gradient accumulation); returns loss and grad norm. */
function trainStep(t: Trainer, ids: Tensor, mask: Tensor): { loss: number; gradNorm: number } {
  // The step's activations and autograd graph die with the scope; parameters and AdamW state live on.
  const loss = scope(() => {
    const l = batchLoss(t.rm, ids, mask);
    l.backward();
    return l.item(); // what a training loop logs
  });
  const gradNorm = clipGradNorm(t.params, 1);
  t.opt.step();
  t.opt.zeroGrad();
  return { loss, gradNorm };
}

function disposeTrainer(t: Trainer): void {
  t.opt.dispose();
  t.rm.dispose();
}

// ---- the bench ----------------------------------------------------------------------------------------

export async function runRmBench(opts: RmBenchOptions = {}): Promise<BenchResult> {
  const quick = opts.quick ?? false;
  const reps = opts.reps ?? (quick ? 2 : 5);
  if (!(Number.isInteger(reps) && reps >= 1)) throw new Error(`reps must be a positive integer, got ${reps}`);
  const previousThreads = getNumThreads().torch;
  const threads = opts.threads ?? previousThreads;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a positive integer, got ${threads}`);
  const python = defaultPython(opts.python);

  log(`rm: starting the Python baseline (${python}), ${threads} thread(s) each side, ${reps} reps${quick ? ', quick' : ''}`);
  const fused = fusedAdamWAvailable();
  const baseline = await PythonBaseline.start('rm.py', { python, threads, args: ['--fused', fused ? '1' : '0'] });
  setNumThreads(threads); // libtorch's intra-op pool and OpenBLAS's, as the baseline has
  const owned: { dispose(): void }[] = [];
  try {
    // ---- same work on both sides: a fresh model's first step and the loss after it
    const fresh = newTrainer(fused);
    const pairs = syntheticPairs(fresh.rm.config.vocabSize);
    const { ids, mask } = leftPad([...pairs.chosen, ...pairs.rejected]); // (2B, T)
    owned.push(ids, mask);
    const first = trainStep(fresh, ids, mask);
    const second = noGrad(() => scope(() => batchLoss(fresh.rm, ids, mask).item()));
    disposeTrainer(fresh);
    const theirs = await baseline.request({ case: 'check', iters: 1 });
    const checks = {
      first_loss: { ours: first.loss, theirs: theirs.loss as number },
      first_grad_norm: { ours: first.gradNorm, theirs: theirs.gradNorm as number },
      second_loss: { ours: second, theirs: theirs.secondLoss as number },
    };
    for (const [name, c] of Object.entries(checks)) {
      if (!(Math.abs(c.ours - c.theirs) <= 1e-4 * Math.max(1, Math.abs(c.theirs)))) {
        throw new Error(`rm bench: the two sides' reward models differ (${name} ${c.ours} vs ${c.theirs}); the comparison would be meaningless`);
      }
    }

    let evalModel: RewardModel | null = null;
    const pairsPerSecond = (s: number, it: number) => (PAIRS * it) / s;
    const trainCase = (name: string, fusedStep: boolean): Case => {
      let trainer: Trainer | null = null;
      return {
        name, unit: 'pairs/s', kind: 'rate', iters: quick ? 2 : 5, toUnit: pairsPerSecond,
        ours: (it) => {
          if (!trainer) {
            const t = newTrainer(fusedStep);
            trainer = t;
            owned.push({ dispose: () => disposeTrainer(t) });
          }
          const t0 = now();
          for (let i = 0; i < it; i++) trainStep(trainer, ids, mask);
          return since(t0);
        },
      };
    };
    const cases: Case[] = [
      trainCase('train', fused),
      ...(fused ? [trainCase('train-unfused', false)] : []),
      {
        name: 'eval', unit: 'pairs/s', kind: 'rate', iters: quick ? 2 : 15, toUnit: pairsPerSecond,
        ours: (it) => {
          if (!evalModel) {
            evalModel = newRewardModel();
            owned.push(evalModel);
          }
          const rm = evalModel;
          const t0 = now();
          // evaluate.ts's scoreSequences loop: rewards without gradients, read back to JavaScript.
          noGrad(() => {
            for (let i = 0; i < it; i++) scope(() => rm.rewards(ids, mask).data());
          });
          return since(t0);
        },
      },
    ];

    const env = { ...captureEnv(baseline.info, { reps, quick }), adamw: fused ? 'fused (both sides)' : 'unfused (both sides)' };
    const { results, ratios } = await runInterleaved(cases, baseline, reps);
    return { bench: 'rm', env, results, ratios, checks };
  } finally {
    for (const o of owned.reverse()) o.dispose();
    await baseline.close();
    if (threads !== previousThreads) setNumThreads(previousThreads);
  }
}
