/**
 * The safetensors checkpoint format (https://github.com/huggingface/safetensors):
 *
 *     [u64 little-endian N] [N bytes of JSON header, space-padded] [data buffer]
 *
 * header = {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...},
 * offsets relative to the start of the data buffer, data row-major little-endian.
 *
 * Reading is as strict as the reference Rust reader (`safetensors/src/tensor.rs`, `Metadata::validate`): the
 * tensors, sorted by offsets, must tile the data buffer exactly: no gaps, no overlaps, no trailing bytes.
 * Writing lays tensors out in the order given and writes the header in that same order, `__metadata__` first,
 * compact JSON padded with spaces to a multiple of 8, as the reference writer does (it sorts tensors by
 * dtype then name first; we leave the order to the caller).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

/** The safetensors dtype names this reader and writer handle. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor as stored: `data` is exactly numel * itemsize little-endian bytes, row-major. */
export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsContents {
  /** The `__metadata__` map; `{}` when the file has none. */
  metadata: Record<string, string>;
  /** Tensors in data-buffer order (which is header order for files written by us or the reference writer). */
  tensors: Map<string, RawTensor>;
}

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** The reference reader refuses larger headers; a bigger N is a corrupt file, not a big model. */
const MAX_HEADER_BYTES = 100_000_000;

export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

// ---------------------------------------------------------------------------------------------------------
// Reading

/**
 * Parses a whole safetensors file. Tensor `data` are subarray VIEWS of `buf` (no copy): they alias the
 * caller's buffer and are generally not aligned, so read them through a DataView (as `decodeValues` does)
 * or copy before building typed arrays. Every error message starts with `source`, and names the tensor key
 * (or metadata key) at fault where there is one.
 */
export function parseSafetensors(buf: Uint8Array, source = '<buffer>'): SafetensorsContents {
  return parseSafetensorsFrom(buf.length, (from, to) => buf.subarray(from, to), source);
}

/**
 * parseSafetensors over `size` bytes that `read(from, to)` returns piece by piece: a file over Node's 2 GiB
 * buffer limit (a 0.6B-parameter float32 model is 2.4 GB) is read one tensor at a time.
 */
function parseSafetensorsFrom(size: number, read: (from: number, to: number) => Uint8Array, source: string): SafetensorsContents {
  function fail(msg: string): never {
    throw new Error(`safetensors ${source}: ${msg}`);
  }
  if (size < 8) fail(`${size} bytes is too short for the 8-byte header length`);
  const first = read(0, 8);
  const n = new DataView(first.buffer, first.byteOffset, first.byteLength).getBigUint64(0, true);
  if (n > BigInt(size - 8)) fail(`header length ${n} runs past the end of the ${size}-byte file`);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const dataStart = 8 + Number(n);
  const dataLen = size - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(read(8, dataStart)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) fail('header is not a JSON object');

  const metadata: Record<string, string> = {};
  const entries: { key: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, info] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (!isObject(info)) fail('__metadata__ is not a JSON object');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') fail(`__metadata__ key ${JSON.stringify(k)} has non-string value ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const at = `tensor ${JSON.stringify(key)}`;
    if (!isObject(info)) fail(`${at}: entry is not a JSON object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (!isDtype(dtype)) fail(`${at}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    const numel = numelOf(shape) ?? fail(`${at}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${at}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`${at}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) fail(`${at}: data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data buffer`);
    const nbytes = numel * DTYPE_SIZE[dtype];
    if (end - begin !== nbytes) {
      const span = `data_offsets [${begin}, ${end}] span ${end - begin}`;
      fail(`${at}: ${dtype} shape ${JSON.stringify(shape)} needs ${nbytes} bytes but ${span}`);
    }
    entries.push({ key, dtype, shape: shape as number[], begin, end });
  }

  // Sort by offsets, as the reference reader does: old writers ordered the header by name, and JSON.parse
  // moves integer-like keys ("0", "1") to the front, so header order alone is not the layout. (Stable sort.)
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  const tensors = new Map<string, RawTensor>();
  for (const { key, dtype, shape, begin, end } of entries) {
    const at = `tensor ${JSON.stringify(key)}: data_offsets [${begin}, ${end}]`;
    if (begin < cursor) fail(`${at} overlap tensor ${JSON.stringify(previous)}, which ends at ${cursor}`);
    if (begin > cursor) fail(`${at} leave a gap after byte ${cursor}; tensors must tile the data buffer`);
    tensors.set(key, { dtype, shape, data: read(dataStart + begin, dataStart + end) });
    cursor = end;
    previous = key;
  }
  if (cursor !== dataLen) fail(`${dataLen - cursor} bytes after the last tensor's data are not covered by any tensor`);
  return { metadata, tensors };
}

