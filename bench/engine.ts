/**
 * `rlhf bench engine`: the tensor engine against Python PyTorch on the same libtorch, same dtype (fp32)
 * and the same thread counts (libtorch's and OpenBLAS's) on both sides. The baseline is
 * bench/baseline/engine.py; the cases there carry the same names.
 *
 * - add_overhead, matmul_overhead: µs per op on 8×8 tensors, where the time is dispatch, not arithmetic.
 *   Ratio Python / ours (> 1: our per-op overhead is lower).
 * - matmul_256/512/1024: GFLOP/s (2n³ per product) of warm square matmuls; both sides call the same BLAS
 *   kernel, so ≈ 1.0 is the expectation. Ratio ours / Python.
 * - block_train: training steps/s of one pre-norm transformer block (d 256, 4 heads, T 128, batch 8):
 *   forward, mean-square loss, backward, AdamW step, zero grad. Ratio ours / Python.
 */
import {
  AdamW, getNumThreads, layerNorm, linear, manualSeed, normal_, ones, randn, scaledDotProductAttention,
  scope, setNumThreads, type Tensor, zeros,
} from '../src/tensor/index.js';
import { type BenchResult, type Case, captureEnv, defaultPython, log, now, PythonBaseline, runInterleaved, since } from './common.js';

export interface EngineBenchOptions {
  /** Interleaved repetitions per side (default 7; quick: 2). */
  reps?: number;
  /** Intra-op threads for libtorch and OpenBLAS on both sides (default: libtorch's default here). */
  threads?: number;
  /** Interpreter with PyTorch (default $PYTHON, else the Python whose torch is the libtorch the addon links). */
  python?: string;
  /** Tiny iteration counts and 2 repetitions: checks the machinery, measures nothing. */
  quick?: boolean;
}

/**
 * Ops whose results a real user frees with a scope around a unit of work (a step, a layer) — not one
 * scope per op, and not never. CHUNK ops per scope stands for that: the scope's bookkeeping is paid, and
 * CHUNK results are alive at once, as in a forward pass. (Python frees each result by refcount at once.)
 */
const CHUNK = 100;

function opOverhead(op: () => Tensor): (iters: number) => number {
  return (iters) => {
    const t0 = now();
    for (let i = 0; i < iters; i += CHUNK) {
      const n = Math.min(CHUNK, iters - i);
      scope(() => {
        for (let j = 0; j < n; j++) op();
      });
    }
    return since(t0);
  };
}

// ---- one pre-norm transformer block (nanoGPT's Block), the same as engine.py's ----------------------
const D = 256;
const NH = 4;
const T = 128;
const B = 8;

interface BlockParams {
  ln1W: Tensor; ln1B: Tensor;
  attnW: Tensor; attnB: Tensor;
  projW: Tensor; projB: Tensor;
  ln2W: Tensor; ln2B: Tensor;
  fcW: Tensor; fcB: Tensor;
  fc2W: Tensor; fc2B: Tensor;
}

/**
 * Weights drawn in engine.py's order from libtorch's default generator seeded 0 (N(0, 0.02) linear
 * weights, zero biases, unit LayerNorms), then the input: both sides train the same model on the same x.
 * Returned tensors escape every scope: the caller disposes them.
 */
function makeBlock(): { p: BlockParams; x: Tensor } {
  const lin = (out: number, inp: number) => ({ w: zeros([out, inp]), b: zeros([out]) });
  const attn = lin(3 * D, D);
  const proj = lin(D, D);
  const fc = lin(4 * D, D);
  const fc2 = lin(D, 4 * D);
  manualSeed(0);
  for (const l of [attn, proj, fc, fc2]) normal_(l.w, 0, 0.02);
  const p: BlockParams = {
    ln1W: ones([D]), ln1B: zeros([D]),
    attnW: attn.w, attnB: attn.b, projW: proj.w, projB: proj.b,
    ln2W: ones([D]), ln2B: zeros([D]),
    fcW: fc.w, fcB: fc.b, fc2W: fc2.w, fc2B: fc2.b,
  };
  for (const t of Object.values(p)) t.requiresGrad_();
  return { p, x: randn([B, T, D]) };
}

function blockForward(p: BlockParams, x: Tensor): Tensor {
  const [b, t, c] = x.shape as [number, number, number];
  const hs = c / NH;
  const h = layerNorm(x, [c], p.ln1W, p.ln1B);
  const [q, k, v] = linear(h, p.attnW, p.attnB)
    .split(c, 2)
    .map((z) => z.view(b, t, NH, hs).transpose(1, 2)) as [Tensor, Tensor, Tensor]; // (B, nh, T, hs)
  const y = scaledDotProductAttention(q, k, v, { isCausal: true }).transpose(1, 2).contiguous().view(b, t, c); // (B, T, C)
  const x1 = x.add(linear(y, p.projW, p.projB));
  const m = linear(linear(layerNorm(x1, [c], p.ln2W, p.ln2B), p.fcW, p.fcB).gelu(), p.fc2W, p.fc2B);
  return x1.add(m);
}

