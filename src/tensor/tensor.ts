/**
 * The Tensor facade over native handles. Methods follow PyTorch's names and argument conventions
 * (negative dims, keepdim, broadcasting). Every method returns a new tensor tracked by the current
 * scope (see lifetime.ts); in-place methods end in `_` and return `this`.
 */
import { type AnyTypedArray, type Device, type DType, DTYPES, dtypeCode, isDType, ITEM_SIZE, viewAs } from './dtype.js';
import { register, track, untrack, type Tracked } from './lifetime.js';
import { native } from './native.js';

function codes(names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((n, i) => [n, i]));
}
const U = codes(native.unaryOps);
const B = codes(native.binaryOps);
const R = codes(native.reduceOps);

export type Scalar = number;
/** An operand: a tensor, or a number broadcast as one. */
export type TensorOrScalar = Tensor | number;
/** One dimension or several. */
export type Dims = number | readonly number[];

/** A nested array of numbers or booleans, as `toArray()` returns and `tensor()` accepts. */
export type NestedArray<T> = T | NestedArray<T>[];

/** The result of max/min/topk/sort along a dimension. */
export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

function dimsArg(d: Dims | undefined): number[] | null {
  if (d === undefined) return null;
  return typeof d === 'number' ? [d] : [...d];
}

function shapeArg(args: readonly (number | readonly number[])[]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as number[])] : (args as number[]);
}

/** A libtorch tensor behind a native handle, with PyTorch-named methods; its memory is freed by dispose(), scope() or, as a backstop, the garbage collector. */
export class Tensor implements Tracked {
  /** @internal native handle, -1 once disposed */
  _h: number;
  /** @internal held by the FinalizationRegistry */
  _reg = false;
  private _meta: [number, string, ...number[]] | undefined = undefined;

  /** @internal use the creation functions (tensor, zeros, …) instead. */
  constructor(handle: number) {
    this._h = handle;
    track(this);
  }

  /** The native handle; throws on a disposed tensor so a stale handle never reaches libtorch. */
  get handle(): number {
    if (this._h < 0) throw new Error('tensor used after dispose()');
    return this._h;
  }

  // ---- metadata ------------------------------------------------------------------------------
  private meta(): [number, string, ...number[]] {
    return (this._meta ??= native.meta(this.handle));
  }
  get shape(): number[] {
    return this.meta().slice(2) as number[];
  }
  get dtype(): DType {
    return DTYPES[this.meta()[0]]!;
  }
  get device(): Device {
    return this.meta()[1] as Device;
  }
  get ndim(): number {
    return this.meta().length - 2;
  }
  get numel(): number {
    const m = this.meta();
    let n = 1;
    for (let i = 2; i < m.length; i++) n *= m[i] as number;
    return n;
  }
  /** Size of one dimension (negative counts from the end). */
  size(dim: number): number {
    const nd = this.ndim;
    const d = dim < 0 ? dim + nd : dim;
    if (d < 0 || d >= nd) throw new Error(`size(${dim}): dimension out of range for a ${nd}-d tensor`);
    return this.meta()[d + 2] as number;
  }
  get strides(): number[] {
    return native.strides(this.handle);
  }
  get isDisposed(): boolean {
    return this._h < 0;
  }
  toString(): string {
    return this._h < 0 ? 'Tensor(disposed)' : `Tensor(${this.dtype}[${this.shape.join(',')}]${this.device === 'cpu' ? '' : '@' + this.device})`;
  }