/** Files up to this size are read whole (tensor data are views of one buffer); larger ones tensor by tensor. */
export const WHOLE_FILE_LIMIT = 1 << 30;

/**
 * Reads and parses a file. Up to `wholeFileLimit` bytes (default WHOLE_FILE_LIMIT) the tensor data are views
 * of one buffer holding the whole file; above it each tensor is read into a buffer of its own, so files over
 * Node's 2 GiB buffer limit load (one tensor must still fit in one buffer).
 */
export function readSafetensorsFile(path: string, wholeFileLimit = WHOLE_FILE_LIMIT): SafetensorsContents {
  const size = statSync(path).size;
  if (size <= wholeFileLimit) {
    const b = readFileSync(path);
    return parseSafetensors(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), path);
  }
  const fd = openSync(path, 'r');
  try {
    return parseSafetensorsFrom(size, (from, to) => {
      const out = Buffer.allocUnsafe(to - from);
      for (let done = 0; done < out.length; ) {
        const got = readSync(fd, out, done, out.length - done, from + done);
        if (got === 0) throw new Error(`safetensors ${path}: file ended at byte ${from + done} while reading to ${to}`);
        done += got;
      }
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }, path);
  } finally {
    closeSync(fd);
  }
}

export interface SafetensorsIndexContents {
  /** The index's own `metadata` (e.g. `{"total_size": 123}`, numbers included); `{}` when absent. */
  metadata: Record<string, unknown>;
  /** All tensors of all shards, in `weight_map` order. */
  tensors: Map<string, RawTensor>;
}

/**
 * Reads a sharded checkpoint: `dir/model.safetensors.index.json` = `{"metadata": {...}, "weight_map":
 * {tensor: shard file}}` (Hugging Face's layout). Each shard must exist, hold every tensor the map assigns
 * to it, and hold no tensor the map places elsewhere or omits (a stale index is an error, not a guess).
 */
export function readSafetensorsIndex(dir: string): SafetensorsIndexContents {
  const indexPath = join(dir, SAFETENSORS_INDEX_FILE);
  function fail(msg: string): never {
    throw new Error(`safetensors index ${indexPath}: ${msg}`);
  }
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    fail(`cannot read (${(e as Error).message})`);
  }
  if (!isObject(index) || !isObject(index.weight_map)) fail('expected {"metadata": {...}, "weight_map": {tensor: file}}');
  const metadata = index.metadata ?? {};
  if (!isObject(metadata)) fail('"metadata" is not a JSON object');

  const placement = new Map<string, string>();
  const byShard = new Map<string, string[]>();
  for (const [name, file] of Object.entries(index.weight_map)) {
    // Shards live beside the index: refuse paths that would read elsewhere.
    if (typeof file !== 'string' || file === '' || isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
      fail(`tensor ${JSON.stringify(name)}: shard ${JSON.stringify(file)} is not a file name inside the checkpoint directory`);
    }
    placement.set(name, file);
    byShard.set(file, [...(byShard.get(file) ?? []), name]);
  }

  const shards = new Map<string, Map<string, RawTensor>>();
  for (const [file, names] of byShard) {
    const path = join(dir, file);
    if (!existsSync(path)) fail(`shard ${JSON.stringify(file)} (for tensor ${JSON.stringify(names[0])}) does not exist`);
    const { tensors } = readSafetensorsFile(path);
    for (const key of tensors.keys()) {
      const mapped = placement.get(key);
      if (mapped === file) continue;
      const where = mapped === undefined ? 'does not list' : `places in ${JSON.stringify(mapped)}`;
      fail(`shard ${JSON.stringify(file)} holds tensor ${JSON.stringify(key)}, which weight_map ${where}`);
    }
    shards.set(file, tensors);
  }

  const tensors = new Map<string, RawTensor>();
  for (const [name, file] of placement) {
    const t = shards.get(file)?.get(name);
    if (t === undefined) fail(`tensor ${JSON.stringify(name)} is not in shard ${JSON.stringify(file)}, where weight_map places it`);
    tensors.set(name, t);
  }
  return { metadata, tensors };
}

