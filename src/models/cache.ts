/**
 * A preallocated key/value cache for incremental decoding: per layer, K and V of shape
 * (B, nkv, maxLen, hs). Each forward writes its new keys at [length, length + T) in place and attends
 * over [0, length + T); nothing is concatenated or copied per step (the plain-PyTorch loop in
 * shared/FINDINGS.md loses its time to exactly those copies). Batches are left-padded, so every sequence
 * writes the same slot at each step.
 */
import { type DType, type Device, keep, type Tensor, zeros } from '../tensor/index.js';

export class KVCache {
  readonly k: Tensor[];
  readonly v: Tensor[];
  /** Positions filled so far (the same for every sequence in the batch). */
  length = 0;
  constructor(layers: number, readonly batch: number, kvHeads: number, readonly maxLen: number, headDim: number, opts: { dtype?: DType; device?: Device } = {}) {
    const shape = [batch, kvHeads, maxLen, headDim];
    this.k = Array.from({ length: layers }, () => keep(zeros(shape, opts)));
    this.v = Array.from({ length: layers }, () => keep(zeros(shape, opts)));
  }
  /**
   * Writes layer `layer`'s new keys and values (B, nkv, T, hs) at the current length and returns views
   * of everything cached so far, (B, nkv, length + T, hs). `advance(T)` moves the length once all layers ran.
   */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const t = k.size(2);
    const end = this.length + t;
    if (end > this.maxLen) throw new Error(`KV cache overflow: ${end} positions, capacity ${this.maxLen}`);
    // Written in place and never differentiated: the cache is for generation (see ForwardOptions.cache).
    this.k[layer]!.narrow(2, this.length, t).copy_(k);
    this.v[layer]!.narrow(2, this.length, t).copy_(v);
    return { k: this.k[layer]!.narrow(2, 0, end), v: this.v[layer]!.narrow(2, 0, end) };
  }
  advance(t: number): void {
    this.length += t;
  }
  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}