  // ---- lifetime ------------------------------------------------------------------------------
  /** Frees the native tensor now. Idempotent. */
  dispose(): void {
    if (this._h < 0) return;
    untrack(this);
    native.free(this._h);
    this._h = -1;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Replaces this tensor's contents with `source`'s (PyTorch's `param.data = …`): the object keeps its
   * identity, so modules holding it see the new data, dtype or device. `source` is consumed.
   * @internal used by Module.to() and checkpoint loading.
   */
  _setData(source: Tensor): void {
    const h = source.handle;
    untrack(source);
    source._h = -1;
    native.free(this.handle);
    this._h = h;
    this._meta = undefined;
    // The registry holds the old handle number: register again with the new one.
    if (this._reg) {
      untrack(this);
      register(this);
    }
  }

  // ---- read-back -----------------------------------------------------------------------------
  /** A fresh typed array with the elements in row-major order (bfloat16/float16: raw 16-bit patterns). */
  data(): AnyTypedArray {
    return viewAs(this.dtype, native.toBuffer(this.handle));
  }
  /** The elements' little-endian bytes, row-major (for serialisation). */
  toBytes(): Uint8Array {
    return new Uint8Array(native.toBuffer(this.handle));
  }
  /** Nested arrays of numbers (int64 converted to number; bool to boolean; 16-bit floats decoded). */
  toArray(): NestedArray<number | boolean> {
    const dt = this.dtype;
    let flat: ArrayLike<number | bigint | boolean>;
    if (dt === 'bfloat16' || dt === 'float16') {
      const f = native.to(this.handle, dtypeCode('float32'), '');
      try {
        flat = new Float32Array(native.toBuffer(f));
      } finally {
        native.free(f);
      }
    } else flat = this.data();
    const conv = dt === 'int64' ? (x: unknown) => Number(x as bigint) : dt === 'bool' ? (x: unknown) => x !== 0 : (x: unknown) => x as number;
    const shape = this.shape;
    if (shape.length === 0) return conv(flat[0]) as number | boolean;
    let pos = 0;
    const build = (d: number): NestedArray<number | boolean> => {
      const out: NestedArray<number | boolean>[] = new Array(shape[d]);
      for (let i = 0; i < shape[d]!; i++) out[i] = d === shape.length - 1 ? (conv(flat[pos++]) as number | boolean) : build(d + 1);
      return out;
    };
    return build(0);
  }
  /** The single element as a number (bool → 0/1). */
  item(): number {
    return native.item(this.handle);
  }
  /** [min, max] over every element, as numbers, in one native call (throws on an empty tensor). */
  extrema(): [number, number] {
    return native.extrema(this.handle);
  }

  // ---- conversion ------------------------------------------------------------------------------
  /** Converts dtype and/or device: `to('float64')`, `to('cuda')`, `to({ device, dtype })`. */
  to(target: DType | Device | { device?: Device; dtype?: DType }): Tensor {
    let dtype: DType | undefined;
    let device: string = '';
    if (typeof target === 'string') {
      if (isDType(target)) dtype = target;
      else if (/^(cpu|cuda(:\d+)?)$/.test(target)) device = target;
      // Without this, an unknown dtype string reached libtorch as a device ("Invalid device string").
      else throw new Error(`to(): '${String(target)}' is neither a dtype (${DTYPES.join(', ')}) nor a device (cpu, cuda, cuda:N)`);
    } else {
      dtype = target.dtype;
      device = target.device ?? '';
    }
    return new Tensor(native.to(this.handle, dtype === undefined ? -1 : dtypeCode(dtype), device));
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  bool(): Tensor {
    return this.to('bool');
  }

  // ---- elementwise ----------------------------------------------------------------------------
  private un(op: number): Tensor {
    return new Tensor(native.unary(op, this.handle));
  }
  private bin(op: number, o: TensorOrScalar): Tensor {
    return new Tensor(typeof o === 'number' ? native.binaryScalar(op, this.handle, o, false) : native.binary(op, this.handle, o.handle));
  }
  add(o: TensorOrScalar): Tensor { return this.bin(B.add!, o); }
  sub(o: TensorOrScalar): Tensor { return this.bin(B.sub!, o); }
  mul(o: TensorOrScalar): Tensor { return this.bin(B.mul!, o); }
  div(o: TensorOrScalar): Tensor { return this.bin(B.div!, o); }
  pow(o: TensorOrScalar): Tensor { return this.bin(B.pow!, o); }
  remainder(o: TensorOrScalar): Tensor { return this.bin(B.remainder!, o); }
  floorDivide(o: TensorOrScalar): Tensor { return this.bin(B.floorDivide!, o); }
  maximum(o: TensorOrScalar): Tensor { return this.bin(B.maximum!, o); }
  minimum(o: TensorOrScalar): Tensor { return this.bin(B.minimum!, o); }
  /** s − this */
  rsub(s: number): Tensor { return new Tensor(native.binaryScalar(B.sub!, this.handle, s, true)); }
  /** s / this */
  rdiv(s: number): Tensor { return new Tensor(native.binaryScalar(B.div!, this.handle, s, true)); }
  /** s ** this */
  rpow(s: number): Tensor { return new Tensor(native.binaryScalar(B.pow!, this.handle, s, true)); }
  eq(o: TensorOrScalar): Tensor { return this.bin(B.eq!, o); }
  ne(o: TensorOrScalar): Tensor { return this.bin(B.ne!, o); }
  lt(o: TensorOrScalar): Tensor { return this.bin(B.lt!, o); }
  le(o: TensorOrScalar): Tensor { return this.bin(B.le!, o); }
  gt(o: TensorOrScalar): Tensor { return this.bin(B.gt!, o); }
  ge(o: TensorOrScalar): Tensor { return this.bin(B.ge!, o); }
  logicalAnd(o: Tensor): Tensor { return this.bin(B.logicalAnd!, o); }
  logicalOr(o: Tensor): Tensor { return this.bin(B.logicalOr!, o); }
  logicalNot(): Tensor { return this.un(U.logicalNot!); }
  matmul(o: Tensor): Tensor { return this.bin(B.matmul!, o); }
  bmm(o: Tensor): Tensor { return this.bin(B.bmm!, o); }

  neg(): Tensor { return this.un(U.neg!); }
  exp(): Tensor { return this.un(U.exp!); }
  log(): Tensor { return this.un(U.log!); }
  log1p(): Tensor { return this.un(U.log1p!); }
  sqrt(): Tensor { return this.un(U.sqrt!); }
  rsqrt(): Tensor { return this.un(U.rsqrt!); }
  abs(): Tensor { return this.un(U.abs!); }
  sign(): Tensor { return this.un(U.sign!); }
  tanh(): Tensor { return this.un(U.tanh!); }
  sigmoid(): Tensor { return this.un(U.sigmoid!); }
  relu(): Tensor { return this.un(U.relu!); }
  /** GELU; `approximate: 'tanh'` is GPT-2's gelu_new. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor { return this.un(approximate === 'tanh' ? U.geluTanh! : U.gelu!); }
  silu(): Tensor { return this.un(U.silu!); }
  softplus(): Tensor { return this.un(U.softplus!); }
  logSigmoid(): Tensor { return this.un(U.logSigmoid!); }
  floor(): Tensor { return this.un(U.floor!); }
  ceil(): Tensor { return this.un(U.ceil!); }
  round(): Tensor { return this.un(U.round!); }
  sin(): Tensor { return this.un(U.sin!); }
  cos(): Tensor { return this.un(U.cos!); }
  erf(): Tensor { return this.un(U.erf!); }
  reciprocal(): Tensor { return this.un(U.reciprocal!); }
  square(): Tensor { return this.un(U.square!); }
  isnan(): Tensor { return this.un(U.isnan!); }
  isfinite(): Tensor { return this.un(U.isfinite!); }
  contiguous(): Tensor { return this.un(U.contiguous!); }
  clone(): Tensor { return this.un(U.clone!); }
  /** A tensor sharing storage, cut from the autograd graph. */
  detach(): Tensor { return this.un(U.detach!); }
  /** Clamps to [min, max]; pass null (or omit) for an open side. */
  clamp(min: number | null = null, max: number | null = null): Tensor {
    return new Tensor(native.clamp(this.handle, min, max));
  }
  /** Where `mask` is true, `value`; elsewhere this tensor's element. */
  maskedFill(mask: Tensor, value: number): Tensor {
    return new Tensor(native.maskedFill(this.handle, mask.handle, value));
  }

  // ---- reductions ------------------------------------------------------------------------------
  private red(op: number, dim: Dims | undefined, keepdim: boolean): Tensor {
    return new Tensor(native.reduce(op, this.handle, dimsArg(dim), keepdim));
  }
  sum(dim?: Dims, keepdim = false): Tensor { return this.red(R.sum!, dim, keepdim); }
  mean(dim?: Dims, keepdim = false): Tensor { return this.red(R.mean!, dim, keepdim); }
  prod(dim?: number, keepdim = false): Tensor { return this.red(R.prod!, dim, keepdim); }
  logsumexp(dim: Dims, keepdim = false): Tensor { return this.red(R.logsumexp!, dim, keepdim); }
  amax(dim?: Dims, keepdim = false): Tensor { return this.red(R.amax!, dim, keepdim); }
  amin(dim?: Dims, keepdim = false): Tensor { return this.red(R.amin!, dim, keepdim); }
  all(dim?: Dims, keepdim = false): Tensor { return this.red(R.all!, dim, keepdim); }
  any(dim?: Dims, keepdim = false): Tensor { return this.red(R.any!, dim, keepdim); }
  /** Variance with Bessel's correction by default (`correction: 0` for the population variance). */
  var(dim?: Dims, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.varStd(false, this.handle, dimsArg(dim), opts.correction ?? 1, opts.keepdim ?? false));
  }
  std(dim?: Dims, opts: { correction?: number; keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.varStd(true, this.handle, dimsArg(dim), opts.correction ?? 1, opts.keepdim ?? false));
  }
  /** `max()` is the largest element; `max(dim)` gives values and indices along dim. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ValuesIndices;
  max(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return this.amax();
    const [v, i] = native.maxMin(false, this.handle, dim, keepdim);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ValuesIndices;
  min(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return this.amin();
    const [v, i] = native.maxMin(true, this.handle, dim, keepdim);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  /** Index of the largest element (over the flattened tensor when dim is omitted); the first on ties. */
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argMaxMin(false, this.handle, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argMaxMin(true, this.handle, dim ?? null, keepdim));
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.handle, dim));
  }
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(false, this.handle, dim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.softmax(true, this.handle, dim));
  }
  topk(k: number, opts: { dim?: number; largest?: boolean; sorted?: boolean } = {}): ValuesIndices {
    const [v, i] = native.topk(this.handle, k, opts.dim ?? -1, opts.largest ?? true, opts.sorted ?? true);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  sort(opts: { dim?: number; descending?: boolean; stable?: boolean } = {}): ValuesIndices {
    const [v, i] = native.sort(this.handle, opts.dim ?? -1, opts.descending ?? false, opts.stable ?? false);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }

  // ---- shape -----------------------------------------------------------------------------------
  /** `reshape(2, 3)` or `reshape([2, 3])`; -1 infers one dimension. */
  reshape(...shape: (number | readonly number[])[]): Tensor {
    return new Tensor(native.reshape(this.handle, shapeArg(shape)));
  }
  /** Like reshape, but never copies: an error when the strides do not allow it. */
  view(...shape: (number | readonly number[])[]): Tensor {
    return new Tensor(native.view(this.handle, shapeArg(shape)));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.handle, startDim, endDim));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, dim));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.handle, dim0, dim1));
  }
  /** Matrix transpose of the last two dims. */
  get T(): Tensor {
    return this.transpose(-2, -1);
  }
  permute(...dims: (number | readonly number[])[]): Tensor {
    return new Tensor(native.permute(this.handle, shapeArg(dims)));
  }
  /** Broadcasts size-1 dims to `shape` without copying (-1 keeps a dim). */
  expand(...shape: (number | readonly number[])[]): Tensor {
    return new Tensor(native.expand(this.handle, shapeArg(shape)));
  }
  repeat(...reps: (number | readonly number[])[]): Tensor {
    return new Tensor(native.repeat(this.handle, shapeArg(reps)));
  }
  flip(dims: Dims): Tensor {
    return new Tensor(native.flip(this.handle, dimsArg(dims)!));
  }

  // ---- indexing ----------------------------------------------------------------------------------
  /** Python's `t[start:end:step]` along `dim` (a view; out-of-range bounds clamp as in Python). */
  slice(dim: number, start = 0, end = Number.MAX_SAFE_INTEGER, step = 1): Tensor {
    return new Tensor(native.slice(this.handle, dim, start, end, step));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.handle, dim, start, length));
  }
  /** `t[..., index, ...]` at `dim`, removing that dimension. */
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.handle, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.handle, dim, index.handle));
  }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(native.scatter(this.handle, dim, index.handle, src.handle, false));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(native.scatter(this.handle, dim, index.handle, src.handle, true));
  }
  /** Advanced indexing `t[i0, i1, …]` with integer or boolean tensors; null keeps a dimension whole. */
  index(...indices: (Tensor | null)[]): Tensor {
    if (indices.length === 0) throw new Error('index() needs at least one index (a tensor, or null for a whole dimension)');
    return new Tensor(native.index(this.handle, indices.map((t) => (t === null ? -1 : t.handle))));
  }
  /** Splits into pieces of `size` (the last may be smaller), or of the listed sizes. */
  split(size: number | readonly number[], dim = 0): Tensor[] {
    return native.split(this.handle, typeof size === 'number' ? size : [...size], dim).map((h) => new Tensor(h));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return native.chunk(this.handle, chunks, dim).map((h) => new Tensor(h));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(native.triangle(true, this.handle, diagonal));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(native.triangle(false, this.handle, diagonal));
  }

  // ---- autograd ----------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(on: boolean) {
    native.setRequiresGrad(this.handle, on);
  }
  /** Sets requiresGrad and returns this, for chaining. */
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this.handle, on);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient (a new tensor sharing its storage), or null before any backward. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g < 0 ? null : new Tensor(g);
  }
  /** Drops the gradient, so the next backward starts from nothing (PyTorch's set_to_none). */
  zeroGrad(): void {
    native.zeroGrad(this.handle);
  }
  /** Keeps .grad for a non-leaf tensor after backward. */
  retainGrad(): this {
    native.retainGrad(this.handle);
    return this;
  }
  /** Backpropagates; gradients accumulate into leaves' .grad across calls, as in PyTorch. */
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    native.backward(this.handle, gradient ? gradient.handle : -1, opts.retainGraph ?? false);
  }

  // ---- in place (outside autograd: loading weights, manual updates) --------------------------------
  copy_(src: Tensor): this {
    native.copy_(this.handle, src.handle);
    return this;
  }
  fill_(value: number): this {
    native.fill_(this.handle, value);
    return this;
  }
  zero_(): this {
    return this.fill_(0);
  }
  /** this += alpha · other */
  add_(other: Tensor, alpha = 1): this {
    native.addScaled_(this.handle, other.handle, alpha);
    return this;
  }
  mul_(s: number): this {
    native.mulScalar_(this.handle, s);
    return this;
  }
}

/** Bytes a tensor of this dtype and shape occupies. */
export function byteSize(dtype: DType, shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[dtype];
}
