/** Creating tensors: from JS data, constant fills, ranges and random draws. */
import { type AnyTypedArray, type Device, type DType, dtypeCode, dtypeOfTypedArray, ITEM_SIZE } from './dtype.js';
import { native } from './native.js';
import { type NestedArray, Tensor } from './tensor.js';

/** A new tensor's dtype (float32 by default) and device (cpu by default). */
export interface CreateOptions {
  dtype?: DType;
  device?: Device;
}

/** A seeded random stream of its own (libtorch's CPU generator: Mersenne Twister, like torch.Generator). */
export class Generator {
  private id: number;
  constructor(seed: number, device: Device = 'cpu') {
    this.id = native.generatorNew(seed, device);
  }
  /** @internal */
  get handle(): number {
    if (this.id < 0) throw new Error('generator used after dispose()');
    return this.id;
  }
  /** The full state (a uint8 tensor): save it with a checkpoint to resume the exact stream. */
  getState(): Tensor {
    return new Tensor(native.generatorGetState(this.handle));
  }
  setState(state: Tensor): void {
    native.generatorSetState(this.handle, state.handle);
  }
  dispose(): void {
    if (this.id >= 0) native.generatorFree(this.id);
    this.id = -1;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Seeds libtorch's default generator (the stream used when no Generator is passed). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

/** The default generator's state, and restoring it. */
export function getRngState(): Tensor {
  return new Tensor(native.generatorGetState(-1));
}
/** Restores libtorch's CPU generator to a state from getRngState. */
export function setRngState(state: Tensor): void {
  native.generatorSetState(-1, state.handle);
}

/** A random draw's dtype, device and generator. */
export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

function flattenNested(data: NestedArray<number | boolean | bigint>, shape: number[], out: (number | boolean | bigint)[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length) throw new Error(`tensor(): ragged nested array at depth ${depth} (length ${data.length}, expected ${shape[depth]})`);
    for (const x of data) flattenNested(x, shape, out, depth + 1);
  } else {
    if (shape.length !== depth) throw new Error(`tensor(): ragged nested array: a scalar at depth ${depth} where arrays of length ${shape[depth]} were expected`);
    out.push(data);
  }
}

function typedFor(dtype: DType, values: readonly (number | boolean | bigint)[]): AnyTypedArray {
  const n = values.length;
  switch (dtype) {
    case 'float64': return Float64Array.from(values, Number);
    case 'int64': return BigInt64Array.from(values, (v) => (typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)))));
    case 'int32': return Int32Array.from(values, Number);
    case 'int16': return Int16Array.from(values, Number);
    case 'int8': return Int8Array.from(values, Number);
    case 'uint8': return Uint8Array.from(values, Number);
    case 'bool': return Uint8Array.from(values, (v) => (v ? 1 : 0));
    default: {
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = Number(values[i]);
      return f;
    }
  }
}

/**
 * A tensor from nested arrays or a typed array (always copied). Without `dtype`: a typed array keeps
 * its own type; nested numbers become float32 (JS cannot tell 1 from 1.0), booleans bool, bigints int64.
 * `shape` reshapes a flat typed array.
 */
export function tensor(data: NestedArray<number | boolean | bigint> | AnyTypedArray, opts: CreateOptions & { shape?: readonly number[] } = {}): Tensor {
  // Validate first: an unknown dtype would otherwise surface as "NaN elements do not fill shape".
  if (opts.dtype !== undefined) dtypeCode(opts.dtype);
  let flat: AnyTypedArray;
  let shape: number[];
  let natural: DType;
  if (ArrayBuffer.isView(data)) {
    const d = dtypeOfTypedArray(data);
    if (!d && !opts.dtype) throw new Error('tensor(): a Uint16Array needs an explicit dtype (bfloat16 or float16)');
    natural = d ?? opts.dtype!;
    flat = data;
    shape = opts.shape ? [...opts.shape] : [data.length];
  } else {
    const values: (number | boolean | bigint)[] = [];
    shape = [];
    flattenNested(data, shape, values, 0);
    const first = values[0];
    natural = typeof first === 'boolean' ? 'bool' : typeof first === 'bigint' ? 'int64' : 'float32';
    const target = opts.dtype ?? natural;
    // 16-bit floats are built in float32 and converted natively (correct rounding, no JS codec).
    natural = target === 'bfloat16' || target === 'float16' ? 'float32' : target;
    flat = typedFor(natural, values);
    if (opts.shape) shape = [...opts.shape];
  }
  const n = flat.byteLength / ITEM_SIZE[natural];
  const want = shape.reduce((a, b) => a * b, 1);
  if (n !== want) throw new Error(`tensor(): ${n} elements do not fill shape [${shape.join(', ')}]`);
  const t = new Tensor(native.fromBuffer(flat, dtypeCode(natural), shape));
  if ((opts.dtype && opts.dtype !== natural) || (opts.device && opts.device !== 'cpu')) {
    const c = t.to({ dtype: opts.dtype ?? natural, device: opts.device ?? 'cpu' });
    t.dispose();
    return c;
  }
  return t;
}