function disposeBlock(s: { p: BlockParams; x: Tensor }): void {
  for (const t of Object.values(s.p)) t.dispose();
  s.x.dispose();
}

// ---- the bench ----------------------------------------------------------------------------------------

export async function runEngineBench(opts: EngineBenchOptions = {}): Promise<BenchResult> {
  const quick = opts.quick ?? false;
  const reps = opts.reps ?? (quick ? 2 : 7);
  if (!(Number.isInteger(reps) && reps >= 1)) throw new Error(`reps must be a positive integer, got ${reps}`);
  const previousThreads = getNumThreads().torch;
  const threads = opts.threads ?? previousThreads;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a positive integer, got ${threads}`);
  const python = defaultPython(opts.python);

  log(`engine: starting the Python baseline (${python}), ${threads} thread(s) each side, ${reps} reps${quick ? ', quick' : ''}`);
  const baseline = await PythonBaseline.start('engine.py', { python, threads });
  setNumThreads(threads); // libtorch's intra-op pool and OpenBLAS's, as the baseline has
  const owned: { dispose(): void }[] = [];
  try {
    const a8 = randn([8, 8]);
    const b8 = randn([8, 8]);
    owned.push(a8, b8);

    const square = (n: number, iters: number): Case => {
      let ab: [Tensor, Tensor] | null = null;
      return {
        name: `matmul_${n}`, unit: 'GFLOP/s', kind: 'rate', iters,
        toUnit: (s, it) => (2 * n ** 3 * it) / s / 1e9,
        ours: (it) => {
          if (!ab) {
            ab = [randn([n, n]), randn([n, n])];
            owned.push(...ab);
          }
          const [a, b] = ab;
          const t0 = now();
          // One big product at a time, freed as soon as it is used (a scope around one op does the same).
          for (let i = 0; i < it; i++) a.matmul(b).dispose();
          return since(t0);
        },
      };
    };

    let train: { p: BlockParams; x: Tensor; opt: AdamW } | null = null;
    const blockTrain = (iters: number): number => {
      if (!train) {
        const s = makeBlock();
        train = { ...s, opt: new AdamW(Object.values(s.p), { lr: 1e-3, weightDecay: 0.01 }) };
        owned.push({ dispose: () => disposeBlock(s) }, train.opt);
      }
      const { p, x, opt } = train;
      const t0 = now();
      for (let i = 0; i < iters; i++) {
        // The step's activations and autograd graph die with the scope; parameters and AdamW state live on.
        scope(() => blockForward(p, x).square().mean().backward());
        opt.step();
        opt.zeroGrad();
      }
      return since(t0);
    };

    const perOp = (s: number, it: number) => (s / it) * 1e6;
    const cases: Case[] = [
      { name: 'add_overhead', unit: 'us/op', kind: 'time', iters: quick ? 200 : 50_000, toUnit: perOp, ours: opOverhead(() => a8.add(b8)) },
      { name: 'matmul_overhead', unit: 'us/op', kind: 'time', iters: quick ? 200 : 50_000, toUnit: perOp, ours: opOverhead(() => a8.matmul(b8)) },
      square(256, quick ? 1 : 200),
      square(512, quick ? 1 : 30),
      square(1024, quick ? 1 : 4),
      { name: 'block_train', unit: 'steps/s', kind: 'rate', iters: quick ? 1 : 5, toUnit: (s, it) => it / s, ours: blockTrain },
    ];

    // Same work on both sides: the untrained block's loss must agree (same weights, input and kernels).
    const ourLoss = scope(() => {
      const s = makeBlock();
      try {
        return blockForward(s.p, s.x).square().mean().item();
      } finally {
        disposeBlock(s);
      }
    });
    const theirLoss = (await baseline.request({ case: 'block_check', iters: 1 })).loss as number;
    if (!(Math.abs(ourLoss - theirLoss) <= 1e-4 * Math.abs(theirLoss))) {
      throw new Error(`engine bench: the two sides' blocks differ (loss ${ourLoss} vs ${theirLoss}); the comparison would be meaningless`);
    }

    const env = captureEnv(baseline.info, { reps, quick });
    const { results, ratios } = await runInterleaved(cases, baseline, reps);
    return { bench: 'engine', env, results, ratios, checks: { block_initial_loss: { ours: ourLoss, theirs: theirLoss } } };
  } finally {
    for (const o of owned.reverse()) o.dispose();
    await baseline.close();
    if (threads !== previousThreads) setNumThreads(previousThreads);
  }
}
