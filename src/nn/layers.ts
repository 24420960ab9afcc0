/**
 * The layers the model families share. Parameter names follow torch.nn (weight, bias), so Hugging Face
 * checkpoints load by key. Initialisation follows the reference models (HF `_init_weights`): normal(0, σ)
 * weights (σ = initializer_range, 0.02 by default), zero biases, unit norm weights.
 */
import {
  dropout, embedding, type DType, type Generator, layerNorm, linear, normal_, ones, rmsNorm, type Tensor, zeros,
} from '../tensor/index.js';
import { Module } from './module.js';

export interface InitOptions {
  /** Standard deviation of the normal init (HF's initializer_range). */
  std?: number;
  dtype?: DType;
  generator?: Generator;
}

/** A low-rank update a Linear adds to its output (src/nn/lora.ts); not a child, so the layer's state dict stays the base's. */
export interface LinearAdapter {
  /** Whether the update is added now (false while adapters are disabled, or merged into the weight). */
  readonly active: boolean;
  /** The update for input x (..., in): (..., out). */
  forward(x: Tensor): Tensor;
}

/** y = x Wᵀ + b, W (out, in), plus an attached adapter's update while it is active. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** A LoRA adapter attached by src/nn/lora.ts (null: none). */
  adapter: LinearAdapter | null = null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: InitOptions & { bias?: boolean } = {}) {
    super();
    const dtype = opts.dtype ?? 'float32';
    this.weight = this.param('weight', normal_(zeros([outFeatures, inFeatures], { dtype }), 0, opts.std ?? 0.02, opts.generator));
    this.bias = opts.bias ?? true ? this.param('bias', zeros([outFeatures], { dtype })) : null;
  }
  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias);
    return this.adapter?.active ? y.add(this.adapter.forward(x)) : y;
  }
  /** Whether the output is more than x Wᵀ + b now (fused native paths that read the weight must not run). */
  get adapted(): boolean {
    return this.adapter?.active ?? false;
  }
}

/** A lookup table (num, dim). */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number, opts: InitOptions = {}) {
    super();
    this.weight = this.param('weight', normal_(zeros([num, dim], { dtype: opts.dtype ?? 'float32' }), 0, opts.std ?? 0.02, opts.generator));
  }
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}

/** Layer normalisation over the last dimensions, with weight and bias (torch.nn.LayerNorm). */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly dim: number, readonly eps = 1e-5, opts: { bias?: boolean; dtype?: DType } = {}) {
    super();
    const dtype = opts.dtype ?? 'float32';
    this.weight = this.param('weight', ones([dim], { dtype }));
    this.bias = opts.bias ?? true ? this.param('bias', zeros([dim], { dtype })) : null;
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }
}

/** RMSNorm (Zhang & Sennrich 2019) as Llama uses it: x / √(mean(x²) + ε) · w, in float32 for 16-bit x. */
export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-6, opts: { dtype?: DType } = {}) {
    super();
    this.weight = this.param('weight', ones([dim], { dtype: opts.dtype ?? 'float32' }));
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

/** Dropout with probability p while training; the identity in eval mode. */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return this.p === 0 || !this.training ? x : dropout(x, this.p, true);
  }
}