/** A tensor over raw little-endian bytes (copied): the inverse of `toBytes()`, used by safetensors. */
export function fromBytes(bytes: Uint8Array, dtype: DType, shape: readonly number[]): Tensor {
  return new Tensor(native.fromBuffer(bytes, dtypeCode(dtype), [...shape]));
}

const dt = (o: CreateOptions) => dtypeCode(o.dtype ?? 'float32');
const dev = (o: CreateOptions) => o.device ?? 'cpu';

/** A tensor of zeros. */
export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return new Tensor(native.zeros([...shape], dt(opts), dev(opts)));
}
/** Uninitialised memory (torch.empty): for buffers every element of which is written before it is read. */
export function empty(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return new Tensor(native.empty([...shape], dt(opts), dev(opts)));
}
/** A tensor of ones. */
export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return new Tensor(native.full([...shape], 1, dt(opts), dev(opts)));
}
/** A tensor filled with one value. */
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  return new Tensor(native.full([...shape], value, dt(opts), dev(opts)));
}
/** Zeros with another tensor's shape (and dtype and device, unless given). */
export function zerosLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return zeros(t.shape, { dtype: opts.dtype ?? t.dtype, device: opts.device ?? t.device });
}
/** Ones with another tensor's shape (and dtype and device, unless given). */
export function onesLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  return ones(t.shape, { dtype: opts.dtype ?? t.dtype, device: opts.device ?? t.device });
}
/** [start, end) in steps; `arange(n)` is 0..n-1. Defaults to int64, as PyTorch does for integers. */
export function arange(startOrEnd: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  const ints = Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step);
  return new Tensor(native.arange(s, e, step, dtypeCode(opts.dtype ?? (ints ? 'int64' : 'float32')), dev(opts)));
}
/** `steps` evenly spaced values from start to end, both included. */
export function linspace(start: number, end: number, steps: number, opts: CreateOptions = {}): Tensor {
  return new Tensor(native.linspace(start, end, steps, dt(opts), dev(opts)));
}
/** The n × m identity matrix. */
export function eye(n: number, m = n, opts: CreateOptions = {}): Tensor {
  return new Tensor(native.eye(n, m, dt(opts), dev(opts)));
}
const gen = (o: RandomOptions) => (o.generator ? o.generator.handle : -1);
/** Uniform on [0, 1). */
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return new Tensor(native.rand([...shape], dt(opts), dev(opts), gen(opts)));
}
/** Standard normal. */
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return new Tensor(native.randn([...shape], dt(opts), dev(opts), gen(opts)));
}
/** Integers uniform on [low, high); int64 by default. */
export function randint(low: number, high: number, shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return new Tensor(native.randint(low, high, [...shape], dtypeCode(opts.dtype ?? 'int64'), dev(opts), gen(opts)));
}
/** Draws `n` indices per row of `probs` (rows need not sum to 1). */
export function multinomial(probs: Tensor, n: number, opts: { replacement?: boolean; generator?: Generator } = {}): Tensor {
  return new Tensor(native.multinomial(probs.handle, n, opts.replacement ?? false, opts.generator ? opts.generator.handle : -1));
}
/** Fills `t` in place from U(low, high), outside autograd (parameter initialisation). */
export function uniform_(t: Tensor, low: number, high: number, generator?: Generator): Tensor {
  native.uniform_(t.handle, low, high, generator ? generator.handle : -1);
  return t;
}
/** Fills `t` in place from N(mean, std²), outside autograd. */
export function normal_(t: Tensor, mean: number, std: number, generator?: Generator): Tensor {
  native.normal_(t.handle, mean, std, generator ? generator.handle : -1);
  return t;
}
