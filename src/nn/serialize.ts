/** Tensors to and from safetensors files (the format itself, pure TypeScript, is in safetensors.ts). */
import { type DType, fromBytes, type Tensor } from '../tensor/index.js';
import { type RawTensor, readSafetensorsFile, type SafetensorsDtype, writeSafetensorsFile } from './safetensors.js';

const TO_ST: Record<DType, SafetensorsDtype> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64',
  int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL',
};
const FROM_ST = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k])) as Record<SafetensorsDtype, DType>;

/** A tensor's bytes, dtype and shape, copied to JavaScript (for safetensors). */
export function toRaw(t: Tensor): RawTensor {
  return { dtype: TO_ST[t.dtype], shape: t.shape, data: t.toBytes() };
}

/** A tensor from raw bytes, dtype and shape (from safetensors). */
export function fromRaw(r: RawTensor): Tensor {
  // fromBytes copies, so the tensor does not alias the file buffer.
  return fromBytes(r.data, FROM_ST[r.dtype], r.shape);
}

/** Reads every tensor of a safetensors file, in file order, with its `__metadata__`. */
export function loadTensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = readSafetensorsFile(path);
  const out = new Map<string, Tensor>();
  for (const [name, raw] of tensors) out.set(name, fromRaw(raw));
  return { tensors: out, metadata };
}

/** Writes tensors (in the given order) atomically: temp file, fsync, rename. */
export function saveTensors(path: string, tensors: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>): void {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  writeSafetensorsFile(path, entries.map(([k, t]) => [k, toRaw(t)] as [string, RawTensor]), metadata);
}