// ---------------------------------------------------------------------------------------------------------
// Writing

type TensorInput = Iterable<[string, RawTensor]> | Record<string, RawTensor>;

/** Serialises in the given tensor order (a Map or array keeps it; a Record uses its own key order). */
export function serializeSafetensors(tensors: TensorInput, metadata?: Record<string, string>): Uint8Array {
  const { head, datas } = prepare(tensors, metadata);
  const out = new Uint8Array(datas.reduce((n, d) => n + d.length, head.length));
  out.set(head);
  let at = head.length;
  for (const d of datas) {
    out.set(d, at);
    at += d.length;
  }
  return out;
}

/**
 * Writes atomically: streams to `${path}.tmp-<pid>-<random>`, fsyncs, then renames over `path`, so a
 * reader (or a crash) sees either the old file or the complete new one. Invalid input throws before any
 * file is created; on an I/O error the temp file is removed and the old file is left as it was.
 */
export function writeSafetensorsFile(path: string, tensors: TensorInput, metadata?: Record<string, string>): void {
  const { head, datas } = prepare(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    const fd = openSync(tmp, 'wx');
    try {
      for (const chunk of [head, ...datas]) {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Validates the tensors and builds length prefix + padded header; the data chunks follow it in order. */
function prepare(input: TensorInput, metadata?: Record<string, string>): { head: Uint8Array; datas: Uint8Array[] } {
  const list = isIterable(input) ? [...input] : Object.entries(input);
  // Built by hand rather than JSON.stringify(object): an object would move integer-like names to the front
  // and the header order would no longer match the data order.
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new TypeError(`safetensors metadata key ${JSON.stringify(k)}: value must be a string, got ${typeof v}`);
      }
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const [name, t] of list) {
    const at = `safetensors tensor ${JSON.stringify(name)}`;
    if (name === '__metadata__') throw new Error(`${at}: the name is reserved for file metadata`);
    if (seen.has(name)) throw new Error(`${at}: given twice`);
    seen.add(name);
    const problem = rawTensorProblem(t);
    if (problem !== undefined) throw new Error(`${at}: ${problem}`);
    const info = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += t.data.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8; // so the data buffer starts 8-byte aligned
  const head = new Uint8Array(8 + padded).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, datas: list.map(([, t]) => t.data) };
}

// ---------------------------------------------------------------------------------------------------------
// Element values

type Scalar = number | bigint | boolean;

interface Codec {
  read(v: DataView, at: number): Scalar;
  /** Throws on a value the dtype cannot hold (wrong type, non-integer, out of range). */
  write(v: DataView, at: number, x: Scalar): void;
}

const CODECS: Record<SafetensorsDtype, Codec> = {
  F64: { read: (v, at) => v.getFloat64(at, true), write: (v, at, x) => v.setFloat64(at, asNumber(x), true) },
  // ECMAScript's Float32 conversion rounds to nearest, ties to even.
  F32: { read: (v, at) => v.getFloat32(at, true), write: (v, at, x) => v.setFloat32(at, asNumber(x), true) },
  F16: {
    read: (v, at) => decodeMinifloat(v.getUint16(at, true), 5, 10),
    write: (v, at, x) => v.setUint16(at, encodeMinifloat(asNumber(x), 5, 10), true),
  },
  BF16: {
    read: (v, at) => decodeMinifloat(v.getUint16(at, true), 8, 7),
    write: (v, at, x) => v.setUint16(at, encodeMinifloat(asNumber(x), 8, 7), true),
  },
  I64: { read: (v, at) => v.getBigInt64(at, true), write: (v, at, x) => v.setBigInt64(at, asInt64(x), true) },
  I32: { read: (v, at) => v.getInt32(at, true), write: (v, at, x) => v.setInt32(at, asInt(x, -(2 ** 31), 2 ** 31 - 1), true) },
  I16: { read: (v, at) => v.getInt16(at, true), write: (v, at, x) => v.setInt16(at, asInt(x, -(2 ** 15), 2 ** 15 - 1), true) },
  I8: { read: (v, at) => v.getInt8(at), write: (v, at, x) => v.setInt8(at, asInt(x, -128, 127)) },
  U8: { read: (v, at) => v.getUint8(at), write: (v, at, x) => v.setUint8(at, asInt(x, 0, 255)) },
  BOOL: { read: (v, at) => v.getUint8(at) !== 0, write: (v, at, x) => v.setUint8(at, asBool(x) ? 1 : 0) },
};

/**
 * Element values in row-major order: numbers for floats (F16/BF16 exactly, subnormals, ±inf, NaN and -0
 * included) and for integers up to 32 bits, bigint for I64, boolean for BOOL.
 */
export function decodeValues(t: RawTensor): number[] | bigint[] | boolean[] {
  const problem = rawTensorProblem(t);
  if (problem !== undefined) throw new Error(`decodeValues: ${problem}`);
  const size = DTYPE_SIZE[t.dtype];
  const codec = CODECS[t.dtype];
  const v = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  // Each codec returns one kind of scalar, so the array is homogeneous.
  return Array.from({ length: t.data.length / size }, (_, i) => codec.read(v, i * size)) as number[] | bigint[] | boolean[];
}

/**
 * Builds a tensor from row-major values. Floats round to nearest, ties to even, straight from float64
 * (no double rounding through float32); integers must be exact and in range (I64 takes bigints or safe
 * integers); BOOL takes booleans.
 */
export function encodeValues(dtype: SafetensorsDtype, shape: readonly number[], values: ArrayLike<Scalar>): RawTensor {
  if (!isDtype(dtype)) throw new Error(`encodeValues: unknown dtype ${JSON.stringify(dtype)}`);
  const numel = numelOf(shape);
  if (numel === undefined) throw new Error(`encodeValues: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (values.length !== numel) {
    throw new Error(`encodeValues: shape ${JSON.stringify(shape)} has ${numel} elements but ${values.length} values were given`);
  }
  const size = DTYPE_SIZE[dtype];
  const data = new Uint8Array(numel * size);
  const v = new DataView(data.buffer);
  for (let i = 0; i < numel; i++) {
    try {
      CODECS[dtype].write(v, i * size, values[i] as Scalar);
    } catch (e) {
      throw new Error(`encodeValues(${dtype}): value ${i}: ${(e as Error).message}`, { cause: e });
    }
  }
  return { dtype, shape: [...shape], data };
}

/**
 * A binary float with `e` exponent and `m` mantissa bits (F16: 5, 10; BF16: 8, 7) → number. Exact: every
 * such value is a float64.
 */
function decodeMinifloat(bits: number, e: number, m: number): number {
  const sign = (bits >> (e + m)) & 1 ? -1 : 1;
  const exp = (bits >> m) & ((1 << e) - 1);
  const frac = bits & ((1 << m) - 1);
  const bias = (1 << (e - 1)) - 1;
  if (exp === (1 << e) - 1) return frac === 0 ? sign * Infinity : NaN;
  // Subnormal (exp 0): frac * 2^(1-bias-m); normal: (2^m + frac) * 2^(exp-bias-m). sign * 0 keeps -0.
  return sign * (exp === 0 ? frac : (1 << m) + frac) * 2 ** (Math.max(exp, 1) - bias - m);
}

/** number → bits of the `e`/`m` binary float, rounding to nearest, ties to even; NaN → canonical quiet NaN. */
function encodeMinifloat(x: number, e: number, m: number): number {
  const bias = (1 << (e - 1)) - 1;
  const signBit = x < 0 || Object.is(x, -0) ? 1 << (e + m) : 0;
  const infBits = ((1 << e) - 1) << m;
  if (Number.isNaN(x)) return infBits | (1 << (m - 1));
  const a = Math.abs(x);
  if (a === Infinity) return signBit | infBits;
  const minExp = 1 - bias;
  // Subnormal: count units of 2^(minExp-m). Rounding up to 2^m gives exactly the smallest normal's bits.
  if (a < 2 ** minExp) return signBit | roundHalfEven(a * 2 ** (m - minExp));
  let exp = Math.floor(Math.log2(a)); // log2 may be off by one next to a power of two: fix it exactly
  if (2 ** exp > a) exp--;
  else if (2 ** (exp + 1) <= a) exp++;
  let frac = roundHalfEven(a * 2 ** (m - exp)); // in [2^m, 2^(m+1)]; the scaling is exact
  if (frac === 2 ** (m + 1)) {
    frac = 2 ** m;
    exp++;
  }
  if (exp > bias) return signBit | infBits; // overflow rounds to infinity, as IEEE 754 does
  return signBit | ((exp + bias) << m) | (frac - 2 ** m);
}

/** Round half to even for 0 <= x < 2^52 (where x - floor(x) is exact). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

function asNumber(x: Scalar): number {
  if (typeof x !== 'number') throw new TypeError(`expected a number, got ${typeof x}`);
  return x;
}

function asInt(x: Scalar, lo: number, hi: number): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < lo || x > hi) {
    throw new RangeError(`${String(x)} is not an integer in [${lo}, ${hi}]`);
  }
  return x;
}

function asInt64(x: Scalar): bigint {
  if (typeof x === 'number' && Number.isSafeInteger(x)) return BigInt(x);
  if (typeof x === 'bigint' && x >= -(2n ** 63n) && x < 2n ** 63n) return x;
  throw new RangeError(`${String(x)} is not a bigint in the int64 range or a safe integer`);
}

function asBool(x: Scalar): boolean {
  if (typeof x !== 'boolean') throw new TypeError(`expected a boolean, got ${typeof x}`);
  return x;
}

// ---------------------------------------------------------------------------------------------------------
// Shared checks

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isIterable(x: TensorInput): x is Iterable<[string, RawTensor]> {
  return typeof (x as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function';
}

function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === 'string' && Object.hasOwn(DTYPE_SIZE, x);
}

/** Element count, or undefined unless `shape` is an array of non-negative safe integers with a safe product. */
function numelOf(shape: unknown): number | undefined {
  if (!Array.isArray(shape)) return undefined;
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

/** Why `t` is not a well-formed RawTensor, or undefined if it is. */
function rawTensorProblem(t: RawTensor): string | undefined {
  if (!isDtype(t.dtype)) return `unknown dtype ${JSON.stringify(t.dtype)}`;
  const numel = numelOf(t.shape);
  if (numel === undefined) return `shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`;
  if (!(t.data instanceof Uint8Array)) return 'data is not a Uint8Array';
  const want = numel * DTYPE_SIZE[t.dtype];
  if (t.data.length !== want) return `${t.dtype} shape ${JSON.stringify(t.shape)} needs ${want} bytes, data has ${t.data.length}`;
  return undefined;
}
