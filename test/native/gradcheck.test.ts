/**
 * Finite-difference gradient checks for every differentiable op the facade binds, in float64, plus the
 * autograd behaviours the trainers rely on (accumulation, zeroGrad, detach, noGrad, retainGrad).
 *
 * libtorch owns the gradients (STYLE.md): these tests do not check libtorch's derivative formulas so
 * much as the binding — that each op reaches the differentiable ATen function with its arguments in the
 * right places, so autograd sees the same function the forward pass computed.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import {
  cat, crossEntropy, dropout, einsum, embedding, Generator, isGradEnabled, layerNorm, linear, manualSeed, noGrad, ones,
  rand, randn, rmsNorm, scaledDotProductAttention, stack, type Tensor, tensor, where,
} from '../../src/tensor/index.js';
import { assertClose, assertThrowsMessage, gradcheck, type GradcheckOptions, liveTensors, scoped } from './helpers.js';

// ---- inputs ------------------------------------------------------------------------------------------------
// One seeded stream for all inputs, so a failure reproduces; inputs are created inside each test's scope.
const gen = new Generator(7);
after(() => gen.dispose());
/** Standard-normal float64 of the given shape. */
const N = (...shape: number[]) => randn(shape, { dtype: 'float64', generator: gen });
/** Uniform on [0.5, 1.5): away from 0 for log, sqrt, division and pow bases. */
const P = (...shape: number[]) => rand(shape, { dtype: 'float64', generator: gen }).add(0.5);
const ids = (...v: number[]) => tensor(v.map(BigInt));
const f64 = (v: number[] | number[][]) => tensor(v, { dtype: 'float64' });

let live = 0;
beforeEach(() => {
  live = liveTensors();
});
afterEach(() => {
  assert.equal(liveTensors(), live, 'the test leaked native tensors');
});

type Case = [name: string, fn: (...xs: Tensor[]) => Tensor | Tensor[], inputs: () => Tensor[], opts?: GradcheckOptions];

function run(cases: Case[]): void {
  for (const [name, fn, inputs, opts] of cases) test(name, scoped(() => gradcheck(fn, inputs(), opts)));
}

describe('gradcheck: the checker itself', () => {
  test('catches a wrong gradient', scoped(() => {
    // x·detach(x) has true derivative 2x, but autograd only sees one factor: x.
    assert.throws(() => gradcheck((x) => x.mul(x.detach()), [N(3)]), /autograd .*finite differences/);
  }));
  test('refuses a check where every gradient is zero', scoped(() => {
    assert.throws(() => gradcheck((x) => x.mul(0), [N(3)]), /every gradient is zero/);
  }));
});

describe('gradcheck: unary ops', () => {
  const Z = { zeroGrad: true };
  run([
    ['neg', (x) => x.neg(), () => [N(2, 3)]],
    ['exp', (x) => x.exp(), () => [N(2, 3)]],
    ['log', (x) => x.log(), () => [P(2, 3)]],
    ['log1p', (x) => x.log1p(), () => [P(2, 3)]],
    ['sqrt', (x) => x.sqrt(), () => [P(2, 3)]],
    ['rsqrt', (x) => x.rsqrt(), () => [P(2, 3)]],
    ['abs', (x) => x.abs(), () => [N(2, 3)]],
    ['sign (zero gradient)', (x) => x.sign(), () => [N(2, 3)], Z],
    ['floor (zero gradient)', (x) => x.floor(), () => [N(2, 3)], Z],
    ['ceil (zero gradient)', (x) => x.ceil(), () => [N(2, 3)], Z],
    ['round (zero gradient)', (x) => x.round(), () => [N(2, 3)], Z],
    ['tanh', (x) => x.tanh(), () => [N(2, 3)]],
    ['sigmoid', (x) => x.sigmoid(), () => [N(2, 3)]],
    ['relu', (x) => x.relu(), () => [N(2, 3)]],
    ['gelu', (x) => x.gelu(), () => [N(2, 3)]],
    ['gelu tanh', (x) => x.gelu('tanh'), () => [N(2, 3)]],
    ['silu', (x) => x.silu(), () => [N(2, 3)]],
    ['softplus', (x) => x.softplus(), () => [N(2, 3)]],
    ['logSigmoid', (x) => x.logSigmoid(), () => [N(2, 3)]],
    ['sin', (x) => x.sin(), () => [N(2, 3)]],
    ['cos', (x) => x.cos(), () => [N(2, 3)]],
    ['erf', (x) => x.erf(), () => [N(2, 3)]],
    ['reciprocal', (x) => x.reciprocal(), () => [P(2, 3)]],
    ['square', (x) => x.square(), () => [N(2, 3)]],
    ['contiguous (of a transpose)', (x) => x.T.contiguous(), () => [N(2, 3)]],
    ['clone', (x) => x.clone(), () => [N(2, 3)]],
    ['to float64 (same dtype)', (x) => x.to('float64'), () => [N(2, 3)]],
    ['clamp [min, max]', (x) => x.clamp(-0.5, 0.5), () => [N(3, 4)]],
    ['clamp min only', (x) => x.clamp(0), () => [N(3, 4)]],
    ['clamp max only', (x) => x.clamp(null, 0.2), () => [N(3, 4)]],
    ['dropout (seeded, train)', (x) => (manualSeed(3), dropout(x, 0.4, true)), () => [N(4, 5)]],
    ['dropout (eval)', (x) => dropout(x, 0.4, false), () => [N(2, 3)]],
  ]);
});

