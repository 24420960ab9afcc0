/**
 * Value tests for every op the tensor facade binds, against expectations worked out by hand (or from
 * closed forms in plain JS doubles). Float ops run in float32 and float64; matmul, layerNorm, rmsNorm
 * and softmax also in bfloat16 with a tolerance for its 8-bit mantissa. Errors must be JS Errors that
 * name the op and its inputs' dtypes and shapes.
 * Tags: @numeric
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  arange, cat, crossEntropy, dropout, type DType, DTYPES, einsum, embedding, eye, full, Generator, getRngState, layerNorm,
  linear, linspace, manualSeed, multinomial, ones, rand, randint, randn, rmsNorm, scaledDotProductAttention, setRngState,
  buildInfo, stack, Tensor, tensor, where, zeros,
} from '../../src/tensor/index.js';
import { assertClose, assertTensor, assertThrowsMessage, flat, liveTensors, scoped, TOL } from './helpers.js';

const FLOATS = ['float32', 'float64'] as const;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => Math.log1p(Math.exp(x));

let live = 0;
beforeEach(() => {
  live = liveTensors();
});
afterEach(() => {
  assert.equal(liveTensors(), live, 'the test leaked native tensors');
});

// ---- creation ----------------------------------------------------------------------------------------
describe('creation', () => {
  test('nested arrays: numbers → float32, booleans → bool, bigints → int64', scoped(() => {
    assertTensor(tensor([[1, 2, 3], [4, 5, 6]]), 'float32', [2, 3], [[1, 2, 3], [4, 5, 6]]);
    assertTensor(tensor([true, false]), 'bool', [2], [true, false]);
    assertTensor(tensor([[1n, -2n]]), 'int64', [1, 2], [[1, -2]]);
    assertTensor(tensor(3.5), 'float32', [], 3.5);
    assertTensor(tensor([]), 'float32', [0], []);
  }));

  test('every dtype from nested numbers', scoped(() => {
    for (const dtype of DTYPES) {
      const t = tensor([[1, 0], [2, 3]], { dtype });
      assertTensor(t, dtype, [2, 2], dtype === 'bool' ? [[true, false], [true, true]] : [[1, 0], [2, 3]]);
    }
    // Integer dtypes truncate toward zero, uint8 wraps as C does.
    assert.deepEqual(tensor([1.7, -1.7], { dtype: 'int64' }).toArray(), [1, -1]);
    assert.deepEqual(tensor([255, 256], { dtype: 'uint8' }).toArray(), [255, 0]);
  }));

  test('typed arrays keep their element type; shape reshapes', scoped(() => {
    assertTensor(tensor(new Float32Array([1, 2])), 'float32', [2], [1, 2]);
    assertTensor(tensor(new Float64Array([1 / 3])), 'float64', [1], [1 / 3]);
    assertTensor(tensor(new BigInt64Array([5n, -6n])), 'int64', [2], [5, -6]);
    assertTensor(tensor(new Int32Array([-7, 8])), 'int32', [2], [-7, 8]);
    assertTensor(tensor(new Int16Array([-9])), 'int16', [1], [-9]);
    assertTensor(tensor(new Int8Array([-128])), 'int8', [1], [-128]);
    assertTensor(tensor(new Uint8Array([200])), 'uint8', [1], [200]);
    assertTensor(tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] }), 'float32', [2, 3], [[1, 2, 3], [4, 5, 6]]);
    // 16-bit floats from their raw bit patterns: 0x3F80 is bfloat16 1.0, 0x3C00 is float16 1.0.
    assertTensor(tensor(new Uint16Array([0x3f80, 0xc000]), { dtype: 'bfloat16' }), 'bfloat16', [2], [1, -2]);
    assertTensor(tensor(new Uint16Array([0x3c00, 0x3800]), { dtype: 'float16' }), 'float16', [2], [1, 0.5]);
    assert.throws(() => tensor(new Uint16Array([1])), /Uint16Array needs an explicit dtype/);
    // The data is copied: changing the source afterwards does not change the tensor.
    const src = new Float32Array([1, 2]);
    const t = tensor(src);
    src[0] = 99;
    assert.deepEqual(t.toArray(), [1, 2]);
  }));

  test('int64 via bigint keeps all 64 bits (toArray rounds to the nearest double)', scoped(() => {
    const big = 2n ** 60n + 1n;
    const t = tensor([big, -big]);
    assert.deepEqual(Array.from(t.data() as BigInt64Array), [big, -big]);
    assert.deepEqual(Array.from(t.add(1).data() as BigInt64Array), [big + 1n, -big + 1n]);
    assert.deepEqual(t.toArray(), [2 ** 60, -(2 ** 60)]);
  }));

  test('ragged arrays and element-count mismatches are errors', () => {
    assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
    assert.throws(() => tensor([[1, 2], 3] as number[][]), /ragged/);
    assert.throws(() => tensor(new Float32Array(5), { shape: [2, 3] }), /5 elements do not fill shape \[2, 3\]/);
  });

  test('zeros, ones, full in every dtype', scoped(() => {
    for (const dtype of DTYPES) {
      const [z, o] = dtype === 'bool' ? [false, true] : [0, 1];
      assertTensor(zeros([2, 1], { dtype }), dtype, [2, 1], [[z], [z]]);
      assertTensor(ones([2], { dtype }), dtype, [2], [o, o]);
    }
    assertTensor(zeros([]), 'float32', [], 0);
    assertTensor(full([2], 2.5, { dtype: 'float64' }), 'float64', [2], [2.5, 2.5]);
    assertTensor(full([1, 2], -7, { dtype: 'int32' }), 'int32', [1, 2], [[-7, -7]]);
    assertTensor(full([2], -Infinity), 'float32', [2], [-Infinity, -Infinity]);
  }));

  test('arange: int64 for integers, float32 otherwise, negative steps', scoped(() => {
    assertTensor(arange(5), 'int64', [5], [0, 1, 2, 3, 4]);
    assertTensor(arange(2, 8, 2), 'int64', [3], [2, 4, 6]);
    assertTensor(arange(5, 0, -2), 'int64', [3], [5, 3, 1]);
    assertTensor(arange(0, 1, 0.25), 'float32', [4], [0, 0.25, 0.5, 0.75]);
    assertTensor(arange(3, undefined, 1, { dtype: 'float64' }), 'float64', [3], [0, 1, 2]);
  }));

  test('linspace and eye', scoped(() => {
    assertTensor(linspace(0, 1, 5), 'float32', [5], [0, 0.25, 0.5, 0.75, 1]);
    assertTensor(linspace(-1, 1, 3, { dtype: 'float64' }), 'float64', [3], [-1, 0, 1]);
    assertTensor(eye(3), 'float32', [3, 3], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
    assertTensor(eye(2, 3, { dtype: 'int64' }), 'int64', [2, 3], [[1, 0, 0], [0, 1, 0]]);
  }));
});

describe('randomness', () => {
  test('rand, randn, randint: shapes, dtypes and ranges', scoped(() => {
    manualSeed(0);
    const u = rand([1000], { dtype: 'float64' });
    assert.equal(u.dtype, 'float64');
    assert.ok(u.ge(0).all().item() === 1 && u.lt(1).all().item() === 1);
    const n = randn([4000]);
    assert.deepEqual(n.shape, [4000]);
    assert.ok(Math.abs(n.mean().item()) < 0.1 && Math.abs(n.std().item() - 1) < 0.1, 'randn is roughly N(0, 1)');
    const r = randint(-2, 3, [500]);
    assert.equal(r.dtype, 'int64');
    assert.ok(r.ge(-2).all().item() === 1 && r.lt(3).all().item() === 1);
    assert.equal(new Set(flat(r)).size, 5, 'all of -2..2 appear in 500 draws');
    assert.equal(randint(0, 4, [2], { dtype: 'int32' }).dtype, 'int32');
  }));

  test('manualSeed: same seed, same numbers; another seed, other numbers', scoped(() => {
    const draw = () => [...flat(rand([3])), ...flat(randn([3])), ...flat(randint(0, 1000, [3]))];
    manualSeed(123);
    const a = draw();
    manualSeed(123);
    assert.deepEqual(draw(), a);
    manualSeed(124);
    assert.notDeepEqual(draw(), a);
  }));

  test('a Generator with seed s gives the stream manualSeed(s) gives (both Mersenne Twister)', scoped(() => {
    const g = new Generator(77);
    try {
      manualSeed(77);
      assert.deepEqual(flat(rand([4], { generator: g })), flat(rand([4])));
    } finally {
      g.dispose();
    }
  }));

  test('two generators are independent of each other and of the default stream', scoped(() => {
    const [ga, gb, gbAlone] = [new Generator(1), new Generator(2), new Generator(2)];
    try {
      const alone = [flat(rand([4], { generator: gbAlone })), flat(randn([4], { generator: gbAlone }))];
      const b1 = flat(rand([4], { generator: gb }));
      rand([10], { generator: ga });
      manualSeed(5);
      rand([10]);
      randint(0, 10, [7], { generator: ga });
      const b2 = flat(randn([4], { generator: gb }));
      assert.deepEqual([b1, b2], alone);
      assert.notDeepEqual(flat(rand([4], { generator: ga })), flat(rand([4], { generator: gb })));
    } finally {
      for (const g of [ga, gb, gbAlone]) g.dispose();
    }
  }));

  test('getState/setState replay a generator; a state moves between generators', scoped(() => {
    const [g, h] = [new Generator(9), new Generator(10)];
    try {
      rand([3], { generator: g });
      const s = g.getState();
      assert.equal(s.dtype, 'uint8');
      const draw = (gen: Generator) => [flat(rand([3], { generator: gen })), flat(randn([2], { generator: gen })), flat(multinomial(tensor([0.2, 0.3, 0.5]), 2, { generator: gen }))];
      const first = draw(g);
      g.setState(s);
      assert.deepEqual(draw(g), first);
      h.setState(s);
      assert.deepEqual(draw(h), first);
    } finally {
      g.dispose();
      h.dispose();
    }
    assert.throws(() => g.getState(), /generator used after dispose/);
  }));

  test('getRngState/setRngState replay the default generator', scoped(() => {
    manualSeed(3);
    const s = getRngState();
    const a = flat(randn([5]));
    setRngState(s);
    assert.deepEqual(flat(randn([5])), a);
  }));

  test('multinomial: never draws zero-probability classes, distinct without replacement, seeded', scoped(() => {
    manualSeed(11);
    const probs = tensor([[0, 1, 0], [0.5, 0, 0.5], [1, 2, 3]]);
    const one = multinomial(probs, 1);
    assert.deepEqual(one.shape, [3, 1]);
    assert.equal(one.dtype, 'int64');
    assert.deepEqual((one.toArray() as number[][])[0], [1]);
    assert.notEqual((one.toArray() as number[][])[1]![0], 1);
    const four = multinomial(tensor([0.1, 0.2, 0.3, 0.4, 0]), 4);
    assert.deepEqual([...flat(four)].sort(), [0, 1, 2, 3]);
    const many = multinomial(tensor([0.5, 0, 0.5]), 200, { replacement: true });
    assert.ok(!flat(many).includes(1));
    manualSeed(11);
    assert.deepEqual(multinomial(probs, 1).toArray(), one.toArray());
  }));
});

// ---- read-back -----------------------------------------------------------------------------------------
describe('read-back', () => {
  test('toArray, data and item', scoped(() => {
    const t = tensor([[1.5, -2], [3, 4]], { dtype: 'float64' });
    assert.deepEqual(t.toArray(), [[1.5, -2], [3, 4]]);
    const d = t.data();
    assert.ok(d instanceof Float64Array);
    assert.deepEqual(Array.from(d as Float64Array), [1.5, -2, 3, 4]);
    // data() of a non-contiguous view is row-major in its logical order.
    assert.deepEqual(flat(t.T), [1.5, 3, -2, 4]);
    assert.equal(tensor([[7]]).item(), 7);
    assert.equal(tensor([true]).item(), 1);
    assert.equal(tensor([5n]).item(), 5);
    assert.ok(tensor([1], { dtype: 'int32' }).data() instanceof Int32Array);
    assert.ok(tensor([true]).data() instanceof Uint8Array);
    assert.ok(tensor([1n]).data() instanceof BigInt64Array);
    // 16-bit floats: data() gives raw patterns, toArray() decodes.
    assert.deepEqual(flat(tensor([1, -2], { dtype: 'bfloat16' })), [0x3f80, 0xc000]);
    assert.throws(() => tensor([1, 2]).item(), /item\(float32\[2\]\).*one element/);
  }));
  test('extrema: [min, max] in one call', scoped(() => {
    assert.deepEqual(tensor([[3n, -7n], [12n, 0n]]).extrema(), [-7, 12]);
    assert.deepEqual(tensor([[0.5, -2.25], [9, 1]]).T.extrema(), [-2.25, 9]);
    assert.deepEqual(tensor([4], { dtype: 'int32' }).extrema(), [4, 4]);
    assert.throws(() => zeros([0]).extrema(), /extrema\(float32\[0\]\).*empty tensor/);
  }));
});

// ---- elementwise -----------------------------------------------------------------------------------------
describe('arithmetic', () => {
  for (const dtype of FLOATS) {
    test(`broadcasting and scalar operands (${dtype})`, scoped(() => {
      const a = tensor([[1], [2]], { dtype }); // (2, 1)
      const b = tensor([10, 20, 40], { dtype }); // (3)
      assertTensor(a.add(b), dtype, [2, 3], [[11, 21, 41], [12, 22, 42]]);
      assertTensor(a.sub(b), dtype, [2, 3], [[-9, -19, -39], [-8, -18, -38]]);
      assertTensor(a.mul(b), dtype, [2, 3], [[10, 20, 40], [20, 40, 80]]);
      assertTensor(b.div(a), dtype, [2, 3], [[10, 20, 40], [5, 10, 20]]);
      assertTensor(a.add(1.5), dtype, [2, 1], [[2.5], [3.5]]);
      assertTensor(a.sub(1), dtype, [2, 1], [[0], [1]]);
      assertTensor(a.mul(-2), dtype, [2, 1], [[-2], [-4]]);
      assertTensor(a.div(4), dtype, [2, 1], [[0.25], [0.5]]);
      assertTensor(a.pow(3), dtype, [2, 1], [[1], [8]]);
      assertTensor(a.rsub(10), dtype, [2, 1], [[9], [8]]);
      assertTensor(a.rdiv(1), dtype, [2, 1], [[1], [0.5]]);
      assertTensor(a.rpow(3), dtype, [2, 1], [[3], [9]]);
      assertTensor(tensor([2, 3], { dtype }).pow(tensor([3, 0.5], { dtype })), dtype, [2]);
      assertClose(tensor([2, 3], { dtype }).pow(tensor([3, 0.5], { dtype })), [8, Math.sqrt(3)], TOL[dtype]);
      // Python-style remainder and floor division (sign of the divisor, round toward −∞).
      assertTensor(tensor([-3, 3, 5.5], { dtype }).remainder(2), dtype, [3], [1, 1, 1.5]);
      assertTensor(tensor([-3, 3, 5.5], { dtype }).floorDivide(2), dtype, [3], [-2, 1, 2]);
      assertTensor(tensor([1, 5], { dtype }).maximum(tensor([3, 2], { dtype })), dtype, [2], [3, 5]);
      assertTensor(tensor([1, 5], { dtype }).minimum(2), dtype, [2], [1, 2]);
    }));
  }

  test('float64 keeps double precision; float32 rounds to single', scoped(() => {
    assert.equal(tensor([1], { dtype: 'float64' }).div(3).item(), 1 / 3);
    assert.equal(tensor([1]).div(3).item(), Math.fround(1 / 3));
    assert.equal(tensor([0.1], { dtype: 'float64' }).add(0.2).item(), 0.1 + 0.2);
  }));

  test('type promotion follows PyTorch (JS integers act as Python ints)', scoped(() => {
    assert.equal(tensor([1n, 2n]).add(2).dtype, 'int64');
    assert.deepEqual(tensor([1n, 2n]).mul(2).toArray(), [2, 4]);
    assert.equal(tensor([1n, 2n]).add(2.5).dtype, 'float32');
    assert.equal(tensor([1, 2]).mul(2.5).dtype, 'float32');
    assert.equal(tensor([1, 2], { dtype: 'bfloat16' }).mul(2.5).dtype, 'bfloat16');
    assert.equal(tensor([1, 2], { dtype: 'int32' }).add(1).dtype, 'int32');
    assert.equal(tensor([true]).add(1).dtype, 'int64');
    assert.equal(tensor([1]).add(tensor([1], { dtype: 'float64' })).dtype, 'float64');
    assert.equal(tensor([1]).add(tensor([1n])).dtype, 'float32');
    assert.equal(tensor([1], { dtype: 'int32' }).add(tensor([1n])).dtype, 'int64');
    // True division of integers gives floats; floorDivide stays integral.
    assertTensor(tensor([1n, 2n]).div(2), 'float32', [2], [0.5, 1]);
    assertTensor(tensor([-3n, 3n]).floorDivide(2), 'int64', [2], [-2, 1]);
    assertTensor(tensor([2n]).rsub(5), 'int64', [1], [3]);
  }));
});

describe('comparisons and logic', () => {
  test('comparisons give bool, broadcasting', scoped(() => {
    const x = tensor([1, 2, 3]);
    assertTensor(x.eq(2), 'bool', [3], [false, true, false]);
    assertTensor(x.ne(2), 'bool', [3], [true, false, true]);
    assertTensor(x.lt(2), 'bool', [3], [true, false, false]);
    assertTensor(x.le(2), 'bool', [3], [true, true, false]);
    assertTensor(x.gt(2), 'bool', [3], [false, false, true]);
    assertTensor(x.ge(2), 'bool', [3], [false, true, true]);
    assertTensor(x.lt(tensor([[2], [3]])), 'bool', [2, 3], [[true, false, false], [true, true, false]]);
    assertTensor(tensor([1n, 5n]).gt(tensor([2.5])), 'bool', [2], [false, true]);
    const [p, q] = [tensor([true, true, false, false]), tensor([true, false, true, false])];
    assert.deepEqual(p.logicalAnd(q).toArray(), [true, false, false, false]);
    assert.deepEqual(p.logicalOr(q).toArray(), [true, true, true, false]);
    assert.deepEqual(p.logicalNot().toArray(), [false, false, true, true]);
    assert.deepEqual(tensor([0, 2]).logicalNot().toArray(), [true, false]);
    assert.deepEqual(tensor([NaN, 1, Infinity]).isnan().toArray(), [true, false, false]);
    assert.deepEqual(tensor([NaN, 1, Infinity]).isfinite().toArray(), [false, true, false]);
  }));
});

describe('elementwise math', () => {
  const xs = [-2, -0.5, 0, 1, 3];
  const cases: [string, (t: Tensor) => Tensor, (x: number) => number][] = [
    ['exp', (t) => t.exp(), Math.exp],
    ['abs', (t) => t.abs(), Math.abs],
    ['neg', (t) => t.neg(), (x) => -x],
    ['sign', (t) => t.sign(), (x) => (x > 0 ? 1 : x < 0 ? -1 : 0)],
    ['square', (t) => t.square(), (x) => x * x],
    ['sin', (t) => t.sin(), Math.sin],
    ['cos', (t) => t.cos(), Math.cos],
    ['floor', (t) => t.floor(), Math.floor],
    ['ceil', (t) => t.ceil(), Math.ceil],
    ['tanh', (t) => t.tanh(), Math.tanh],
    ['sigmoid', (t) => t.sigmoid(), sigmoid],
    ['relu', (t) => t.relu(), (x) => Math.max(0, x)],
    ['silu', (t) => t.silu(), (x) => x * sigmoid(x)],
    ['softplus', (t) => t.softplus(), softplus],
    ['logSigmoid', (t) => t.logSigmoid(), (x) => -softplus(-x)],
    // GPT-2's gelu_new: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
    ['gelu tanh', (t) => t.gelu('tanh'), (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))],
  ];
  for (const dtype of FLOATS) {
    test(`unary ops against closed forms (${dtype})`, scoped(() => {
      const t = tensor(xs, { dtype });
      for (const [name, f, ref] of cases) {
        const y = f(t);
        assert.equal(y.dtype, dtype, name);
        assertClose(y, xs.map(ref), TOL[dtype], name);
      }
    }));

    test(`exact gelu and erf against Φ tables (${dtype})`, scoped(() => {
      // Φ(x) = ½(1 + erf(x/√2)) for x = -2, -0.5, 0, 1, 3 (standard normal CDF table values).
      const phi = [0.022750131948179195, 0.3085375387259869, 0.5, 0.8413447460685429, 0.9986501019683699];
      assertClose(tensor(xs, { dtype }).gelu(), xs.map((x, i) => x * phi[i]!), TOL[dtype]);
      assertClose(tensor([0.5, 1, -2], { dtype }).erf(), [0.5204998778130465, 0.8427007929497149, -0.9953222650189527], TOL[dtype]);
    }));

    test(`log, log1p, sqrt, rsqrt, reciprocal, round; domain edges (${dtype})`, scoped(() => {
      const p = [0.25, 1, 4];
      assertClose(tensor(p, { dtype }).log(), p.map(Math.log), TOL[dtype]);
      assertClose(tensor([1e-10, 1, 3], { dtype }).log1p(), [Math.log1p(1e-10), Math.LN2, Math.log(4)], { atol: 0, rtol: TOL[dtype].rtol });
      assertClose(tensor(p, { dtype }).sqrt(), [0.5, 1, 2], TOL[dtype]);
      assertClose(tensor(p, { dtype }).rsqrt(), [2, 1, 0.5], TOL[dtype]);
      assertClose(tensor(p, { dtype }).reciprocal(), [4, 1, 0.25], TOL[dtype]);
      assert.deepEqual(tensor([0, -1], { dtype }).log().toArray(), [-Infinity, NaN]);
      assert.deepEqual(tensor([-1], { dtype }).sqrt().toArray(), [NaN]);
      // round() rounds half to even, as torch.round does.
      assert.deepEqual(tensor([0.5, 1.5, 2.5, -0.5, -1.7], { dtype }).round().toArray(), [0, 2, 2, -0, -2]);
    }));
  }

  test('clamp (both sides, one side), where and maskedFill with broadcasting', scoped(() => {
    const x = tensor([-2, -0.5, 0.5, 3]);
    assert.deepEqual(x.clamp(-1, 1).toArray(), [-1, -0.5, 0.5, 1]);
    assert.deepEqual(x.clamp(0).toArray(), [0, 0, 0.5, 3]);
    assert.deepEqual(x.clamp(null, 0).toArray(), [-2, -0.5, 0, 0]);
    assertTensor(tensor([1n, 5n, 9n]).clamp(2, 6), 'int64', [3], [2, 5, 6]);
    const cond = tensor([[true], [false]]);
    assert.deepEqual(where(cond, tensor([1, 2, 3]), tensor([0])).toArray(), [[1, 2, 3], [0, 0, 0]]);
    const m = tensor([[1, 2], [3, 4]], { dtype: 'float64' });
    assert.deepEqual(m.maskedFill(tensor([[true, false], [false, true]]), -1).toArray(), [[-1, 2], [3, -1]]);
    assert.deepEqual(m.maskedFill(tensor([false, true]), -Infinity).toArray(), [[1, -Infinity], [3, -Infinity]]);
  }));
});

// ---- softmax and reductions ------------------------------------------------------------------------------
function refSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe('softmax', () => {
  for (const dtype of [...FLOATS, 'bfloat16'] as const) {
    test(`softmax and logSoftmax (${dtype})`, scoped(() => {
      const tol = TOL[dtype];
      const rows = [[1, 2, 3], [1, 1, 1], [-1, 0, 0.5]];
      const x = tensor(rows, { dtype });
      assert.equal(x.softmax(-1).dtype, dtype);
      assertClose(x.softmax(-1), rows.map(refSoftmax), tol);
      assertClose(x.logSoftmax(1), rows.map((r) => refSoftmax(r).map(Math.log)), { atol: tol.atol * 4, rtol: tol.rtol });
      // Along dim 0: each column of [[1, 2], [3, 4]] differs by 2.
      assertClose(tensor([[1, 2], [3, 4]], { dtype }).softmax(0), [[sigmoid(-2), sigmoid(-2)], [sigmoid(2), sigmoid(2)]], tol);
    }));
  }

  test('softmax is stable for large logits', scoped(() => {
    assert.deepEqual(tensor([1000, 1000]).softmax(0).toArray(), [0.5, 0.5]);
    assert.deepEqual(tensor([1000, 0], { dtype: 'float64' }).logSoftmax(0).toArray(), [0, -1000]);
  }));
});

describe('reductions', () => {
  for (const dtype of FLOATS) {
    test(`sum, mean, prod, logsumexp, cumsum with dims, negative dims and keepdim (${dtype})`, scoped(() => {
      const x = tensor([[1, 2, 3, 4], [2, 4, 6, 8]], { dtype });
      assertTensor(x.sum(), dtype, [], 30);
      assertTensor(x.sum(-1), dtype, [2], [10, 20]);
      assertTensor(x.sum(0, true), dtype, [1, 4], [[3, 6, 9, 12]]);
      assertTensor(x.sum([0, 1]), dtype, [], 30);
      assertTensor(x.mean(), dtype, [], 3.75);
      assertTensor(x.mean(1, true), dtype, [2, 1], [[2.5], [5]]);
      assertTensor(x.mean([-2, -1]), dtype, [], 3.75);
      assertTensor(x.prod(-1), dtype, [2], [24, 384]);
      assertTensor(x.prod(), dtype, [], 9216);
      const lse = (r: number[]) => Math.max(...r) + Math.log(r.reduce((a, v) => a + Math.exp(v - Math.max(...r)), 0));
      assertClose(x.logsumexp(-1), [lse([1, 2, 3, 4]), lse([2, 4, 6, 8])], TOL[dtype]);
      assertClose(x.logsumexp([0, 1], true), [[lse([1, 2, 3, 4, 2, 4, 6, 8])]], TOL[dtype]);
      assertTensor(x.cumsum(-1), dtype, [2, 4], [[1, 3, 6, 10], [2, 6, 12, 20]]);
      assertTensor(x.cumsum(0), dtype, [2, 4], [[1, 2, 3, 4], [3, 6, 9, 12]]);
    }));

    test(`var and std with correction (${dtype})`, scoped(() => {
      // rows [1,2,3,4] and [2,4,6,8]: sums of squared deviations 5 and 20; all 8 values: 37.5.
      const x = tensor([[1, 2, 3, 4], [2, 4, 6, 8]], { dtype });
      assertClose(x.var(-1), [5 / 3, 20 / 3], TOL[dtype]);
      assertClose(x.var(-1, { correction: 0 }), [1.25, 5], TOL[dtype]);
      assertClose(x.var(1, { correction: 2, keepdim: true }), [[2.5], [10]], TOL[dtype]);
      assertClose(x.var(), 37.5 / 7, TOL[dtype]);
      assertClose(x.std(-1), [Math.sqrt(5 / 3), Math.sqrt(20 / 3)], TOL[dtype]);
      assertClose(x.std(undefined, { correction: 0 }), Math.sqrt(37.5 / 8), TOL[dtype]);
      assertClose(x.std([0, 1], { keepdim: true }), [[Math.sqrt(37.5 / 7)]], TOL[dtype]);
    }));

    test(`max/min with values and indices, amax/amin, argmax/argmin (${dtype})`, scoped(() => {
      const x = tensor([[1, 5, 5], [7, 0, 7]], { dtype });
      assertTensor(x.max(), dtype, [], 7);
      assertTensor(x.min(), dtype, [], 0);
      const mx = x.max(-1);
      assertTensor(mx.values, dtype, [2], [5, 7]);
      assertTensor(mx.indices, 'int64', [2], [1, 0]); // the first index on ties
      const mn = x.min(0, true);
      assertTensor(mn.values, dtype, [1, 3], [[1, 0, 5]]);
      assertTensor(mn.indices, 'int64', [1, 3], [[0, 1, 0]]);
      assertTensor(x.amax(0), dtype, [3], [7, 5, 7]);
      assertTensor(x.amin([0, 1]), dtype, [], 0);
      assertTensor(x.argmax(), 'int64', [], 3); // flattened [1,5,5,7,0,7]: the first 7
      assertTensor(x.argmax(1), 'int64', [2], [1, 0]);
      assertTensor(x.argmax(-1, true), 'int64', [2, 1], [[1], [0]]);
      assertTensor(x.argmin(), 'int64', [], 4);
      assertTensor(tensor([3, 3, 3], { dtype }).argmax(), 'int64', [], 0);
    }));
  }

  test('integer and boolean sums stay integral; mean of integers is an error', scoped(() => {
    assertTensor(tensor([1n, 2n]).sum(), 'int64', [], 3);
    assertTensor(tensor([1, 2], { dtype: 'int32' }).sum(), 'int64', [], 3);
    assertTensor(tensor([true, false, true]).sum(), 'int64', [], 2);
    assert.throws(() => tensor([1n, 2n]).mean(), /mean\(int64\[2\]\)/);
  }));

  test('all and any over dims, negative dims and keepdim', scoped(() => {
    const b = tensor([[true, false, true], [true, true, true]]);
    assertTensor(b.all(), 'bool', [], false);
    assertTensor(b.any(), 'bool', [], true);
    assertTensor(b.all(-1), 'bool', [2], [false, true]);
    assertTensor(b.all(1, true), 'bool', [2, 1], [[false], [true]]);
    assertTensor(b.any(0), 'bool', [3], [true, true, true]);
    assertTensor(b.all(0), 'bool', [3], [true, false, true]);
    assertTensor(b.all([0, -1]), 'bool', [], false);
    assertTensor(b.any([-2, 1], true), 'bool', [1, 1], [[true]]);
    assertTensor(tensor([0, 2]).any(), 'bool', [], true);
  }));

  test('topk and sort', scoped(() => {
    const x = tensor([[1, 5, 3, 4], [9, 8, 7, 6]]);
    const top = x.topk(2);
    assert.deepEqual(top.values.toArray(), [[5, 4], [9, 8]]);
    assertTensor(top.indices, 'int64', [2, 2], [[1, 3], [0, 1]]);
    const bottom = x.topk(1, { largest: false });
    assert.deepEqual(bottom.indices.toArray(), [[0], [3]]);
    assert.deepEqual(x.topk(1, { dim: 0 }).values.toArray(), [[9, 8, 7, 6]]);
    const s = x.sort();
    assert.deepEqual(s.values.toArray(), [[1, 3, 4, 5], [6, 7, 8, 9]]);
    assert.deepEqual(s.indices.toArray(), [[0, 2, 3, 1], [3, 2, 1, 0]]);
    assert.deepEqual(x.sort({ dim: 0, descending: true }).values.toArray(), [[9, 8, 7, 6], [1, 5, 3, 4]]);
    // A stable sort keeps equal keys in their original order.
    assert.deepEqual(tensor([2, 1, 2, 1, 2]).sort({ stable: true }).indices.toArray(), [1, 3, 0, 2, 4]);
    assert.deepEqual(tensor([2, 1, 2, 1, 2]).sort({ stable: true, descending: true }).indices.toArray(), [0, 2, 4, 1, 3]);
  }));
});

// ---- matrix products ---------------------------------------------------------------------------------------
describe('matmul, bmm, einsum', () => {
  for (const dtype of [...FLOATS, 'bfloat16'] as const) {
    test(`matmul (${dtype})`, scoped(() => {
      const a = tensor([[1, 2], [3, 4]], { dtype });
      const b = tensor([[5, 6], [7, 8]], { dtype });
      assertTensor(a.matmul(b), dtype, [2, 2], [[19, 22], [43, 50]]);
      // bf16 holds integers up to 256 exactly, so these stay exact; the fractional case needs a tolerance.
      assertTensor(a.matmul(tensor([1, 1], { dtype })), dtype, [2], [3, 7]);
      assertTensor(tensor([1, 1], { dtype }).matmul(a), dtype, [2], [4, 6]);
      assertTensor(tensor([1, 2], { dtype }).matmul(tensor([3, 4], { dtype })), dtype, [], 11);
      const batch = stack([a, b]); // (2, 2, 2) @ (2, 2) broadcasts the right operand
      assertTensor(batch.matmul(a), dtype, [2, 2, 2], [[[7, 10], [15, 22]], [[23, 34], [31, 46]]]);
      const f = tensor([[0.1, 0.2, 0.3]], { dtype }).matmul(tensor([[1.5], [-2.5], [3.5]], { dtype }));
      assertClose(f, [[0.1 * 1.5 - 0.2 * 2.5 + 0.3 * 3.5]], TOL[dtype]);
    }));
  }

  for (const dtype of FLOATS) {
    test(`bmm and einsum (${dtype})`, scoped(() => {
      const a = tensor([[[1, 2, 3], [4, 5, 6]], [[1, 0, 0], [0, 1, 0]]], { dtype }); // (2, 2, 3)
      const b = tensor([[[1], [1], [1]], [[2], [3], [4]]], { dtype }); // (2, 3, 1)
      assertTensor(a.bmm(b), dtype, [2, 2, 1], [[[6], [15]], [[2], [3]]]);
      assert.deepEqual(einsum('bij,bjk->bik', a, b).toArray(), a.bmm(b).toArray());
      const m = tensor([[1, 2], [3, 4]], { dtype });
      assertTensor(einsum('ii->', m), dtype, [], 5);
      assertTensor(einsum('ij->ji', m), dtype, [2, 2], [[1, 3], [2, 4]]);
      assertTensor(einsum('i,j->ij', tensor([1, 2], { dtype }), tensor([3, 4, 5], { dtype })), dtype, [2, 3], [[3, 4, 5], [6, 8, 10]]);
      assertTensor(einsum('ij,jk->ik', m, m), dtype, [2, 2], [[7, 10], [15, 22]]);
      assertTensor(einsum('ij->', m), dtype, [], 10);
    }));
  }
});

// ---- shapes ---------------------------------------------------------------------------------------------------
describe('shape ops', () => {
  test('reshape, view (shares storage), flatten', scoped(() => {
    const x = arange(6, undefined, 1, { dtype: 'float32' });
    assertTensor(x.reshape(2, 3), 'float32', [2, 3], [[0, 1, 2], [3, 4, 5]]);
    assertTensor(x.reshape([3, -1]), 'float32', [3, 2], [[0, 1], [2, 3], [4, 5]]);
    const v = x.view(2, -1);
    x.add_(ones([6]));
    assert.deepEqual(v.toArray(), [[1, 2, 3], [4, 5, 6]], 'a view sees writes to its base');
    const y = zeros([2, 3, 4]);
    assert.deepEqual(y.flatten().shape, [24]);
    assert.deepEqual(y.flatten(1).shape, [2, 12]);
    assert.deepEqual(y.flatten(0, 1).shape, [6, 4]);
    assert.deepEqual(y.flatten(-2, -1).shape, [2, 12]);
  }));

  test('view of a non-contiguous tensor is an error; reshape copies instead', scoped(() => {
    const t = tensor([[1, 2, 3], [4, 5, 6]]).T; // (3, 2), strides (1, 3)
    assertThrowsMessage(() => t.view(6), /^view\(float32\[3,2\]\): view size is not compatible.*\.reshape/);
    assert.deepEqual(t.reshape(6).toArray(), [1, 4, 2, 5, 3, 6]);
    assert.deepEqual(t.contiguous().view(6).toArray(), [1, 4, 2, 5, 3, 6]);
  }));

  test('squeeze, unsqueeze', scoped(() => {
    const t = zeros([1, 2, 1]);
    assert.deepEqual(t.squeeze().shape, [2]);
    assert.deepEqual(t.squeeze(0).shape, [2, 1]);
    assert.deepEqual(t.squeeze(-1).shape, [1, 2]);
    assert.deepEqual(t.squeeze(1).shape, [1, 2, 1], 'squeezing a dim that is not 1 is a no-op');
    assert.deepEqual(t.unsqueeze(0).shape, [1, 1, 2, 1]);
    assert.deepEqual(t.unsqueeze(-1).shape, [1, 2, 1, 1]);
    assert.deepEqual(tensor([1, 2]).unsqueeze(1).toArray(), [[1], [2]]);
  }));

  test('transpose, T, permute, contiguous', scoped(() => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    assertTensor(x.transpose(0, 1), 'float32', [3, 2], [[1, 4], [2, 5], [3, 6]]);
    assert.deepEqual(x.T.toArray(), x.transpose(-1, -2).toArray());
    assert.deepEqual(x.T.strides, [1, 3]);
    assert.deepEqual(x.T.contiguous().strides, [2, 1]);
    assert.deepEqual(x.T.contiguous().toArray(), [[1, 4], [2, 5], [3, 6]]);
    const y = arange(24).reshape(2, 3, 4);
    const p = y.permute(2, 0, 1);
    assert.deepEqual(p.shape, [4, 2, 3]);
    // p[k, i, j] = y[i, j, k] = 12 i + 4 j + k
    assert.equal(p.select(0, 3).select(0, 1).select(0, 2).item(), 12 + 8 + 3);
    assert.deepEqual(y.permute([0, 2, 1]).shape, [2, 4, 3]);
  }));

  test('expand (no copy) and repeat (copies)', scoped(() => {
    const c = tensor([[1], [2]]);
    const e = c.expand(-1, 3);
    assertTensor(e, 'float32', [2, 3], [[1, 1, 1], [2, 2, 2]]);
    assert.deepEqual(e.strides, [1, 0]);
    assert.deepEqual(c.expand([2, 2, 3]).shape, [2, 2, 3]);
    assertTensor(tensor([[1, 2]]).repeat(2, 3), 'float32', [2, 6], [[1, 2, 1, 2, 1, 2], [1, 2, 1, 2, 1, 2]]);
    assert.deepEqual(tensor([1, 2]).repeat([2, 1, 2]).shape, [2, 1, 4]);
    assert.deepEqual(tensor([[1, 2], [3, 4]]).flip(0).toArray(), [[3, 4], [1, 2]]);
    assert.deepEqual(tensor([[1, 2], [3, 4]]).flip([0, 1]).toArray(), [[4, 3], [2, 1]]);
  }));
});

// ---- indexing ---------------------------------------------------------------------------------------------------
describe('indexing', () => {
  test('slice (Python semantics), narrow, select', scoped(() => {
    const r = arange(10);
    assert.deepEqual(r.slice(0, 2, 5).toArray(), [2, 3, 4]);
    assert.deepEqual(r.slice(0, -3).toArray(), [7, 8, 9]);
    assert.deepEqual(r.slice(0, 1, 8, 3).toArray(), [1, 4, 7]);
    assert.deepEqual(r.slice(0, 5, 100).toArray(), [5, 6, 7, 8, 9], 'out-of-range bounds clamp');
    assert.deepEqual(r.slice(0, 0, -8).toArray(), [0, 1]);
    const m = arange(12).reshape(3, 4);
    assert.deepEqual(m.slice(1, 1, 3).toArray(), [[1, 2], [5, 6], [9, 10]]);
    assert.deepEqual(m.slice(-1, 2).toArray(), [[2, 3], [6, 7], [10, 11]]);
    assert.deepEqual(m.narrow(1, 1, 2).toArray(), [[1, 2], [5, 6], [9, 10]]);
    assert.deepEqual(m.narrow(0, 2, 1).toArray(), [[8, 9, 10, 11]]);
    assert.deepEqual(m.select(0, -1).toArray(), [8, 9, 10, 11]);
    assert.deepEqual(m.select(1, 0).toArray(), [0, 4, 8]);
  }));

  test('indexSelect, gather, scatter, scatterAdd', scoped(() => {
    const m = tensor([[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(m.indexSelect(0, tensor([2n, 0n, 2n])).toArray(), [[5, 6], [1, 2], [5, 6]]);
    assert.deepEqual(m.indexSelect(-1, tensor([1n])).toArray(), [[2], [4], [6]]);
    assert.deepEqual(tensor([[1, 2], [3, 4]]).gather(1, tensor([[0n, 0n], [1n, 0n]])).toArray(), [[1, 1], [4, 3]]);
    assert.deepEqual(tensor([[1, 2], [3, 4]]).gather(0, tensor([[1n, 0n]])).toArray(), [[3, 2]]);
    const base = zeros([2, 3]);
    const sc = base.scatter(1, tensor([[2n, 0n], [1n, 2n]]), tensor([[5, 6], [7, 8]]));
    assert.deepEqual(sc.toArray(), [[6, 0, 5], [0, 7, 8]]);
    assert.deepEqual(base.toArray(), [[0, 0, 0], [0, 0, 0]], 'scatter is out of place');
    const sa = tensor([1, 1, 1]).scatterAdd(0, tensor([0n, 1n, 0n, 2n, 0n]), tensor([1, 2, 3, 4, 5]));
    assert.deepEqual(sa.toArray(), [10, 3, 5], 'duplicate indices accumulate');
  }));

  test('index with integer tensors, null (whole dim) and boolean masks', scoped(() => {
    const m = tensor([[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(m.index(tensor([1n, 0n])).toArray(), [[4, 5, 6], [1, 2, 3]]);
    assert.deepEqual(m.index(tensor([0n, 1n]), tensor([2n, 0n])).toArray(), [3, 4]);
    assert.deepEqual(m.index(null, tensor([2n, 0n])).toArray(), [[3, 1], [6, 4]]);
    assert.deepEqual(m.index(m.gt(2.5)).toArray(), [3, 4, 5, 6]);
    assert.deepEqual(m.index(tensor([false, true])).toArray(), [[4, 5, 6]]);
  }));

  test('cat, stack, split, chunk', scoped(() => {
    const a = tensor([[1, 2]]);
    const b = tensor([[3, 4], [5, 6]]);
    assert.deepEqual(cat([a, b]).toArray(), [[1, 2], [3, 4], [5, 6]]);
    assert.deepEqual(cat([b, b], -1).toArray(), [[3, 4, 3, 4], [5, 6, 5, 6]]);
    assert.deepEqual(stack([b, b]).shape, [2, 2, 2]);
    assert.deepEqual(stack([tensor([1, 2]), tensor([3, 4])], 1).toArray(), [[1, 3], [2, 4]]);
    assert.deepEqual(stack([tensor([1, 2]), tensor([3, 4])], -1).toArray(), [[1, 3], [2, 4]]);
    const r = arange(5);
    assert.deepEqual(r.split(2).map((t) => t.toArray()), [[0, 1], [2, 3], [4]]);
    assert.deepEqual(r.split([1, 4]).map((t) => t.toArray()), [[0], [1, 2, 3, 4]]);
    assert.deepEqual(b.split(1, 1).map((t) => t.toArray()), [[[3], [5]], [[4], [6]]]);
    assert.deepEqual(r.chunk(3).map((t) => t.toArray()), [[0, 1], [2, 3], [4]]);
    assert.deepEqual(b.chunk(2, -1).map((t) => t.shape), [[2, 1], [2, 1]]);
  }));

  test('triu and tril with diagonal offsets', scoped(() => {
    const m = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    assert.deepEqual(m.triu().toArray(), [[1, 2, 3], [0, 5, 6], [0, 0, 9]]);
    assert.deepEqual(m.triu(1).toArray(), [[0, 2, 3], [0, 0, 6], [0, 0, 0]]);
    assert.deepEqual(m.tril().toArray(), [[1, 0, 0], [4, 5, 0], [7, 8, 9]]);
    assert.deepEqual(m.tril(-1).toArray(), [[0, 0, 0], [4, 0, 0], [7, 8, 0]]);
    assert.deepEqual(ones([2, 3], { dtype: 'bool' }).tril().toArray(), [[true, false, false], [true, true, false]]);
  }));
});

// ---- neural-network ops --------------------------------------------------------------------------------------
describe('neural-network ops', () => {
  test('embedding gathers rows for ids of any shape', scoped(() => {
    const w = tensor([[0, 0.5], [1, 1.5], [2, 2.5]]);
    const e = embedding(w, tensor([[2n, 0n], [1n, 1n]]));
    assertTensor(e, 'float32', [2, 2, 2], [[[2, 2.5], [0, 0.5]], [[1, 1.5], [1, 1.5]]]);
  }));

  for (const dtype of FLOATS) {
    test(`linear = x Wᵀ + b (${dtype})`, scoped(() => {
      const x = tensor([[1, 2], [-1, 0.5]], { dtype });
      const w = tensor([[1, 0], [0, 1], [1, 1]], { dtype }); // (out 3, in 2)
      assertTensor(linear(x, w, tensor([0.5, -1, 0], { dtype })), dtype, [2, 3], [[1.5, 1, 3], [-0.5, -0.5, -0.5]]);
      assertTensor(linear(x, w), dtype, [2, 3], [[1, 2, 3], [-1, 0.5, -0.5]]);
    }));
  }

  for (const dtype of [...FLOATS, 'bfloat16'] as const) {
    test(`layerNorm and rmsNorm against hand computation (${dtype})`, scoped(() => {
      const tol = dtype === 'bfloat16' ? { atol: 2e-2, rtol: 1e-2 } : TOL[dtype];
      const rows = [[1, 2, 3, 4], [-1, 0, 0, 1]];
      const x = tensor(rows, { dtype });
      const w = [1, 2, 1, 0.5];
      const b = [0, 0, 1, -1];
      const eps = 1e-5;
      const ln = rows.map((r) => {
        const mu = r.reduce((a, v) => a + v, 0) / r.length;
        const va = r.reduce((a, v) => a + (v - mu) ** 2, 0) / r.length; // population variance
        return r.map((v, i) => ((v - mu) / Math.sqrt(va + eps)) * w[i]! + b[i]!);
      });
      const y = layerNorm(x, [4], tensor(w, { dtype }), tensor(b, { dtype }), eps);
      assert.equal(y.dtype, dtype);
      assertClose(y, ln, tol);
      // Without affine parameters: zero mean, unit (population) variance per row.
      const plain = layerNorm(x, [4]);
      assertClose(plain.mean(-1), [0, 0], { atol: dtype === 'bfloat16' ? 2e-2 : 1e-6 });
      const rms = rows.map((r) => {
        const ms = r.reduce((a, v) => a + v * v, 0) / r.length;
        return r.map((v, i) => (v / Math.sqrt(ms + 1e-6)) * w[i]!);
      });
      const z = rmsNorm(x, tensor(w, { dtype }));
      assert.equal(z.dtype, dtype);
      assertClose(z, rms, tol);
      assertClose(rmsNorm(x, null, 0.5), rows.map((r) => r.map((v) => v / Math.sqrt(r.reduce((a, u) => a + u * u, 0) / 4 + 0.5))), tol);
    }));
  }

  test('dropout: p = 0 and train = false are the identity; p = 0.5 zeroes about half and scales by 2', scoped(() => {
    const x = rand([4000]).add(0.5);
    assert.deepEqual(dropout(x, 0, true).toArray(), x.toArray());
    assert.deepEqual(dropout(x, 0.5, false).toArray(), x.toArray());
    manualSeed(0);
    const y = dropout(x, 0.5, true);
    const zero = y.eq(0).sum().item() / 4000;
    assert.ok(zero > 0.45 && zero < 0.55, `dropped fraction ${zero}`);
    const kept = y.ne(0);
    assertClose(y.index(kept), x.index(kept).mul(2).toArray());
    manualSeed(0);
    assert.deepEqual(dropout(x, 0.5, true).toArray(), y.toArray(), 'dropout follows the seeded stream');
    assert.equal(dropout(x, 1, true).abs().sum().item(), 0);
  }));

  for (const dtype of FLOATS) {
    test(`crossEntropy: reductions, ignoreIndex, label smoothing, (N, C, d) (${dtype})`, scoped(() => {
      const L = [[1, 2, 3], [0.5, -1, 2], [0, 0, 0], [3, 1, -2]];
      const T = [2, 0, 1, -100];
      const logits = tensor(L, { dtype });
      const target = tensor(T.map(BigInt));
      const lse = (r: number[]) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0));
      const nll = L.map((r, i) => (T[i]! < 0 ? 0 : lse(r) - r[T[i]!]!));
      const tol = TOL[dtype];
      assertClose(crossEntropy(logits, target, { reduction: 'none' }), nll, tol);
      assertClose(crossEntropy(logits, target, { reduction: 'sum' }), nll[0]! + nll[1]! + nll[2]!, tol);
      assertClose(crossEntropy(logits, target), (nll[0]! + nll[1]! + nll[2]!) / 3, tol, 'mean over non-ignored targets');
      // A custom ignoreIndex: -100 is now a real (out-of-range) class, so ignore 1 instead on rows 0..2.
      const t2 = tensor([2n, 0n, 1n]);
      assertClose(crossEntropy(logits.slice(0, 0, 3), t2, { ignoreIndex: 1 }), (nll[0]! + nll[1]!) / 2, tol);
      // Label smoothing ε: (1 − ε)·nll + ε·mean over classes of (lse − logit_c), ignored rows excluded.
      const eps = 0.1;
      const smooth = L.map((r, i) => (T[i]! < 0 ? 0 : (1 - eps) * nll[i]! + (eps / 3) * r.reduce((a, v) => a + lse(r) - v, 0)));
      assertClose(crossEntropy(logits, target, { labelSmoothing: eps, reduction: 'none' }), smooth, tol);
      assertClose(crossEntropy(logits, target, { labelSmoothing: eps }), (smooth[0]! + smooth[1]! + smooth[2]!) / 3, tol);
      // (N, C, d): class scores along dim 1, one target per position.
      const seq = tensor([L[0]!, L[1]!], { dtype }).T.unsqueeze(0); // (1, 3, 2)
      assertClose(crossEntropy(seq, tensor([[2n, 0n]]), { reduction: 'none' }), [[nll[0]!, nll[1]!]], tol);
    }));

    test(`scaledDotProductAttention = softmax(q kᵀ/√d) v: plain, causal, boolean mask, custom scale (${dtype})`, scoped(() => {
      const g = new Generator(5);
      try {
        const [q, k, v] = [randn([2, 2, 3, 4], { dtype, generator: g }), randn([2, 2, 3, 4], { dtype, generator: g }), randn([2, 2, 3, 4], { dtype, generator: g })];
        const byHand = (scale: number, allowed?: Tensor) => {
          let s = q.matmul(k.transpose(-2, -1)).mul(scale); // (B, nh, T, T)
          if (allowed) s = s.maskedFill(allowed.logicalNot(), -Infinity);
          return s.softmax(-1).matmul(v).toArray();
        };
        const tol = { atol: dtype === 'float64' ? 1e-12 : 1e-5, rtol: 1e-5 };
        assertClose(scaledDotProductAttention(q, k, v), byHand(1 / 2), tol, 'plain');
        const causal = ones([3, 3], { dtype: 'bool' }).tril();
        assertClose(scaledDotProductAttention(q, k, v, { isCausal: true }), byHand(1 / 2, causal), tol, 'causal');
        const mask = tensor([[true, false, true], [false, true, true], [true, true, false]]); // true = attend
        assertClose(scaledDotProductAttention(q, k, v, { mask }), byHand(1 / 2, mask), tol, 'boolean mask');
        const additive = tensor([[0, -1, 2], [0, 0, -Infinity], [1, 0, 0]], { dtype });
        const withAdd = q.matmul(k.transpose(-2, -1)).mul(0.5).add(additive).softmax(-1).matmul(v).toArray();
        assertClose(scaledDotProductAttention(q, k, v, { mask: additive }), withAdd, tol, 'additive mask');
        assertClose(scaledDotProductAttention(q, k, v, { scale: 0.3 }), byHand(0.3), tol, 'custom scale');
        assertClose(scaledDotProductAttention(q, k, v, { scale: 0.3, isCausal: true }), byHand(0.3, causal), tol, 'custom scale, causal');
      } finally {
        g.dispose();
      }
    }));
  }
});

// ---- dtype conversion ---------------------------------------------------------------------------------------------
describe('to(dtype)', () => {
  test('float ↔ int ↔ bool conversions', scoped(() => {
    assertTensor(tensor([1.7, -1.7, 0.2]).to('int32'), 'int32', [3], [1, -1, 0]);
    assertTensor(tensor([1.7, -1.7]).long(), 'int64', [2], [1, -1]);
    assertTensor(tensor([0, 1.5, -2, NaN]).bool(), 'bool', [4], [false, true, true, true]);
    assertTensor(tensor([true, false]).float(), 'float32', [2], [1, 0]);
    assertTensor(tensor([3n]).double(), 'float64', [1], [3]);
    assertTensor(tensor([0.1], { dtype: 'float64' }).float(), 'float32', [1], [Math.fround(0.1)]);
    assertTensor(tensor([-1]).to({ dtype: 'uint8' }), 'uint8', [1], [255]);
    assertTensor(tensor([1, 2]).to('cpu'), 'float32', [2], [1, 2]);
    assertTensor(tensor([1, 2]).to({ device: 'cpu', dtype: 'float64' }), 'float64', [2], [1, 2]);
    assertTensor(tensor([1, 2]).to('float32'), 'float32', [2], [1, 2]);
  }));

  test('16-bit floats round to nearest even; float16 overflows to Infinity', scoped(() => {
    // bfloat16 has 8 significant bits: 1 + 2⁻⁸ is halfway and rounds to even (1), 1 + 3·2⁻⁸ rounds up.
    assert.deepEqual(tensor([1.00390625, 1.01171875, 3.14159]).to('bfloat16').toArray(), [1, 1.015625, 3.140625]);
    assert.deepEqual(tensor([1.0009765625, 65504, 70000, 1e-8]).to('float16').toArray(), [1.0009765625, 65504, Infinity, 0]);
    assert.deepEqual(tensor([3.140625], { dtype: 'bfloat16' }).to('float16').toArray(), [3.140625]);
  }));
});

// ---- float16 on CPU ---------------------------------------------------------------------------------------------------
describe('float16 on CPU: storage and conversion only on libtorch 1.13, computed on 2.x', () => {
  test('creating, converting and reading back work', scoped(() => {
    const h = tensor([[1, 2.5], [-3, 65504]], { dtype: 'float16' });
    assertTensor(h, 'float16', [2, 2], [[1, 2.5], [-3, 65504]]);
    assert.deepEqual(flat(h), [0x3c00, 0x4100, 0xc200, 0x7bff]);
    assertTensor(h.float(), 'float32', [2, 2], [[1, 2.5], [-3, 65504]]);
    assertTensor(h.to('bfloat16'), 'bfloat16', [2, 2]);
    assert.deepEqual(Array.from(h.toBytes().slice(0, 2)), [0x00, 0x3c], 'little-endian bytes');
    assertTensor(zeros([2], { dtype: 'float16' }), 'float16', [2], [0, 0]);
    assert.deepEqual(h.reshape(4).slice(0, 1, 3).toArray(), [2.5, -3], 'views work');
  }));

  test('what 1.13 implements for Half on CPU: add/mul/sum/sort; rmsNorm (computed in float32)', scoped(() => {
    const h = tensor([[1, 2], [3, 4]], { dtype: 'float16' });
    assertTensor(h.add(h), 'float16', [2, 2], [[2, 4], [6, 8]]);
    assertTensor(h.mul(2), 'float16', [2, 2], [[2, 4], [6, 8]]);
    assertTensor(h.sum(), 'float16', [], 10);
    assert.deepEqual(h.sort({ descending: true }).values.toArray(), [[2, 1], [4, 3]]);
    assertTensor(rmsNorm(h), 'float16', [2, 2]);
  }));

  // libtorch 1.13 has no CPU kernels for Half in these; the error names our op and the dtype.
  const unsupported: [string, (h: Tensor) => unknown][] = [
    ['matmul', (h) => h.matmul(h)],
    ['softmax', (h) => h.softmax(-1)],
    ['logSoftmax', (h) => h.logSoftmax(-1)],
    ['layerNorm', (h) => layerNorm(h, [2])],
    ['exp', (h) => h.exp()],
    ['log', (h) => h.log()],
    ['tanh', (h) => h.tanh()],
    ['sigmoid', (h) => h.sigmoid()],
    ['gelu', (h) => h.gelu()],
    ['topk', (h) => h.topk(1)],
    ['linear', (h) => linear(h, h)],
  ];
  const halfKernels = !buildInfo().torchVersion.startsWith('1.');
  const valuesOf = (r: unknown): Tensor => (r instanceof Tensor ? r : (r as { values: Tensor }).values);
  for (const [op, f] of unsupported) {
    if (!halfKernels) {
      test(`${op} on float16 throws a clean Error`, scoped(() => {
        const h = tensor([[1, 2], [3, 4]], { dtype: 'float16' });
        assertThrowsMessage(() => f(h), new RegExp(`^${op}\\(float16\\[2,2\\].*\\): .*not implemented for 'Half'`));
      }));
    } else {
      // libtorch 2.x has CPU kernels for Half: they compute in float32 and round once to binary16 (unit
      // roundoff 2⁻¹¹), so the result is within 2⁻¹¹ relative of the float32 one, twice that for its own rounding.
      test(`${op} on float16 computes in float32 and rounds once (libtorch 2.x)`, scoped(() => {
        const h = tensor([[1, 2], [3, 4]], { dtype: 'float16' });
        const got = valuesOf(f(h));
        assert.equal(got.dtype, 'float16');
        assertClose(got.float(), valuesOf(f(h.float())).toArray(), { atol: 2 ** -24, rtol: 2 ** -10 });
      }));
    }
  }
});

// ---- errors ------------------------------------------------------------------------------------------------------------
describe('errors', () => {
  test('wrong shapes name the op and the inputs with dtypes', scoped(() => {
    const cases: [() => unknown, RegExp][] = [
      [() => ones([2, 2]).matmul(ones([3, 3])), /^matmul\(float32\[2,2\], float32\[3,3\]\): mat1 and mat2 shapes cannot be multiplied/],
      [() => ones([2]).add(ones([3], { dtype: 'float64' })), /^add\(float32\[2\], float64\[3\]\): The size of tensor a \(2\) must match/],
      [() => ones([2, 2, 3]).bmm(ones([2, 4, 1])), /^bmm\(float32\[2,2,3\], float32\[2,4,1\]\)/],
      [() => cat([ones([2, 2]), ones([2, 3])]), /^cat\(float32\[2,2\], float32\[2,3\]\)/],
      [() => linear(ones([2, 3]), ones([4, 5])), /^linear\(float32\[2,3\], float32\[4,5\]\)/],
      [() => layerNorm(ones([2, 3]), [4]), /^layerNorm\(float32\[2,3\]\)/],
      [() => ones([2, 3]).reshape(4), /^reshape\(float32\[2,3\]\): shape '\[4\]' is invalid/],
      [() => embedding(ones([3, 2]), tensor([0.5])), /^embedding\(float32\[3,2\], float32\[1\]\)/],
      [() => crossEntropy(ones([1, 3]), tensor([5n])), /^crossEntropy\(float32\[1,3\], int64\[1\]\): Target 5 is out of bounds/],
      [() => ones([2, 3]).gather(1, tensor([[0.5]])), /^gather\(float32\[2,3\], float32\[1,1\]\)/],
    ];
    for (const [f, re] of cases) assertThrowsMessage(f, re);
  }));

  test('a bad dim is an Error', scoped(() => {
    const x = ones([2, 3]);
    assertThrowsMessage(() => x.sum(5), /^sum\(float32\[2,3\]\): Dimension out of range/);
    assertThrowsMessage(() => x.softmax(2), /^softmax\(float32\[2,3\]\): Dimension out of range/);
    assertThrowsMessage(() => x.transpose(0, -3), /^transpose\(float32\[2,3\]\): Dimension out of range/);
    assertThrowsMessage(() => x.select(0, 2), /^select\(float32\[2,3\]\).*out of range/);
    assertThrowsMessage(() => x.max(2), /^max\(float32\[2,3\]\)/);
    assert.throws(() => x.size(2), /size\(2\): dimension out of range for a 2-d tensor/);
  }));

  test('a disposed tensor is an Error, as an operand or argument', () => {
    const t = ones([2]);
    const u = ones([2]);
    t.dispose();
    t.dispose(); // idempotent
    assert.equal(t.isDisposed, true);
    assert.equal(String(t), 'Tensor(disposed)');
    assert.throws(() => t.add(1), /tensor used after dispose\(\)/);
    assert.throws(() => t.toArray(), /tensor used after dispose\(\)/);
    assert.throws(() => u.add(t), /tensor used after dispose\(\)/);
    assert.throws(() => cat([u, t]), /tensor used after dispose\(\)/);
    u.dispose();
  });

  test('an unknown dtype string is an Error wherever a dtype is taken', scoped(() => {
    const bad = 'float8' as DType;
    const re = /unknown dtype 'float8'|'float8' is neither a dtype/;
    assert.throws(() => zeros([2], { dtype: bad }), re);
    assert.throws(() => full([2], 1, { dtype: bad }), re);
    assert.throws(() => tensor([1, 2], { dtype: bad }), re);
    assert.throws(() => ones([1]).to(bad), re);
    assert.throws(() => ones([1]).to({ dtype: bad }), re);
    assert.throws(() => ones([1]).to('tpu' as DType), /'tpu' is neither a dtype/);
  }));

  test('autograd misuse is an Error', scoped(() => {
    assertThrowsMessage(() => tensor([1n]).requiresGrad_(), /^requiresGrad_\(int64\[1\]\): Only Tensors of floating point/);
    const x = ones([2]).requiresGrad_();
    assertThrowsMessage(() => x.mul(2).backward(), /^backward\(float32\[2\]\): grad can be implicitly created only for scalar outputs/);
  }));
});
