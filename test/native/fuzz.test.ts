/**
 * Seeded fuzzing of the tensor facade: thousands of random op calls with random shapes (0-d, empty, up
 * to 4-d), all ten dtypes, random dims (negative, out of range) and hostile arguments (bad k, bad split
 * sizes, mismatched shapes, out-of-range indices, negative and unallocatable shapes, NaN/Infinity
 * scalars, INT_MIN ÷ −1, disposed inputs). Every call must either succeed or throw a JS Error with a
 * message; a crash of the process (SIGSEGV, SIGFPE, abort) fails the whole file.
 *
 * Reproducing a crash: FUZZ_SEED=<seed> FUZZ_TRACE=1 node --test dist/test/native/fuzz.test.js prints
 * each call to stderr (synchronously) before making it, so the last line names the culprit.
 *
 * Crashes it found in libtorch 1.13, now refused in native/ops.cpp (and pinned in the regression test
 * at the end): integer remainder/floorDivide of INT32_MIN or INT64_MIN by -1 (SIGFPE), and indexSelect
 * of a 0-d tensor with other than one index (a heap overflow, pytorch#88940). It also found every
 * libtorch error costing ~15 ms for a symbolized backtrace nobody read (native/runtime.cpp).
 */
import assert from 'node:assert/strict';
import { writeSync } from 'node:fs';
import { test } from 'node:test';
import {
  AdamW, arange, cat, clipGradNorm, crossEntropy, type Device, dropout, type DType, DTYPES, einsum, embedding, eye,
  fromBytes, full, Generator, isFloating, keep, layerNorm, linear, linspace, memory, multinomial, noGrad, normal_, ones,
  rand, randint, randn, rmsNorm, scaledDotProductAttention, scope, SGD, stack, Tensor, tensor, uniform_, where, zeros,
} from '../../src/tensor/index.js';
import { mulberry32 } from '../../src/random.js'; // seeded, so a failing run replays exactly

const SEED = Number(process.env.FUZZ_SEED ?? 20240611);
const CALLS = Number(process.env.FUZZ_CALLS ?? 6000);
const TRACE = process.env.FUZZ_TRACE === '1';
/** FUZZ_VERBOSE=1 prints per-op counts, milliseconds and the distinct error messages. */
const VERBOSE = process.env.FUZZ_VERBOSE === '1';