describe('gradcheck: scalar operands', () => {
  run([
    ['add scalar', (x) => x.add(2.5), () => [N(2, 3)]],
    ['sub scalar', (x) => x.sub(2), () => [N(2, 3)]],
    ['mul scalar', (x) => x.mul(-1.5), () => [N(2, 3)]],
    ['div scalar', (x) => x.div(3), () => [N(2, 3)]],
    ['pow scalar (integer)', (x) => x.pow(3), () => [N(2, 3)]],
    ['pow scalar (fractional)', (x) => x.pow(2.5), () => [P(2, 3)]],
    ['rsub', (x) => x.rsub(2), () => [N(2, 3)]],
    ['rdiv', (x) => x.rdiv(2), () => [P(2, 3)]],
    ['rpow', (x) => x.rpow(1.7), () => [N(2, 3)]],
    ['remainder scalar', (x) => x.remainder(0.7), () => [N(2, 3)]],
    ['maximum scalar', (x) => x.maximum(0.1), () => [N(2, 3)]],
  ]);
});

describe('gradcheck: binary ops, both operands, broadcasting', () => {
  run([
    ['add (2,3)+(3)', (a, b) => a.add(b), () => [N(2, 3), N(3)]],
    ['sub (2,1)-(3)', (a, b) => a.sub(b), () => [N(2, 1), N(3)]],
    ['mul (2,3)*(2,1)', (a, b) => a.mul(b), () => [N(2, 3), N(2, 1)]],
    ['div (3)/(2,3)', (a, b) => a.div(b), () => [N(3), P(2, 3)]],
    ['pow (2,3)^(3)', (a, b) => a.pow(b), () => [P(2, 3), N(3)]],
    ['remainder', (a, b) => a.remainder(b), () => [N(2, 3), P(3)]],
    ['floorDivide (zero gradient)', (a, b) => a.floorDivide(b), () => [N(2, 3), P(3)], { zeroGrad: true }],
    ['maximum', (a, b) => a.maximum(b), () => [N(2, 3), N(3)]],
    ['minimum', (a, b) => a.minimum(b), () => [N(2, 1), N(2, 3)]],
    ['matmul (2,3)@(3,4)', (a, b) => a.matmul(b), () => [N(2, 3), N(3, 4)]],
    ['matmul batched (2,2,3)@(3,2)', (a, b) => a.matmul(b), () => [N(2, 2, 3), N(3, 2)]],
    ['matmul matrix @ vector', (a, b) => a.matmul(b), () => [N(2, 3), N(3)]],
    ['matmul vector @ vector', (a, b) => a.matmul(b), () => [N(3), N(3)]],
    ['bmm', (a, b) => a.bmm(b), () => [N(2, 2, 3), N(2, 3, 2)]],
    ['einsum bij,bjk->bik', (a, b) => einsum('bij,bjk->bik', a, b), () => [N(2, 2, 3), N(2, 3, 2)]],
    ['einsum bhqd,bhkd->bhqk', (a, b) => einsum('bhqd,bhkd->bhqk', a, b), () => [N(1, 2, 3, 2), N(1, 2, 3, 2)]],
    ['einsum ii-> (trace)', (a) => einsum('ii->', a), () => [N(3, 3)]],
    ['einsum i,j->ij (outer)', (a, b) => einsum('i,j->ij', a, b), () => [N(2), N(3)]],
  ]);
});

