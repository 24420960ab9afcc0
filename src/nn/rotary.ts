/**
 * Rotary position embeddings (Su et al. 2021, RoFormer) in Hugging Face's "rotate half" layout: the
 * head dimension splits into halves (i, i + hs/2) rotated together with frequency θ^(-2i/hs).
 * (llama2.c rotates adjacent pairs (2i, 2i+1) instead; its converter permutes wq/wk rows to match.)
 * Supports `rope_scaling` of type 'linear' and 'llama3' (Llama 3.1's frequency-dependent scaling).
 */
import { embedding, rotary, tensor, type Tensor } from '../tensor/index.js';
import { Module } from './module.js';

export interface RopeScaling {
  rope_type?: string;
  /** older configs say `type` */
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

/** The inverse frequencies θ^(-2i/d), i < d/2, with the configured scaling applied. */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling?: RopeScaling | null): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  const kind = scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  if (kind === 'default') return inv;
  const factor = scaling!.factor;
  if (!(typeof factor === 'number' && factor > 0)) throw new Error(`rope_scaling.factor must be a positive number, got ${String(factor)}`);
  if (kind === 'linear') return inv.map((f) => f / factor);
  if (kind === 'llama3') {
    const { low_freq_factor: lo = 1, high_freq_factor: hi = 4, original_max_position_embeddings: old = 8192 } = scaling!;
    const lowWavelen = old / lo;
    const highWavelen = old / hi;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (old / wavelen - lo) / (hi - lo);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new Error(`rope_scaling type '${kind}' is not supported (supported: default, linear, llama3)`);
}

/** Precomputed cos and sin tables (maxPositions, headDim); `apply` rotates q or k at given positions. */
export class Rotary extends Module {
  private readonly cosTable: Tensor;
  /** sin with the first half negated, so rotate_half(x)·sin = swapHalves(x)·sinSigned */
  private readonly sinSigned: Tensor;
  constructor(readonly headDim: number, maxPositions: number, theta = 10000, scaling?: RopeScaling | null) {
    super();
    if (headDim % 2 !== 0) throw new Error(`rotary embeddings need an even head dimension, got ${headDim}`);
    const inv = ropeInverseFrequencies(headDim, theta, scaling);
    const half = headDim / 2;
    const cos = new Float32Array(maxPositions * headDim);
    const sin = new Float32Array(maxPositions * headDim);
    for (let p = 0; p < maxPositions; p++) {
      for (let i = 0; i < half; i++) {
        // HF computes the angle in float32; doing it in float64 differs by < 1 ulp of the result.
        const a = p * inv[i]!;
        const c = Math.cos(a);
        const s = Math.sin(a);
        cos[p * headDim + i] = c;
        cos[p * headDim + i + half] = c;
        sin[p * headDim + i] = -s;
        sin[p * headDim + i + half] = s;
      }
    }
    this.cosTable = this.buffer('cos', tensor(cos, { shape: [maxPositions, headDim] }), false);
    this.sinSigned = this.buffer('sin', tensor(sin, { shape: [maxPositions, headDim] }), false);
  }
  get maxPositions(): number {
    return this.cosTable.size(0);
  }
  /** cos and sin for `positions` (B, T) as (B, 1, T, hs), ready to broadcast over heads. */
  tables(positions: Tensor): { cos: Tensor; sin: Tensor } {
    return { cos: embedding(this.cosTable, positions).unsqueeze(1), sin: embedding(this.sinSigned, positions).unsqueeze(1) };
  }
  /** x (B, nh, T, hs) rotated: x·cos + rotate_half(x)·sin. */
  static rotate(x: Tensor, t: { cos: Tensor; sin: Tensor }): Tensor {
    return rotary(x, t.cos, t.sin);
  }
}