/** Integer extremes per dtype: the values where integer arithmetic overflows or traps. */
const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1], int16: [-32768, 32767], int8: [-128, 127], uint8: [0, 255],
};
const SCALARS = [0, 1, -1, 2, -2, 3, 0.5, -3.75, 7, NaN, Infinity, -Infinity, -0, 1e300, -1e300, 1e-300, 2 ** 31, -(2 ** 31), 2 ** 53, -(2 ** 63)];
const ARANGE_ENDS = [0, 1, -1, 3, 5, -4, 0.5, NaN, Infinity, -Infinity];
const HUGE = [1e12, 2 ** 40, 2 ** 62, -1e12, Number.MAX_SAFE_INTEGER];
const DEVICES = ['cpu', 'cpu', 'cpu', 'cuda', 'cuda:3', 'meta', 'garbage', ''];
const EINSUM = ['ij,jk->ik', 'ij->ji', 'i,i->', 'bij,bjk->bik', '...ij->...ji', 'ii->i', 'ij', '->', 'i->ii', 'ab,ab->ab', 'x,y->', '', 'ij,jk', 'é', 'i...j,j...k->ik'];
const UNARY = ['neg', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'abs', 'sign', 'tanh', 'sigmoid', 'relu', 'gelu', 'silu', 'softplus', 'logSigmoid', 'floor', 'ceil', 'round', 'sin', 'cos', 'erf', 'reciprocal', 'square', 'isnan', 'isfinite', 'contiguous', 'clone', 'detach', 'logicalNot', 'float', 'double', 'long', 'bool'] as const;
const BINARY = ['add', 'sub', 'mul', 'div', 'pow', 'remainder', 'floorDivide', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr', 'matmul', 'bmm'] as const;
const REDUCE = ['sum', 'mean', 'prod', 'logsumexp', 'amax', 'amin', 'all', 'any'] as const;

/** Random choices, and the pool of live tensors that ops draw their inputs from. */
class Fuzz {
  readonly r: () => number;
  readonly pool: Tensor[] = [];
  readonly disposed: Tensor[] = [];
  constructor(seed: number) {
    this.r = mulberry32(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  dtype(): DType {
    return this.pick(DTYPES);
  }
  /** A dimension index: usually valid for `ndim`, sometimes negative-valid, out of range or huge. */
  dim(ndim: number): number {
    const u = this.r();
    if (u < 0.75) return this.int(-Math.max(ndim, 1), Math.max(ndim - 1, 0));
    if (u < 0.95) return this.pick([ndim, ndim + 1, -ndim - 1, -ndim - 3, 5]);
    return this.pick(HUGE) * (this.chance(0.5) ? 1 : -1);
  }
  dims(ndim: number): number[] {
    return Array.from({ length: this.int(0, 3) }, () => this.dim(ndim));
  }
  /** A size argument: small (zero and negatives included), or far too large to allocate. */
  size(): number {
    const u = this.r();
    if (u < 0.85) return this.int(0, 5);
    if (u < 0.93) return this.int(-3, -1);
    return this.pick(HUGE);
  }
  shape(maxDims = 4): number[] {
    const nd = this.int(0, maxDims);
    return Array.from({ length: nd }, () => (this.chance(0.1) ? 0 : this.int(1, 4)));
  }
  badShape(): number[] {
    return this.chance(0.75) ? this.shape() : Array.from({ length: this.int(1, 3) }, () => this.size());
  }
  scalar(): number {
    return this.chance(0.6) ? this.int(-3, 5) : this.pick(SCALARS);
  }
  device(): Device {
    return this.pick(DEVICES) as Device;
  }
  /** One element value for `dtype`, with the type's extremes and float specials now and then. */
  value(dtype: DType): number {
    if (isFloating(dtype)) return this.chance(0.05) ? this.pick([NaN, Infinity, -Infinity, -0, 1e38]) : (this.r() - 0.5) * 6;
    if (dtype === 'bool') return this.int(0, 1);
    const range = INT_RANGE[dtype] ?? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
    if (this.chance(0.1)) return this.pick(range);
    return Math.min(Math.max(this.int(-3, 8), range[0]), range[1]);
  }
  /** A fresh tensor of `dtype` and `shape` with random values (int64 may hold INT64_MIN). */
  make(dtype: DType, shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (dtype === 'int64') {
      const v = BigInt64Array.from({ length: n }, () => (this.chance(0.05) ? -(2n ** 63n) : BigInt(this.value('int32'))));
      return tensor(v, { shape });
    }
    const v = Float64Array.from({ length: n }, () => this.value(dtype));
    return tensor(v, { shape, dtype });
  }
  /** Integer indices, mostly in [0, 3] (valid for most pool shapes), else out of range or negative; mostly int64. */
  indices(shape = this.shape(2)): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const wild = this.chance(0.4);
    const v = Float64Array.from({ length: n }, () => (wild && this.chance(0.3) ? this.int(-5, 9) : this.int(0, 3)));
    return tensor(v, { shape, dtype: this.chance(0.85) ? 'int64' : this.pick(DTYPES) });
  }
  /** An input tensor: mostly from the pool, sometimes fresh, sometimes already disposed. */
  t(): Tensor {
    const u = this.r();
    if (u < 0.03 && this.disposed.length > 0) return this.pick(this.disposed);
    if (u < 0.7 && this.pool.length > 0) return this.pick(this.pool);
    return this.make(this.dtype(), this.shape());
  }
  /** A float tensor, for the ops where other dtypes would only test the same type error. */
  ft(): Tensor {
    const t = this.t();
    return !t.isDisposed && isFloating(t.dtype) ? t : this.make(this.pick(['float32', 'float64', 'bfloat16', 'float16'] as const), this.shape());
  }
  /** A tensor shaped like `like` (often), or of a random shape (mismatched). */
  like(like: Tensor, dtype = like.isDisposed ? this.dtype() : like.dtype): Tensor {
    return this.chance(0.7) && !like.isDisposed ? this.make(dtype, like.shape) : this.make(dtype, this.shape());
  }
}

type Op = (f: Fuzz) => unknown;

/** Every facade entry point, each called with random (often hostile) arguments. */
const OPS: Record<string, Op> = {
  // ---- creation --------------------------------------------------------------------------------------
  zeros: (f) => zeros(f.badShape(), { dtype: f.dtype(), device: f.device() }),
  ones: (f) => ones(f.badShape(), { dtype: f.dtype() }),
  full: (f) => full(f.badShape(), f.scalar(), { dtype: f.dtype(), device: f.device() }),
  tensorNested: (f) => {
    const s = f.shape(3);
    const build = (d: number): unknown => (d === s.length ? f.scalar() : Array.from({ length: s[d]! + (f.chance(0.05) ? 1 : 0) }, () => build(d + 1)));
    return tensor(build(0) as number[], { dtype: f.dtype() });
  },
  fromBytes: (f) => fromBytes(new Uint8Array(f.int(0, 40)), f.dtype(), f.badShape()),
  // Ranges are small or absurd (>= 1e17 elements), never a few GB that would allocate and fill slowly.
  arange: (f) => arange(f.pick(ARANGE_ENDS), f.pick([...ARANGE_ENDS, 1e18, -1e18, 2 ** 62]), f.pick([1, 2, -1, -3, 0.5, 0, NaN, Infinity, 1e-300]), { dtype: f.dtype() }),
  linspace: (f) => linspace(f.scalar(), f.scalar(), f.size(), { dtype: f.dtype() }),
  eye: (f) => eye(f.size(), f.size(), { dtype: f.dtype() }),
  rand: (f) => withGenerator(f, (generator) => rand(f.badShape(), { dtype: f.dtype(), generator })),
  randn: (f) => withGenerator(f, (generator) => randn(f.badShape(), { dtype: f.dtype(), generator })),
  randint: (f) => withGenerator(f, (generator) => randint(f.scalar(), f.scalar(), f.badShape(), { dtype: f.dtype(), generator })),
  multinomial: (f) => multinomial(f.t(), f.size(), { replacement: f.chance(0.5) }),
  uniform_: (f) => uniform_(f.t().clone(), f.scalar(), f.scalar()),
  normal_: (f) => normal_(f.t().clone(), f.scalar(), f.scalar()),
  generatorState: (f) => {
    const g = new Generator(f.int(-5, 1000));
    try {
      if (f.chance(0.5)) g.setState(f.chance(0.5) ? g.getState() : f.t());
      return rand([2], { generator: g });
    } finally {
      g.dispose();
    }
  },
  // ---- elementwise -------------------------------------------------------------------------------------
  unary: (f) => (f.t()[f.pick(UNARY)] as () => Tensor)(),
  gelu: (f) => f.t().gelu(f.pick(['none', 'tanh'] as const)),
  binary: (f) => {
    const a = f.t();
    const op = f.pick(BINARY);
    const b = f.chance(0.35) && !['logicalAnd', 'logicalOr', 'matmul', 'bmm'].includes(op) ? f.scalar() : f.chance(0.5) ? f.t() : f.like(a, f.dtype());
    return (a[op] as (o: Tensor | number) => Tensor)(b);
  },
  intDivision: (f) => {
    // The trap values: the dtype's minimum divided by -1.
    const dtype = f.pick(['int64', 'int32', 'int16', 'int8', 'uint8'] as const);
    const shape = f.shape(2);
    const a = f.chance(0.3) ? full(shape, dtype === 'int64' ? -(2 ** 63) : INT_RANGE[dtype]![0], { dtype }) : f.make(dtype, shape);
    const b = f.chance(0.5) ? -1 : f.make(f.pick([dtype, 'int64'] as const), a.shape);
    const op = f.pick(['remainder', 'floorDivide', 'div'] as const);
    return f.chance(0.2) && typeof b === 'number' ? (op === 'div' ? a.rdiv(b) : a.rsub(b)) : a[op](b);
  },
  reversed: (f) => f.t()[f.pick(['rsub', 'rdiv', 'rpow'] as const)](f.scalar()),
  clamp: (f) => f.t().clamp(f.chance(0.3) ? null : f.scalar(), f.chance(0.3) ? null : f.scalar()),
  maskedFill: (f) => {
    const a = f.t();
    return a.maskedFill(f.like(a, f.chance(0.8) ? 'bool' : f.dtype()), f.scalar());
  },
  where: (f) => {
    const a = f.t();
    return where(f.like(a, f.chance(0.8) ? 'bool' : f.dtype()), a, f.chance(0.6) ? f.like(a) : f.t());
  },
  to: (f) => {
    const a = f.t();
    const u = f.r();
    return u < 0.6 ? a.to(f.dtype()) : u < 0.8 ? a.to(f.device()) : a.to({ dtype: f.dtype(), device: f.device() });
  },
  // ---- reductions ------------------------------------------------------------------------------------
  reduce: (f) => {
    const a = f.t();
    const op = f.pick(REDUCE);
    const nd = a.isDisposed ? 1 : a.ndim;
    const dims = f.chance(0.3) ? undefined : f.chance(0.5) ? f.dim(nd) : f.dims(nd);
    if (op === 'prod') return a.prod(typeof dims === 'number' ? dims : undefined, f.chance(0.5));
    if (op === 'logsumexp') return a.logsumexp(dims ?? f.dims(nd), f.chance(0.5));
    return a[op](dims, f.chance(0.5));
  },
  varStd: (f) => {
    const a = f.t();
    const opts = { correction: f.chance(0.5) ? f.int(-1, 3) : undefined, keepdim: f.chance(0.5) };
    const dims = f.chance(0.3) ? undefined : f.dims(a.isDisposed ? 1 : a.ndim);
    return f.chance(0.5) ? a.var(dims, opts) : a.std(dims, opts);
  },
  maxMin: (f) => {
    const a = f.t();
    if (f.chance(0.25)) return f.chance(0.5) ? a.max() : a.min();
    const d = f.dim(a.isDisposed ? 1 : a.ndim);
    return f.chance(0.5) ? a.max(d, f.chance(0.5)) : a.min(d, f.chance(0.5));
  },
  argMaxMin: (f) => {
    const a = f.t();
    const d = f.chance(0.3) ? undefined : f.dim(a.isDisposed ? 1 : a.ndim);
    return f.chance(0.5) ? a.argmax(d, f.chance(0.5)) : a.argmin(d, f.chance(0.5));
  },
  cumsum: (f) => {
    const a = f.t();
    return a.cumsum(f.dim(a.isDisposed ? 1 : a.ndim));
  },
  softmax: (f) => {
    const a = f.t();
    const d = f.dim(a.isDisposed ? 1 : a.ndim);
    return f.chance(0.5) ? a.softmax(d) : a.logSoftmax(d);
  },
  topk: (f) => {
    const a = f.t();
    return a.topk(f.chance(0.8) ? f.int(-1, 5) : f.pick(HUGE), { dim: f.dim(a.isDisposed ? 1 : a.ndim), largest: f.chance(0.5), sorted: f.chance(0.5) });
  },
  sort: (f) => {
    const a = f.t();
    return a.sort({ dim: f.dim(a.isDisposed ? 1 : a.ndim), descending: f.chance(0.5), stable: f.chance(0.5) });
  },
  // ---- shapes ----------------------------------------------------------------------------------------
  reshape: (f) => f.t().reshape(f.chance(0.3) ? [-1] : f.badShape()),
  view: (f) => {
    const a = f.t();
    return (f.chance(0.3) && !a.isDisposed && a.ndim >= 2 ? a.T : a).view(f.chance(0.3) ? [-1] : f.badShape());
  },
  flatten: (f) => {
    const a = f.t();
    const nd = a.isDisposed ? 1 : a.ndim;
    return a.flatten(f.dim(nd), f.dim(nd));
  },
  squeeze: (f) => {
    const a = f.t();
    return a.squeeze(f.chance(0.3) ? undefined : f.dim(a.isDisposed ? 1 : a.ndim));
  },
  unsqueeze: (f) => {
    const a = f.t();
    return a.unsqueeze(f.dim((a.isDisposed ? 1 : a.ndim) + 1));
  },
  transpose: (f) => {
    const a = f.t();
    const nd = a.isDisposed ? 1 : a.ndim;
    return a.transpose(f.dim(nd), f.dim(nd));
  },
  permute: (f) => {
    const a = f.t();
    const nd = a.isDisposed ? 1 : a.ndim;
    const p = Array.from({ length: nd }, (_, i) => i).sort(() => f.r() - 0.5);
    return a.permute(f.chance(0.7) ? p : f.dims(nd));
  },
  expand: (f) => {
    const a = f.t();
    const s = a.isDisposed ? [] : a.shape.map((d) => (d === 1 && f.chance(0.5) ? f.size() : f.chance(0.2) ? -1 : d));
    const e = a.expand(f.chance(0.7) ? [...Array.from({ length: f.int(0, 1) }, () => f.size()), ...s] : f.badShape());
    return f.chance(0.5) ? e.contiguous() : e;
  },
  repeat: (f) => {
    const a = f.t();
    return a.repeat(Array.from({ length: (a.isDisposed ? 1 : a.ndim) + f.int(-1, 1) }, () => f.size()));
  },
  flip: (f) => {
    const a = f.t();
    return a.flip(f.dims(a.isDisposed ? 1 : a.ndim));
  },
  // ---- indexing --------------------------------------------------------------------------------------
  slice: (f) => {
    const a = f.t();
    return a.slice(f.dim(a.isDisposed ? 1 : a.ndim), f.scalar() | 0, f.chance(0.3) ? undefined : f.scalar() | 0, f.chance(0.7) ? f.int(1, 3) : f.int(-2, 0));
  },
  narrow: (f) => {
    const a = f.t();
    return a.narrow(f.dim(a.isDisposed ? 1 : a.ndim), f.int(-5, 5), f.size());
  },
  select: (f) => {
    const a = f.t();
    return a.select(f.dim(a.isDisposed ? 1 : a.ndim), f.chance(0.9) ? f.int(-5, 5) : f.pick(HUGE));
  },
  indexSelect: (f) => {
    const a = f.t();
    return a.indexSelect(f.dim(a.isDisposed ? 1 : a.ndim), f.indices(f.shape(f.chance(0.9) ? 1 : 2)));
  },
  gather: (f) => {
    const a = f.t();
    const nd = a.isDisposed ? 1 : a.ndim;
    return a.gather(f.dim(nd), f.indices(f.chance(0.7) && !a.isDisposed ? a.shape.map((d) => Math.max(1, d - f.int(0, 1))) : f.shape()));
  },
  scatter: (f) => {
    const a = f.t();
    const nd = a.isDisposed ? 1 : a.ndim;
    const idx = f.indices(f.chance(0.7) && !a.isDisposed ? a.shape.map((d) => Math.max(1, d - f.int(0, 1))) : f.shape());
    const src = f.like(idx, a.isDisposed ? f.dtype() : f.chance(0.8) ? a.dtype : f.dtype());
    return f.chance(0.5) ? a.scatter(f.dim(nd), idx, src) : a.scatterAdd(f.dim(nd), idx, src);
  },
  index: (f) => {
    const a = f.t();
    const n = (a.isDisposed ? 1 : a.ndim) + f.int(-1, 1);
    return a.index(...Array.from({ length: Math.max(n, 0) }, () => (f.chance(0.3) ? null : f.chance(0.8) ? f.indices(f.shape(1)) : f.like(a, 'bool'))));
  },
  split: (f) => {
    const a = f.t();
    const sizes = f.chance(0.5) ? f.size() : Array.from({ length: f.int(0, 3) }, () => f.size());
    return a.split(sizes, f.dim(a.isDisposed ? 1 : a.ndim));
  },
  chunk: (f) => {
    const a = f.t();
    return a.chunk(f.size(), f.dim(a.isDisposed ? 1 : a.ndim));
  },
  triangle: (f) => (f.chance(0.5) ? f.t().triu(f.scalar() | 0) : f.t().tril(f.chance(0.9) ? f.int(-3, 3) : f.pick(HUGE))),
  // ---- several tensors -------------------------------------------------------------------------------
  cat: (f) => {
    const a = f.t();
    const ts = [a, ...Array.from({ length: f.int(0, 3) }, () => (f.chance(0.6) ? f.like(a, f.chance(0.8) || a.isDisposed ? undefined : f.dtype()) : f.t()))];
    return cat(f.chance(0.05) ? [] : ts, f.dim(a.isDisposed ? 1 : a.ndim));
  },
  stack: (f) => {
    const a = f.t();
    const ts = [a, ...Array.from({ length: f.int(0, 3) }, () => (f.chance(0.7) ? f.like(a) : f.t()))];
    return stack(f.chance(0.05) ? [] : ts, f.dim((a.isDisposed ? 1 : a.ndim) + 1));
  },
  einsum: (f) => einsum(f.pick(EINSUM), ...Array.from({ length: f.int(0, 3) }, () => f.t())),
  matmulShaped: (f) => {
    const [m, k, n] = [f.int(0, 4), f.int(0, 4), f.int(0, 4)];
    const dt = f.chance(0.8) ? 'float32' : f.dtype();
    const lead = f.shape(2);
    const a = f.make(dt, [...lead, m, k]);
    const b = f.make(f.chance(0.8) ? dt : f.dtype(), [...(f.chance(0.5) ? lead : []), f.chance(0.8) ? k : k + 1, n]);
    return f.chance(0.7) ? a.matmul(b) : a.bmm(b);
  },
  // ---- neural-network ops -------------------------------------------------------------------------------
  embedding: (f) => embedding(f.chance(0.8) ? f.make(f.pick(['float32', 'float64', 'int32'] as const), [f.int(0, 5), f.int(1, 3)]) : f.t(), f.indices()),
  linear: (f) => {
    const [i, o] = [f.int(0, 4), f.int(0, 4)];
    const x = f.chance(0.8) ? f.make('float32', [...f.shape(2), i]) : f.t();
    const w = f.chance(0.8) ? f.make(f.chance(0.9) ? 'float32' : f.dtype(), [o, f.chance(0.85) ? i : i + 1]) : f.t();
    return linear(x, w, f.chance(0.5) ? null : f.chance(0.8) ? f.make('float32', [o]) : f.t());
  },
  layerNorm: (f) => {
    const x = f.ft();
    const norm = !x.isDisposed && f.chance(0.7) ? x.shape.slice(f.int(0, x.ndim)) : f.badShape();
    const w = f.chance(0.5) ? null : f.make(x.isDisposed ? 'float32' : x.dtype, f.chance(0.8) ? norm.filter((d) => d >= 0) : f.shape(2));
    return layerNorm(x, norm, w, f.chance(0.5) ? null : w, f.chance(0.9) ? 1e-5 : f.scalar());
  },
  rmsNorm: (f) => {
    const x = f.ft();
    const w = f.chance(0.4) ? null : f.make(f.chance(0.8) && !x.isDisposed ? x.dtype : f.dtype(), !x.isDisposed && x.ndim > 0 && f.chance(0.8) ? [x.size(-1)] : f.shape(2));
    return rmsNorm(x, w, f.chance(0.9) ? 1e-6 : f.scalar());
  },
  dropout: (f) => withGenerator(f, () => dropout(f.t(), f.chance(0.7) ? f.r() : f.scalar(), f.chance(0.5))),
  crossEntropy: (f) => {
    const [n, c] = [f.int(0, 4), f.int(0, 5)];
    const logits = f.chance(0.8) ? f.make(f.chance(0.8) ? 'float32' : f.dtype(), f.chance(0.9) ? [n, c] : [n, c, f.int(0, 2)]) : f.t();
    const target = f.chance(0.7) ? f.indices(f.chance(0.9) ? [n] : f.shape(2)) : f.chance(0.5) && !logits.isDisposed ? f.like(logits) : f.t();
    const reduction = f.pick(['none', 'mean', 'sum', 'bogus'] as const);
    return crossEntropy(logits, target, { ignoreIndex: f.chance(0.8) ? -100 : f.int(-2, 3), reduction: reduction as 'mean', labelSmoothing: f.chance(0.7) ? 0 : f.chance(0.8) ? f.r() : f.scalar() });
  },
  sdpa: (f) => {
    const [b, h, t, s, d] = [f.int(0, 2), f.int(1, 2), f.int(0, 3), f.int(0, 3), f.int(1, 4)];
    const dt = f.chance(0.85) ? 'float32' : f.dtype();
    const q = f.make(dt, f.chance(0.9) ? [b, h, t, d] : f.shape());
    const k = f.make(dt, f.chance(0.9) ? [b, h, s, d] : f.shape());
    const v = f.make(f.chance(0.9) ? dt : f.dtype(), f.chance(0.9) ? [b, h, s, f.int(1, 3)] : f.shape());
    const mask = f.chance(0.5) ? null : f.make(f.chance(0.5) ? 'bool' : f.dtype(), f.chance(0.7) ? [t, s] : f.shape());
    return scaledDotProductAttention(q, k, v, { mask, isCausal: f.chance(0.3), dropoutP: f.chance(0.9) ? 0 : f.scalar(), scale: f.chance(0.7) ? undefined : f.scalar() });
  },
  // ---- in place -------------------------------------------------------------------------------------------
  copy_: (f) => {
    const a = f.t();
    return a.copy_(f.chance(0.7) ? f.like(a, f.dtype()) : f.t());
  },
  fill_: (f) => f.t().fill_(f.scalar()),
  add_: (f) => {
    const a = f.t();
    return a.add_(f.chance(0.7) ? f.like(a, f.dtype()) : f.t(), f.scalar());
  },
  mul_: (f) => f.t().mul_(f.scalar()),
  // ---- read-back and metadata -----------------------------------------------------------------------------
  item: (f) => f.t().item(),
  toArray: (f) => f.t().toArray(),
  toBytes: (f) => f.t().toBytes(),
  data: (f) => f.t().data(),
  metadata: (f) => {
    const a = f.t();
    return [a.shape, a.dtype, a.device, a.ndim, a.numel, a.strides, a.toString(), a.size(f.dim(a.isDisposed ? 1 : a.ndim))];
  },
  // ---- autograd ---------------------------------------------------------------------------------------------
  backward: (f) => {
    const x = f.t().clone();
    x.requiresGrad_(f.chance(0.9));
    const y = (x[f.pick(UNARY)] as () => Tensor)();
    if (f.chance(0.3)) y.retainGrad();
    const out = f.chance(0.7) ? y.sum() : y;
    out.backward(f.chance(0.8) ? undefined : f.like(out), { retainGraph: f.chance(0.3) });
    if (f.chance(0.2)) out.backward();
    const g = x.grad;
    x.zeroGrad();
    return g;
  },
  noGrad: (f) => noGrad(() => f.t().clone().requiresGrad_().mul(2)),
  optimizer: (f) => {
    const params = Array.from({ length: f.int(0, 3) }, () => {
      const p = f.chance(0.8) ? f.make(f.chance(0.8) ? 'float32' : f.dtype(), f.shape(2)) : f.t();
      if (f.chance(0.9)) p.requiresGrad_();
      return p;
    });
    const lr = f.chance(0.8) ? 0.1 : f.scalar();
    const opt = f.chance(0.5)
      ? new AdamW(params, { lr, weightDecay: f.chance(0.8) ? 0.01 : f.scalar(), betas: f.chance(0.9) ? undefined : [f.scalar(), f.scalar()] })
      : new SGD(params, { lr, momentum: f.chance(0.5) ? 0.9 : f.scalar(), nesterov: f.chance(0.3) });
    try {
      for (const p of params) if (p.requiresGrad && f.chance(0.8)) p.square().sum().backward();
      if (f.chance(0.3)) clipGradNorm(params, f.scalar(), f.chance(0.8) ? 2 : f.scalar());
      if (f.chance(0.3)) opt.setLr(f.scalar(), f.chance(0.8) ? undefined : f.int(-1, 2));
      opt.step();
      const state = opt.stateDict();
      if (f.chance(0.2) && state.params[0]) state.params[0].buffers.reverse();
      if (f.chance(0.1)) state.params.push(null);
      opt.loadStateDict(state);
      opt.step();
      opt.zeroGrad();
      return params;
    } finally {
      opt.dispose();
    }
  },
  // ---- lifetime ------------------------------------------------------------------------------------------
  keepAndDispose: (f) => {
    const a = keep(f.t().clone());
    a.dispose();
    a.dispose();
    return a.isDisposed ? a.shape : undefined; // a disposed tensor's metadata must be an Error
  },
};

/** Runs `fn` with a seeded generator half the time (sometimes already disposed), freeing it after. */
function withGenerator<T>(f: Fuzz, fn: (g: Generator | undefined) => T): T {
  if (f.chance(0.5)) return fn(undefined);
  const g = new Generator(f.int(0, 1000));
  if (f.chance(0.1)) g.dispose();
  try {
    return fn(g);
  } finally {
    g.dispose();
  }
}

function tensorsIn(v: unknown, out: Tensor[] = []): Tensor[] {
  if (v instanceof Tensor) out.push(v);
  else if (Array.isArray(v)) for (const x of v) tensorsIn(x, out);
  else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) tensorsIn(x, out);
  return out;
}

const POOL = 24;
const MAX_POOL_NUMEL = 512;

test(`fuzz: ${CALLS} random calls (seed ${SEED}) each succeed or throw an Error; none crashes or leaks`, () => {
  const f = new Fuzz(SEED);
  for (let i = 0; i < POOL; i++) f.pool.push(f.make(f.dtype(), f.shape()));
  const base = memory().liveTensors - f.pool.length;
  const names = Object.keys(OPS);
  const stats: Record<string, { ok: number; err: number; ms: number; errors: Set<string> }> = Object.fromEntries(names.map((n) => [n, { ok: 0, err: 0, ms: 0, errors: new Set() }]));
  let ok = 0;
  let err = 0;
  for (let call = 0; call < CALLS; call++) {
    const name = f.pick(names);
    if (TRACE) writeSync(2, `#${call} ${name}\n`);
    let result: unknown;
    const t0 = performance.now();
    try {
      result = scope(() => {
        const r = OPS[name]!(f);
        // Read small results back, so every kind of result also crosses the boundary once.
        for (const t of tensorsIn(r)) if (t.numel <= MAX_POOL_NUMEL) t.toArray();
        return r;
      });
      ok++;
      stats[name]!.ok++;
    } catch (e) {
      assert.ok(e instanceof Error, `call #${call} (${name}) threw a non-Error: ${String(e)}`);
      assert.ok(e.message.length > 0, `call #${call} (${name}) threw an Error without a message`);
      err++;
      stats[name]!.err++;
      if (VERBOSE) stats[name]!.errors.add(e.message.replace(/\d+/g, 'N').slice(0, 160));
    }
    stats[name]!.ms += performance.now() - t0;
    // Small results join the pool (evicting, and disposing, a random member); the rest are freed now.
    for (const t of tensorsIn(result)) {
      if (t.isDisposed) continue;
      if (t.device === 'cpu' && t.numel <= MAX_POOL_NUMEL && f.chance(0.3)) {
        const k = f.int(0, POOL - 1);
        const old = f.pool[k]!;
        f.pool[k] = t;
        if (!f.pool.includes(old)) {
          old.dispose();
          f.disposed.push(old);
          if (f.disposed.length > 8) f.disposed.shift();
        }
      } else if (!f.pool.includes(t)) t.dispose();
    }
    // Scopes free everything else, on success and on error alike: the live count is exactly the pool.
    const live = memory().liveTensors;
    const pooled = new Set(f.pool).size;
    if (live !== base + pooled) assert.fail(`call #${call} (${name}) left ${live - base - pooled} native tensors behind`);
  }
  for (const t of new Set(f.pool)) t.dispose();
  assert.equal(memory().liveTensors, base);
  if (VERBOSE) console.log(JSON.stringify({ ok, err, stats }, (_, v: unknown) => (v instanceof Set ? [...v] : v)));
  // Guard against a fuzz that silently tests nothing: both outcomes must be common, and every op reached.
  assert.ok(ok >= 0.2 * CALLS, `only ${ok} of ${CALLS} calls succeeded`);
  assert.ok(err >= 0.2 * CALLS, `only ${err} of ${CALLS} calls failed`);
  for (const [n, s] of Object.entries(stats)) assert.ok(s.ok + s.err >= 20, `op ${n} was called only ${s.ok + s.err} times`);
  for (const n of ['zeros', 'binary', 'reduce', 'gather', 'matmulShaped', 'crossEntropy', 'backward', 'optimizer']) {
    assert.ok(stats[n]!.ok > 0 && stats[n]!.err > 0, `op ${n}: ${stats[n]!.ok} successes, ${stats[n]!.err} failures; expected both`);
  }
});

test('regressions: the inputs that crashed libtorch 1.13 are Errors', () => {
  scope(() => {
    const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof Error && re.test(e.message));
    for (const dtype of ['int32', 'int64'] as const) {
      const min = dtype === 'int32' ? tensor([-(2 ** 31), 5, -7], { dtype }) : tensor(BigInt64Array.of(-(2n ** 63n), 5n, -7n));
      refused(() => min.remainder(-1), /integer overflow: the (int32|int64) minimum divided by -1/);
      refused(() => min.floorDivide(full([3], -1, { dtype })), /integer overflow/);
      assert.deepEqual(min.remainder(2).toArray(), [0, 1, 1], 'ordinary integer division still works');
    }
    // Narrower types are divided as int after C's promotions, so they wrap instead of trapping.
    assert.deepEqual(tensor([-128], { dtype: 'int8' }).floorDivide(-1).toArray(), [-128]);
    refused(() => zeros([]).indexSelect(0, tensor(new BigInt64Array(8))), /a 0-d tensor takes exactly one index, got 8/);
    refused(() => zeros([]).indexSelect(0, tensor(new BigInt64Array(0))), /got 0/);
    assert.deepEqual(tensor(5).indexSelect(0, tensor([0n])).toArray(), 5);
  });
});