describe('gradcheck: reductions and softmax', () => {
  run([
    ['sum', (x) => x.sum(), () => [N(2, 3)]],
    ['sum(-1, keepdim)', (x) => x.sum(-1, true), () => [N(2, 3)]],
    ['sum([0, 2])', (x) => x.sum([0, 2]), () => [N(2, 3, 2)]],
    ['mean', (x) => x.mean(), () => [N(2, 3)]],
    ['mean(0)', (x) => x.mean(0), () => [N(2, 3)]],
    ['var', (x) => x.var(), () => [N(2, 3)]],
    ['var(-1, correction 0)', (x) => x.var(-1, { correction: 0 }), () => [N(2, 4)]],
    ['std', (x) => x.std(), () => [N(2, 3)]],
    ['std(1, correction 2, keepdim)', (x) => x.std(1, { correction: 2, keepdim: true }), () => [N(2, 4)]],
    ['logsumexp(-1)', (x) => x.logsumexp(-1), () => [N(2, 3)]],
    ['logsumexp([0, 1])', (x) => x.logsumexp([0, 1]), () => [N(2, 3)]],
    ['amax', (x) => x.amax(), () => [N(2, 3)]],
    ['amax(-1)', (x) => x.amax(-1), () => [N(2, 3)]],
    ['amin(0, keepdim)', (x) => x.amin(0, true), () => [N(2, 3)]],
    ['max(dim).values', (x) => x.max(1).values, () => [N(3, 4)]],
    ['min(dim).values', (x) => x.min(0).values, () => [N(3, 4)]],
    ['prod', (x) => x.prod(), () => [N(2, 3)]],
    ['prod(-1)', (x) => x.prod(-1), () => [N(2, 3)]],
    ['cumsum(-1)', (x) => x.cumsum(-1), () => [N(2, 4)]],
    ['cumsum(0)', (x) => x.cumsum(0), () => [N(3, 2)]],
    ['topk values', (x) => x.topk(2).values, () => [N(3, 4)]],
    ['sort values', (x) => x.sort({ descending: true }).values, () => [N(3, 4)]],
    ['softmax(-1)', (x) => x.softmax(-1), () => [N(2, 4)]],
    ['softmax(0)', (x) => x.softmax(0), () => [N(3, 2)]],
    ['logSoftmax(-1)', (x) => x.logSoftmax(-1), () => [N(2, 4)]],
  ]);
});

describe('gradcheck: shape and index ops', () => {
  const mask = () => tensor([[true, false, true], [false, false, true]]);
  run([
    ['reshape', (x) => x.reshape(3, -1), () => [N(2, 3)]],
    ['view', (x) => x.view(6), () => [N(2, 3)]],
    ['flatten', (x) => x.flatten(1), () => [N(2, 2, 2)]],
    ['squeeze', (x) => x.squeeze(1), () => [N(3, 1, 2)]],
    ['unsqueeze', (x) => x.unsqueeze(-1), () => [N(2, 3)]],
    ['transpose', (x) => x.transpose(0, 2), () => [N(2, 3, 2)]],
    ['permute', (x) => x.permute(2, 0, 1), () => [N(2, 3, 2)]],
    ['expand', (x) => x.expand(2, 3, 4), () => [N(3, 1)]],
    ['repeat', (x) => x.repeat(2, 1, 2), () => [N(2, 3)]],
    ['flip', (x) => x.flip([0, 1]), () => [N(2, 3)]],
    ['slice with step', (x) => x.slice(1, 1, 5, 2), () => [N(2, 5)]],
    ['narrow', (x) => x.narrow(0, 1, 2), () => [N(3, 2)]],
    ['select', (x) => x.select(1, -1), () => [N(2, 3)]],
    ['indexSelect (repeated index)', (x) => x.indexSelect(0, ids(2, 0, 2)), () => [N(3, 2)]],
    ['gather (repeated index)', (x) => x.gather(1, tensor([[0n, 0n, 2n], [1n, 2n, 1n]])), () => [N(2, 3)]],
    ['scatter (self and src)', (x, s) => x.scatter(1, tensor([[2n, 0n], [1n, 3n]]), s), () => [N(2, 4), N(2, 2)]],
    ['scatterAdd (self and src, repeated index)', (x, s) => x.scatterAdd(0, tensor([[0n, 1n], [0n, 0n], [2n, 1n]]), s), () => [N(3, 2), N(3, 2)]],
    ['index (integer, repeated)', (x) => x.index(ids(1, 1, 0)), () => [N(2, 3)]],
    ['index (null, integer)', (x) => x.index(null, ids(2, 0)), () => [N(2, 3)]],
    ['index (two integer tensors)', (x) => x.index(ids(0, 1, 1), ids(2, 0, 2)), () => [N(2, 3)]],
    ['index (boolean mask)', (x) => x.index(mask()), () => [N(2, 3)]],
    ['cat', (a, b) => cat([a, b], -1), () => [N(2, 1), N(2, 3)]],
    ['stack', (a, b) => stack([a, b], 1), () => [N(2, 3), N(2, 3)]],
    ['split', (x) => x.split([1, 3], 1), () => [N(2, 4)]],
    ['chunk', (x) => x.chunk(2, 0), () => [N(3, 2)]],
    ['triu', (x) => x.triu(1), () => [N(3, 3)]],
    ['tril', (x) => x.tril(-1), () => [N(3, 4)]],
    ['maskedFill', (x) => x.maskedFill(mask(), -2), () => [N(2, 3)]],
    ['where (both branches, broadcasting)', (a, b) => where(mask(), a, b), () => [N(2, 3), N(3)]],
  ]);
});

