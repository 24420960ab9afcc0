/**
 * Optimisers against their closed forms in plain JS doubles (AdamW with decoupled decay and bias
 * correction, SGD with momentum / dampening / Nesterov / L2 decay), parameter groups, learning-rate
 * changes, bit-identical resumption from a saved state, state validation, gradient-norm clipping,
 * and a tiny MLP that must learn XOR.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  AdamW, clipGradNorm, Generator, linear, manualSeed, noGrad, type Optimizer, randn, scope, SGD, type Tensor, tensor,
  zeros,
} from '../../src/tensor/index.js';
import { assertClose, assertThrowsMessage, flat, liveTensors, scoped } from './helpers.js';
import { decayGroups, epochOptimizer, type EpochTrainFields } from '../../src/nn/train-fields.js';
import { fusedAdamWAvailable } from '../../src/tensor/optim.js';
import { U32 } from '../tolerance.js';
import { reportBound } from '../env.js';

let live = 0;
beforeEach(() => {
  live = liveTensors();
});
afterEach(() => {
  assert.equal(liveTensors(), live, 'the test leaked native tensors');
});

const F64 = { atol: 1e-12, rtol: 1e-12 };

// ---- the quadratic f(x) = ½‖x − c‖², whose gradient is x − c ----------------------------------------------
const X0 = [1.5, -0.75, 3, 0.2, -2];
const C = [0.5, 0.25, -1, 0.2, 4];

/** Runs `steps` optimiser steps on the quadratic in float64; returns the parameters after each step. */
function runQuadratic(steps: number, makeOpt: (p: Tensor) => Optimizer): number[][] {
  return scope(() => {
    const x = tensor(X0, { dtype: 'float64' }).requiresGrad_();
    const c = tensor(C, { dtype: 'float64' });
    using opt = makeOpt(x);
    const path: number[][] = [];
    for (let s = 0; s < steps; s++) {
      scope(() => x.sub(c).square().sum().mul(0.5).backward());
      opt.step();
      opt.zeroGrad();
      path.push(flat(x));
    }
    return path;
  });
}

interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  wd: number;
}

/**
 * torch.optim.AdamW (Loshchilov & Hutter 2019) in doubles: decay p ← p·(1 − lr·wd) first, then Adam with
 * bias-corrected moments m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ): p ← p − lr·m̂/(√v̂ + eps).
 */
