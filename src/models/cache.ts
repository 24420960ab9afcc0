/**
 * The key/value cache for incremental decoding: per layer, K and V of shape (B, nkv, capacity, hs).
 * Each forward writes its new keys at [length, length + T) in place and attends over [0, length + T);
 * nothing is concatenated per step (a plain-PyTorch loop that concatenates, as measured, loses its time to
 * exactly those copies). Batches are left-padded, so every sequence writes the same slot at each step.
 *
 * The capacity grows in steps of GROW_BY positions (up to `maxLen`), copying what is cached, instead of
 * being allocated at maxLen up front. A decode step reads every layer's cache once, as one run of rows
 * per (sequence, kv head); with room for maxLen rows those runs sit apart by the unfilled rest, and the
 * fused attention loop ran at a third of the memory bandwidth it reaches on packed runs (stories260K at
 * batch 256: ~2.5× slower per call). Growing in small steps keeps the runs nearly packed; the copies cost
 * about 1/GROW_BY of the reads. The memory is left uninitialised: attention only reads [0, length + T),
 * all of it written (left padding included: the pad positions' keys are computed like any other).
 */
import { type DType, type Device, empty, keep, type Tensor } from '../tensor/index.js';

export const GROW_BY = 16;

/** The key/value cache of autoregressive decoding, per layer, grown in steps of GROW_BY positions. */
export class KVCache {
  readonly k: Tensor[];
  readonly v: Tensor[];
  /** Positions filled so far (the same for every sequence in the batch). */
  length = 0;
  private readonly shape: number[];
  private readonly opts: { dtype?: DType; device?: Device };
  constructor(layers: number, readonly batch: number, kvHeads: number, readonly maxLen: number, headDim: number, opts: { dtype?: DType; device?: Device } = {}) {
    this.shape = [batch, kvHeads, Math.min(maxLen, GROW_BY), headDim];
    this.opts = opts;
    this.k = Array.from({ length: layers }, () => keep(empty(this.shape, opts)));
    this.v = Array.from({ length: layers }, () => keep(empty(this.shape, opts)));
  }
  /**
   * Writes layer `layer`'s new keys and values (B, nkv, T, hs) at the current length and returns views
   * of everything cached so far, (B, nkv, length + T, hs). `advance(T)` moves the length once all layers ran.
   */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const t = k.size(2);
    const end = this.length + t;
    this.ensure(layer, end);
    // Written in place and never differentiated: the cache is for generation (see ForwardOptions.cache).
    this.k[layer]!.narrow(2, this.length, t).copy_(k);
    this.v[layer]!.narrow(2, this.length, t).copy_(v);
    return { k: this.k[layer]!.narrow(2, 0, end), v: this.v[layer]!.narrow(2, 0, end) };
  }
  /** Room for positions [0, end) in every layer, for writers that fill all layers in one call (decoderStep). */
  reserve(end: number): void {
    for (let layer = 0; layer < this.k.length; layer++) this.ensure(layer, end);
  }
  advance(t: number): void {
    this.length += t;
  }
  private ensure(layer: number, end: number): void {
    if (end > this.maxLen) throw new Error(`KV cache overflow: ${end} positions, capacity ${this.maxLen}`);
    if (end > this.k[layer]!.size(2)) this.grow(layer, Math.min(this.maxLen, Math.ceil(end / GROW_BY) * GROW_BY));
  }
  /** Reallocates one layer's K and V with room for `capacity` positions, keeping the filled ones. */
  private grow(layer: number, capacity: number): void {
    const shape = [...this.shape];
    shape[2] = capacity;
    for (const side of [this.k, this.v]) {
      const old = side[layer]!;
      const next = keep(empty(shape, this.opts));
      if (this.length > 0) next.narrow(2, 0, this.length).copy_(old.narrow(2, 0, this.length));
      old.dispose();
      side[layer] = next;
    }
  }
  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}