describe('gradcheck: neural-network ops', () => {
  run([
    ['embedding (weight, repeated ids)', (w) => embedding(w, tensor([[1n, 3n], [1n, 0n]])), () => [N(4, 3)]],
    ['linear (x, w, b)', (x, w, b) => linear(x, w, b), () => [N(2, 3), N(4, 3), N(4)]],
    ['linear (x, w), batched x', (x, w) => linear(x, w), () => [N(2, 2, 3), N(2, 3)]],
    ['layerNorm (x, w, b)', (x, w, b) => layerNorm(x, [4], w, b), () => [N(2, 3, 4), N(4), N(4)]],
    ['layerNorm over two dims', (x, w) => layerNorm(x, [2, 3], w), () => [N(2, 2, 3), N(2, 3)]],
    ['layerNorm (x only)', (x) => layerNorm(x, [3]), () => [N(2, 3)]],
    ['rmsNorm (x, w)', (x, w) => rmsNorm(x, w), () => [N(2, 3, 4), N(4)]],
    ['rmsNorm (x only, eps 0.1)', (x) => rmsNorm(x, null, 0.1), () => [N(2, 3)]],
    ['crossEntropy (mean)', (l) => crossEntropy(l, ids(2, 0, 1)), () => [N(3, 4)]],
    ['crossEntropy (ignoreIndex, sum)', (l) => crossEntropy(l, ids(2, -100, 1), { reduction: 'sum' }), () => [N(3, 4)]],
    ['crossEntropy (label smoothing 0.1, ignoreIndex)', (l) => crossEntropy(l, ids(2, 0, -100), { labelSmoothing: 0.1 }), () => [N(3, 4)]],
    ['crossEntropy (N, C, d), none', (l) => crossEntropy(l, tensor([[0n, 2n], [1n, 1n]]), { reduction: 'none' }), () => [N(2, 3, 2)]],
    ['scaledDotProductAttention (q, k, v)', (q, k, v) => scaledDotProductAttention(q, k, v), () => [N(1, 2, 3, 4), N(1, 2, 3, 4), N(1, 2, 3, 4)]],
    ['scaledDotProductAttention causal', (q, k, v) => scaledDotProductAttention(q, k, v, { isCausal: true }), () => [N(2, 1, 3, 2), N(2, 1, 3, 2), N(2, 1, 3, 2)]],
    [
      'scaledDotProductAttention boolean mask, custom scale',
      (q, k, v) => scaledDotProductAttention(q, k, v, { mask: tensor([[true, false, true], [true, true, false]]), scale: 0.7 }),
      () => [N(1, 1, 2, 2), N(1, 1, 3, 2), N(1, 1, 3, 2)],
    ],
  ]);
});