function adamwReference(steps: number, h: AdamWHyper): number[][] {
  const x = [...X0];
  const m = x.map(() => 0);
  const v = x.map(() => 0);
  const path: number[][] = [];
  for (let t = 1; t <= steps; t++) {
    for (let i = 0; i < x.length; i++) {
      const g = x[i]! - C[i]!;
      x[i]! *= 1 - h.lr * h.wd;
      m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g;
      v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g * g;
      const mHat = m[i]! / (1 - h.beta1 ** t);
      const vHat = v[i]! / (1 - h.beta2 ** t);
      x[i]! -= (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
    }
    path.push([...x]);
  }
  return path;
}

interface SGDHyper {
  lr: number;
  momentum: number;
  dampening: number;
  wd: number;
  nesterov: boolean;
}

/**
 * torch.optim.SGD in doubles: d = g + wd·p; b = d on the first step, else μ·b + (1 − τ)·d;
 * d = d + μ·b (Nesterov) or b; p ← p − lr·d.
 */
function sgdReference(steps: number, h: SGDHyper): number[][] {
  const x = [...X0];
  let buf: number[] | null = null;
  const path: number[][] = [];
  for (let t = 0; t < steps; t++) {
    const d = x.map((xi, i) => xi - C[i]! + h.wd * xi);
    let step = d;
    if (h.momentum !== 0) {
      const prev: number[] | null = buf;
      const b: number[] = prev === null ? [...d] : prev.map((bi, i) => h.momentum * bi + (1 - h.dampening) * d[i]!);
      buf = b;
      step = h.nesterov ? d.map((di, i) => di + h.momentum * b[i]!) : b;
    }
    for (let i = 0; i < x.length; i++) x[i]! -= h.lr * step[i]!;
    path.push([...x]);
  }
  return path;
}

const FUSED = fusedAdamWAvailable();
/** AdamW's two paths: the fused kernel where this libtorch has it (the default there), and per-parameter ops. */
const ADAMW_PATHS: [string, boolean][] = FUSED ? [['fused', true], ['unfused', false]] : [['unfused', false]];

describe('AdamW', () => {
  for (const [path, fused] of ADAMW_PATHS) {
    for (const wd of [0, 0.1]) {
      test(`${path}: matches the closed form step by step (weight decay ${wd})`, () => {
        const h = { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd };
        const got = runQuadratic(6, (p) => new AdamW([p], { lr: h.lr, betas: [h.beta1, h.beta2], eps: h.eps, weightDecay: wd, fused }));
        const want = adamwReference(6, h);
        got.forEach((xs, s) => assertClose(xs, want[s]!, F64, `step ${s + 1}`));
      });
    }
  }

  test('is fused by default exactly where libtorch has the kernel (>= 2.4)', scoped(() => {
    using opt = new AdamW([zeros([2]).requiresGrad_()], { lr: 0.1 });
    assert.equal(opt.fused, FUSED);
    if (!FUSED) assertThrowsMessage(() => new AdamW([zeros([2]).requiresGrad_()], { lr: 0.1, fused: true }), /needs libtorch >= 2.4/);
  }));

  test('the first step moves every coordinate by lr against its gradient’s sign (bias correction)', () => {
    const [x1] = runQuadratic(1, (p) => new AdamW([p], { lr: 0.05, weightDecay: 0 }));
    const want = X0.map((x, i) => (x === C[i] ? x : x - 0.05 * Math.sign(x - C[i]!)));
    assertClose(x1!, want, { atol: 1e-9, rtol: 0 });
  });
});

describe('SGD', () => {
  const cases: [string, SGDHyper][] = [
    ['plain', { lr: 0.1, momentum: 0, dampening: 0, wd: 0, nesterov: false }],
    ['momentum', { lr: 0.1, momentum: 0.9, dampening: 0, wd: 0, nesterov: false }],
    ['momentum with dampening and weight decay', { lr: 0.05, momentum: 0.8, dampening: 0.3, wd: 0.01, nesterov: false }],
    ['Nesterov with weight decay', { lr: 0.1, momentum: 0.9, dampening: 0, wd: 0.05, nesterov: true }],
  ];
  for (const [name, h] of cases) {
    test(`${name}: matches the hand-computed updates`, () => {
      const got = runQuadratic(5, (p) => new SGD([p], { lr: h.lr, momentum: h.momentum, dampening: h.dampening, weightDecay: h.wd, nesterov: h.nesterov }));
      const want = sgdReference(5, h);
      got.forEach((xs, s) => assertClose(xs, want[s]!, F64, `step ${s + 1}`));
    });
  }

  test('Nesterov without momentum is rejected', () => {
    assertThrowsMessage(() => scope(() => new SGD([zeros([1]).requiresGrad_()], { lr: 0.1, nesterov: true })), /Nesterov/);
  });
});

/** Gives `p` the gradient `g` exactly (d/dp Σ p·g = g). */
function setGrad(p: Tensor, g: number[]): void {
  scope(() => p.mul(tensor(g, { dtype: p.dtype })).sum().backward());
}

describe('parameter groups and learning rates', () => {
  test('each group steps with its own lr and weight decay', scoped(() => {
    const a = tensor([1, 2], { dtype: 'float64' }).requiresGrad_();
    const b = tensor([1, 2], { dtype: 'float64' }).requiresGrad_();
    using opt = new SGD([{ params: [a], lr: 0.1 }, { params: [b], lr: 0.01, weightDecay: 0.5 }], { lr: 1 });
    assert.deepEqual([opt.groupCount, opt.getLr(0), opt.getLr(1)], [2, 0.1, 0.01]);
    setGrad(a, [1, -1]);
    setGrad(b, [1, -1]);
    opt.step();
    assertClose(a, [1 - 0.1, 2 + 0.1], F64);
    assertClose(b, [1 - 0.01 * (1 + 0.5), 2 - 0.01 * (-1 + 0.5 * 2)], F64);
  }));

  test('setLr changes the next step, for one group or all', scoped(() => {
    const a = tensor([0], { dtype: 'float64' }).requiresGrad_();
    const b = tensor([0], { dtype: 'float64' }).requiresGrad_();
    using opt = new SGD([{ params: [a] }, { params: [b] }], { lr: 0.1 });
    const stepWithGrad = () => {
      opt.zeroGrad();
      setGrad(a, [1]);
      setGrad(b, [1]);
      opt.step();
    };
    stepWithGrad(); // both −0.1
    opt.setLr(0.5, 1);
    stepWithGrad(); // a −0.1, b −0.5
    assert.deepEqual([opt.getLr(0), opt.getLr(1)], [0.1, 0.5]);
    opt.setLr(0.25);
    stepWithGrad(); // both −0.25
    assertClose(a, [-0.45], F64);
    assertClose(b, [-0.85], F64);
    assertThrowsMessage(() => opt.setLr(NaN), /lr must be a finite number/);
    assertThrowsMessage(() => opt.setLr(0.1, 2), /no parameter group 2/);
  }));
});

// ---- bit-identical resumption -----------------------------------------------------------------------------
/** A small float32 regression problem whose gradients depend on the parameters nonlinearly. */
function problem(seed: number): { params: Tensor[]; loss: (ps: readonly Tensor[]) => Tensor } {
  const g = new Generator(seed);
  try {
    const w = randn([6, 4], { generator: g }).requiresGrad_();
    const b = randn([6], { generator: g }).requiresGrad_();
    const x = randn([10, 4], { generator: g });
    const target = randn([10, 6], { generator: g });
    return { params: [w, b], loss: ([w, b]) => linear(x, w!, b!).tanh().sub(target).square().mean() };
  } finally {
    g.dispose();
  }
}

function steps(ps: readonly Tensor[], opt: Optimizer, loss: (ps: readonly Tensor[]) => Tensor, n: number): void {
  for (let s = 0; s < n; s++) {
    scope(() => loss(ps).backward());
    opt.step();
    opt.zeroGrad();
  }
}

const KINDS: [string, (ps: Tensor[], lr: number) => Optimizer][] = [
  ['AdamW', (ps, lr) => new AdamW(ps, { lr, weightDecay: 0.05 })],
  ['SGD with momentum', (ps, lr) => new SGD(ps, { lr, momentum: 0.9, nesterov: true })],
];

describe('state save and restore', () => {
  for (const [name, make] of KINDS) {
    test(`${name}: a restored optimizer continues bit-identically`, scoped(() => {
      // Run A: 5 steps (the lr changed midway, as a schedule would), snapshot, 5 more.
      const { params: pa, loss } = problem(11);
      using optA = make(pa, 0.05);
      steps(pa, optA, loss, 3);
      optA.setLr(0.02);
      steps(pa, optA, loss, 2);
      const savedParams = noGrad(() => pa.map((p) => p.detach().clone()));
      const saved = optA.stateDict();
      steps(pa, optA, loss, 5);
      const want = pa.map((p) => Buffer.from(p.toBytes()));

      // Run B: fresh parameters and optimizer (built with the wrong lr), loaded from the snapshot.
      const pb = savedParams.map((p) => p.clone().requiresGrad_());
      using optB = make(pb, 0.9);
      optB.loadStateDict(saved);
      assert.equal(optB.getLr(), 0.02, 'the learning rate comes back with the state');
      steps(pb, optB, loss, 5);
      pb.forEach((p, i) => assert.ok(Buffer.from(p.toBytes()).equals(want[i]!), `${name}: parameter ${i} differs after resuming`));

      // Control: without the optimizer state the same 5 steps land elsewhere, so the check above has teeth.
      const pc = savedParams.map((p) => p.clone().requiresGrad_());
      using optC = make(pc, 0.02);
      steps(pc, optC, loss, 5);
      assert.ok(!Buffer.from(pc[0]!.toBytes()).equals(want[0]!), 'a fresh optimizer should not reproduce the resumed run');
    }));
  }

  test('loadStateDict rejects a state of the wrong kind, group count, parameter count or shape', scoped(() => {
    const a = zeros([3]).requiresGrad_();
    const b = zeros([2]).requiresGrad_();
    using adam = new AdamW([a, b], { lr: 0.1 });
    using sgd = new SGD([a, b], { lr: 0.1, momentum: 0.9 });
    using grouped = new AdamW([{ params: [a] }, { params: [b] }], { lr: 0.1 });
    setGrad(a, [1, 2, 3]);
    setGrad(b, [1, 2]);
    adam.step();
    sgd.step();
    const state = adam.stateDict();
    assertThrowsMessage(() => sgd.loadStateDict(state), /optimizer state is for adamw, this optimizer is sgd/);
    assertThrowsMessage(() => adam.loadStateDict(sgd.stateDict()), /optimizer state is for sgd, this optimizer is adamw/);
    assertThrowsMessage(() => grouped.loadStateDict(state), /1 parameter groups, this optimizer 2/);
    assertThrowsMessage(() => adam.loadStateDict({ ...state, params: [...state.params, null] }), /3 entries, optimizer has 2 parameters/);
    assertThrowsMessage(() => adam.loadStateDict({ ...state, params: [state.params[1]!, state.params[0]!] }), /shape float32\[2\] does not match parameter float32\[3\]/);
  }));
});

// ---- fused against unfused, float32 -----------------------------------------------------------------------
/**
 * How far the two AdamW paths may put one float32 coordinate apart after one step from the same state,
 * p' = p·(1 − lr·wd) − s·m'/(√v'/√c₂ + ε), m' = β₁m + (1 − β₁)g, v' = β₂v + (1 − β₂)g², s = lr/c₁,
 * c_k = 1 − β_kᵗ. Each side rounds, relative to u = 2⁻²⁴ and to first order: the decay product (u·|p|);
 * m' (≤ 3 roundings of terms bounded by M = β₁|m| + (1 − β₁)|g|); v' (≤ 4 roundings, all terms positive,
 * so relative 4u), hence √v' (2u + its own u), /√c₂ (u, plus u for the constant) and + ε (u): the
 * denominator D relative 6u; the update s·m'/D (s's constant u, the product and quotient 2u): together
 * ≤ (3 + 6 + 3)·u·s·M/D; and the final subtraction (u·|p'|). Two sides, each within that of the exact
 * value: twice the sum. The fused kernel may contract a·b + c into one FMA (one rounding fewer), which
 * only shrinks an error, so the bound holds for any order of the kernels' vector lanes too.
 */
function adamwStepBound(p: number, g: number, m: number, v: number, t: number, h: { lr: number; b1: number; b2: number; eps: number; wd: number }): number {
  const s = h.lr / (1 - h.b1 ** t);
  const mNew = h.b1 * m + (1 - h.b1) * g;
  const vNew = h.b2 * v + (1 - h.b2) * g * g;
  const d = Math.sqrt(vNew) / Math.sqrt(1 - h.b2 ** t) + h.eps;
  const bigM = h.b1 * Math.abs(m) + (1 - h.b1) * Math.abs(g);
  const pNew = p * (1 - h.lr * h.wd) - (s * mNew) / d;
  return 2 * U32 * (Math.abs(p) + 12 * (s * bigM) / d + Math.abs(pNew));
}

describe('fused AdamW against unfused (float32) @numeric', { skip: FUSED ? false : 'this libtorch has no fused CPU AdamW (< 2.4)' }, () => {
  const h = { lr: 3e-3, b1: 0.9, b2: 0.95, eps: 1e-6, wd: 0.1 };
  /** Parameters (a matrix and a vector), gradients and a plausible state at step 3, all from one seed. */
  function start(seed: number) {
    const g = new Generator(seed);
    try {
      const make = (shape: number[], scale: number, positive = false) => {
        const t = randn(shape, { generator: g }).mul(scale);
        return positive ? t.square() : t;
      };
      const shapes = [[37, 19], [53]];
      return {
        params: shapes.map((sh) => make(sh, 1)),
        grads: shapes.map((sh) => make(sh, 0.1)),
        m: shapes.map((sh) => make(sh, 0.03)),
        v: shapes.map((sh) => make(sh, 0.01, true)),
      };
    } finally {
      g.dispose();
    }
  }

  test('one step from the same state: parameters within the derived bound, moments close, same step count', scoped(() => {
    const s0 = start(7);
    const run = (fused: boolean) => {
      const ps = s0.params.map((p) => p.clone().requiresGrad_());
      // Per-group hyper-parameters: the matrix decays, the vector (as a norm gain would) does not.
      using opt = new AdamW([{ params: [ps[0]!] }, { params: [ps[1]!], weightDecay: 0, lr: h.lr / 2 }], { lr: h.lr, betas: [h.b1, h.b2], eps: h.eps, weightDecay: h.wd, fused });
      opt.loadStateDict({ kind: 'adamw', lrs: [h.lr, h.lr / 2], params: s0.m.map((m, i) => ({ step: 3, buffers: [m, s0.v[i]!] })) });
      ps.forEach((p, i) => scope(() => p.mul(s0.grads[i]!).sum().backward()));
      opt.step();
      const st = opt.stateDict();
      return { ps: ps.map((p) => flat(p)), st: st.params.map((q) => ({ step: q!.step, m: flat(q!.buffers[0]!), v: flat(q!.buffers[1]!) })) };
    };
    const a = run(true);
    const b = run(false);
    let worst = { diff: 0, bound: 1 }; // the coordinate nearest its bound
    let widest = 0;
    let moved = 0;
    for (let k = 0; k < a.ps.length; k++) {
      const hk = k === 0 ? h : { ...h, lr: h.lr / 2, wd: 0 };
      const [p0, g0, m0, v0] = [flat(s0.params[k]!), flat(s0.grads[k]!), flat(s0.m[k]!), flat(s0.v[k]!)];
      assert.equal(a.st[k]!.step, 4);
      assert.equal(b.st[k]!.step, 4);
      for (let i = 0; i < p0.length; i++) {
        const bound = adamwStepBound(p0[i]!, g0[i]!, m0[i]!, v0[i]!, 4, hk);
        const diff = Math.abs(a.ps[k]![i]! - b.ps[k]![i]!);
        assert.ok(diff <= bound, `parameter ${k}[${i}]: fused ${a.ps[k]![i]} vs unfused ${b.ps[k]![i]} differ by ${diff} > ${bound}`);
        if (diff / bound > worst.diff / worst.bound) worst = { diff, bound };
        widest = Math.max(widest, bound);
        moved = Math.max(moved, Math.abs(a.ps[k]![i]! - p0[i]!));
        // m' and v' as in the bound above: 3 roundings of terms bounded by M, 4 of positive terms, per side.
        const mBound = 6 * U32 * (h.b1 * Math.abs(m0[i]!) + (1 - h.b1) * Math.abs(g0[i]!));
        const vBound = 8 * U32 * (h.b2 * v0[i]! + (1 - h.b2) * g0[i]! ** 2);
        assert.ok(Math.abs(a.st[k]!.m[i]! - b.st[k]!.m[i]!) <= mBound, `exp_avg ${k}[${i}]`);
        assert.ok(Math.abs(a.st[k]!.v[i]! - b.st[k]!.v[i]!) <= vBound, `exp_avg_sq ${k}[${i}]`);
      }
    }
    // Teeth: the step moved parameters by far more than the bound allows between the paths.
    assert.ok(moved > 100 * widest, `the step (${moved}) should dwarf the bound (${widest})`);
    reportBound('optim: fused vs unfused AdamW, one step', worst.diff, worst.bound, 0);
  }));

  test('a state saved by one path resumes under the other (the same layout)', scoped(() => {
    const { params: pa, loss } = problem(3);
    using fused = new AdamW(pa, { lr: 0.01, weightDecay: 0.05, fused: true });
    steps(pa, fused, loss, 3);
    const saved = fused.stateDict();
    const pb = noGrad(() => pa.map((p) => p.detach().clone().requiresGrad_()));
    using unfused = new AdamW(pb, { lr: 0.01, weightDecay: 0.05, fused: false });
    unfused.loadStateDict(saved);
    steps(pa, fused, loss, 2);
    steps(pb, unfused, loss, 2);
    // Two steps on a smooth problem: a few float32 roundings of parameters of size ~1, far below a step (~0.01).
    pa.forEach((p, i) => assertClose(flat(pb[i]!), flat(p), { atol: 1e-5, rtol: 0 }, `parameter ${i}`));
  }));
});

describe('clipGradNorm', () => {
  test('returns the norm before clipping and scales the gradients to maxNorm', scoped(() => {
    const a = zeros([2], { dtype: 'float64' }).requiresGrad_();
    const b = zeros([1], { dtype: 'float64' }).requiresGrad_();
    setGrad(a, [3, 4]);
    setGrad(b, [12]);
    assert.equal(clipGradNorm([a, b], 100), 13, 'the norm √(9 + 16 + 144)');
    assertClose(a.grad!, [3, 4], F64, 'a norm under maxNorm leaves the gradients alone');
    assert.equal(clipGradNorm([a, b], 6.5), 13);
    // PyTorch scales by maxNorm / (norm + 1e-6).
    const k = 6.5 / (13 + 1e-6);
    assertClose(a.grad!, [3 * k, 4 * k], F64);
    assertClose(b.grad!, [12 * k], F64);
    assertClose([clipGradNorm([a, b], 100)], [6.5], { atol: 1e-6, rtol: 0 });
  }));

  test('the infinity norm is the largest |gradient|', scoped(() => {
    const a = zeros([3], { dtype: 'float64' }).requiresGrad_();
    setGrad(a, [1, -5, 2]);
    assert.equal(clipGradNorm([a], 2.5, Infinity), 5);
    const k = 2.5 / (5 + 1e-6);
    assertClose(a.grad!, [k, -5 * k, 2 * k], F64);
  }));
});

test('a 2-8-1 tanh MLP learns XOR with AdamW', scoped(() => {
  manualSeed(20240611);
  const w1 = randn([8, 2]).requiresGrad_();
  const b1 = zeros([8]).requiresGrad_();
  const w2 = randn([1, 8]).mul(0.5).requiresGrad_();
  const b2 = zeros([1]).requiresGrad_();
  using opt = new AdamW([w1, b1, w2, b2], { lr: 0.05, weightDecay: 0 });
  const x = tensor([[0, 0], [0, 1], [1, 0], [1, 1]]);
  const y = tensor([0, 1, 1, 0]);
  const logits = () => linear(linear(x, w1, b1).tanh(), w2, b2).squeeze(-1); // (4,)
  // Binary cross-entropy on logits z: −[y·log σ(z) + (1 − y)·log σ(−z)], via logSigmoid for stability.
  const bce = (z: Tensor) => y.mul(z.logSigmoid()).add(y.rsub(1).mul(z.neg().logSigmoid())).mean().neg();
  const MAX_STEPS = 300;
  let solvedAt = -1;
  let loss = Infinity;
  for (let s = 1; s <= MAX_STEPS && solvedAt < 0; s++) {
    loss = scope(() => {
      const l = bce(logits());
      l.backward();
      return l.item();
    });
    opt.step();
    opt.zeroGrad();
    const correct = scope(() => noGrad(() => logits().gt(0).eq(y.gt(0.5)).sum().item()));
    if (correct === 4 && loss < 0.1) solvedAt = s;
  }
  assert.ok(solvedAt > 0, `not solved in ${MAX_STEPS} steps (loss ${loss})`);
  assert.deepEqual(scope(() => noGrad(() => logits().gt(0).toArray())), [false, true, true, false]);
}));

describe('epoch trainers\' weight decay (decayGroups)', () => {
  test('matrices decay, biases and norm gains (1-D) do not, and the parameters keep their order', () => {
    const w1 = tensor([[1, 2], [3, 4]], { dtype: 'float64' }).requiresGrad_();
    const gain = tensor([1, 1], { dtype: 'float64' }).requiresGrad_();
    const w2 = tensor([[2, 2]], { dtype: 'float64' }).requiresGrad_();
    const bias = tensor([0.5], { dtype: 'float64' }).requiresGrad_();
    const params = [w1, gain, w2, bias];
    const groups = decayGroups(params, 0.1);
    assert.deepEqual(groups.map((g) => [g.params.length, g.weightDecay]), [[1, 0.1], [1, 0], [1, 0.1], [1, 0]]);
    assert.deepEqual(groups.flatMap((g) => g.params), params);
    // A zero gradient: AdamW moves a parameter only by its decay, p ← p·(1 − lr·wd).
    const opt = epochOptimizer(params, { optimizer: 'adamw', lr: 0.5, weightDecay: 0.1 } as EpochTrainFields);
    scope(() => params.map((p) => p.mul(0).sum()).reduce((a, b) => a.add(b)).backward());
    opt.step();
    assertClose(flat(w1), [0.95, 1.9, 2.85, 3.8], F64);
    assertClose(flat(gain), [1, 1], F64);
    assertClose(flat(bias), [0.5], F64);
    opt.dispose();
    for (const p of params) p.dispose();
  });
});