// ---- autograd behaviours ------------------------------------------------------------------------------------
describe('autograd', () => {
  test('requiresGrad: off by default, switched on leaves, inherited by results', scoped(() => {
    const x = f64([1, 2]);
    assert.equal(x.requiresGrad, false);
    assert.equal(x.isLeaf, true);
    assert.equal(x.grad, null);
    x.requiresGrad = true;
    assert.equal(x.requiresGrad, true);
    const y = x.mul(2);
    assert.equal(y.requiresGrad, true);
    assert.equal(y.isLeaf, false);
    assert.equal(f64([1]).requiresGrad_().requiresGrad, true);
    assert.equal(f64([1]).requiresGrad_().requiresGrad_(false).requiresGrad, false);
  }));

  test('backward with a gradient argument gives the vector-Jacobian product', scoped(() => {
    const x = f64([1, 2, 3]).requiresGrad_();
    x.mul(x).backward(f64([1, 0.5, -1]));
    assert.deepEqual(x.grad!.toArray(), [2, 2, -6]); // 2x ⊙ v
  }));

  test('gradients accumulate across backward calls; zeroGrad drops them', scoped(() => {
    const x = f64([1, 2]).requiresGrad_();
    x.mul(3).sum().backward();
    assert.deepEqual(x.grad!.toArray(), [3, 3]);
    x.square().sum().backward();
    assert.deepEqual(x.grad!.toArray(), [5, 7]); // 3 + 2x
    x.zeroGrad();
    assert.equal(x.grad, null);
    x.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [1, 1]);
  }));

  test('retainGraph allows a second backward through the same graph', scoped(() => {
    const x = f64([2]).requiresGrad_();
    const y = x.exp().sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    assertClose(x.grad!, [2 * Math.exp(2)], { atol: 0, rtol: 1e-15 });
  }));

  test('backward twice without retainGraph is a clean Error', scoped(() => {
    const x = f64([2]).requiresGrad_();
    const y = x.exp().sum();
    y.backward();
    assertThrowsMessage(() => y.backward(), /^backward\(float64\[\]\): Trying to backward through the graph a second time/);
    assertClose(x.grad!, [Math.exp(2)], { atol: 0, rtol: 1e-15 }, 'the failed call changed nothing');
  }));

  test('detach stops gradients and shares storage', scoped(() => {
    const x = f64([1, 2]).requiresGrad_();
    const d = x.detach();
    assert.equal(d.requiresGrad, false);
    x.detach().mul(10).add(x).sum().backward();
    assert.deepEqual(x.grad!.toArray(), [1, 1], 'only the attached path contributes');
    noGrad(() => x.add_(ones([2], { dtype: 'float64' })));
    assert.deepEqual(d.toArray(), [2, 3], 'the detached tensor sees in-place writes to x');
  }));

  test('noGrad: results do not require grad; the mode is restored, also after a throw', scoped(() => {
    const x = f64([1, 2]).requiresGrad_();
    assert.equal(isGradEnabled(), true);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return x.mul(2).exp();
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(isGradEnabled(), true);
    assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
    assert.equal(isGradEnabled(), true);
    assert.equal(noGrad(() => noGrad(() => isGradEnabled())), false);
    assert.equal(x.mul(2).requiresGrad, true);
  }));

  test('retainGrad keeps a non-leaf gradient', scoped(() => {
    const x = f64([1, 2]).requiresGrad_();
    const h = x.mul(x).retainGrad();
    h.mul(3).sum().backward();
    assert.deepEqual(h.grad!.toArray(), [3, 3]);
    assert.deepEqual(x.grad!.toArray(), [6, 12]);
  }));

  test('gradients flow back through dtype conversions in the input dtype', scoped(() => {
    const x = tensor([1, 2]).requiresGrad_();
    x.double().mul(f64([3, 4])).sum().backward();
    assert.equal(x.grad!.dtype, 'float32');
    assert.deepEqual(x.grad!.toArray(), [3, 4]);
  }));

  test('the gradient of a reused input sums over its uses', scoped(() => {
    const w = f64([[1, 2], [3, 4]]).requiresGrad_();
    const x = f64([1, -1]);
    linear(x, w).add(linear(x.mul(2), w)).sum().backward();
    assert.deepEqual(w.grad!.toArray(), [[3, -3], [3, -3]]);
  }));
});
