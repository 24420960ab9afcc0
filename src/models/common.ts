/**
 * What every causal LM family shares: the forward options, the attention mask, grouped-query attention
 * over a cache, and the CausalLM interface the generation and RL layers program against.
 */
import { arange, full, groupedAttention as fusedAttention, type Tensor } from '../tensor/index.js';
import type { Module } from '../nn/module.js';
import type { KVCache } from './cache.js';

/** A forward pass's options: the attention mask (left padding), position ids, and the KV cache for incremental decoding. */
export interface ForwardOptions {
  /**
   * (B, L) with 1 for real tokens and 0 for padding, L = cached length + T (left padding). Omit when
   * there is no padding.
   */
  attentionMask?: Tensor | null;
  /** (B, T) positions; defaults to cached length + 0..T-1 (correct without padding). */
  positionIds?: Tensor | null;
  /**
   * Incremental decoding: new keys/values are written into it and the result attends over it. The
   * cache is written outside autograd, so a cached forward does not backpropagate into past keys and
   * values: use it for generation, never for training.
   */
  cache?: KVCache | null;
  /**
   * A ready additive attention bias (B, 1, T, L) (0 = attend, −∞ = not), used instead of building one
   * from attentionMask: generation keeps one per run and narrows it each decode step.
   */
  bias?: Tensor | null;
  /** Compute logits for the last position only ((B, 1, V)): what sampling needs. */
  lastOnly?: boolean;
}

/** The interface generation, scoring, reward heads and trainers use. */
export interface CausalLM extends Module {
  readonly config: ModelConfigCommon;
  /** Final (normed) hidden states (B, T, C). */
  hidden(ids: Tensor, opts?: ForwardOptions): Tensor;
  /** Next-token logits (B, T, V), or (B, 1, V) with lastOnly. */
  forward(ids: Tensor, opts?: ForwardOptions): Tensor;
  /** The LM head alone: logits (..., V) of hidden states (..., C) — lets RL read logits and values from one backbone pass. */
  logits(hidden: Tensor): Tensor;
  /** A KV cache sized for this model. */
  newCache(batch: number, maxLen: number): KVCache;
  /** hidden() cut at its block boundaries, for gradient checkpointing (src/models/checkpointing.ts). */
  stages(ids: Tensor, opts?: ForwardOptions): ModelStages;
}

/**
 * A forward pass as its parts: hidden(ids) = finish(blocks[L−1](… blocks[0](embed()))). Each part reads
 * only its input and constants (positions, masks), so it can run again with the same result: what
 * recomputing a block in backward needs.
 */
export interface ModelStages {
  /** The embeddings (B, T, C). */
  embed(): Tensor;
  /** Each transformer block: (B, T, C) → (B, T, C). */
  blocks: ((x: Tensor) => Tensor)[];
  /** The final norm: the hidden states hidden() returns. */
  finish(x: Tensor): Tensor;
}

/** The facts about any architecture that the layers above need. */
export interface ModelConfigCommon {
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  maxPositions: number;
  bosTokenId: number | null;
  /** Every id that ends a sequence (stories260K: both BOS 1 and EOS 2). */
  eosTokenIds: number[];
  padTokenId: number | null;
}

/**
 * The additive attention mask (B, 1, T, L): 0 where query t may attend key j (j ≤ past + t and key j
 * is not padding), −∞ elsewhere. A query whose keys are all padding (a pad position in a left-padded
 * row) may attend itself, so softmax never sees an all −∞ row: its NaN would leak through 0·NaN in the
 * next matmul even though real tokens never attend pads.
 */
export function attentionBias(padMask: Tensor | null, batch: number, t: number, past: number, like: Tensor): Tensor {
  const l = past + t;
  if (padMask && (padMask.ndim !== 2 || padMask.size(0) !== batch || padMask.size(1) !== l)) {
    throw new Error(`attentionMask must be (batch ${batch}, cached + new positions ${l}), got [${padMask.shape.join(', ')}]`);
  }
  const device = like.device;
  const q = arange(past, l, 1, { device }).unsqueeze(1); // (T, 1)
  const k = arange(0, l, 1, { device }).unsqueeze(0); // (1, L)
  let allowed = k.le(q).reshape(1, 1, t, l); // causal (1, 1, T, L)
  if (padMask) {
    const real = padMask.bool().reshape(batch, 1, 1, l); // (B, 1, 1, L)
    allowed = allowed.logicalAnd(real).logicalOr(k.eq(q).reshape(1, 1, t, l)); // (B, 1, T, L)
  }
  return full(allowed.shape, 0, { dtype: like.dtype, device }).maskedFill(allowed.logicalNot(), -Infinity);
}

/**
 * The bias of a sliding-window layer: `base` (the causal bias with padding, or causal alone when null)
 * with −∞ added where key j lies W or more positions behind query i = past + t (HF's sliding_window_overlay,
 * `kv_idx > q_idx − W`: a query sees its W most recent positions, itself included). Positions count cache
 * slots, padding included, as transformers counts them. (B | 1, 1, T, L).
 */
export function windowBias(base: Tensor | null, t: number, past: number, window: number, like: Tensor): Tensor {
  const l = past + t;
  const device = like.device;
  const q = arange(past, l, 1, { device }).unsqueeze(1); // (T, 1)
  const k = arange(0, l, 1, { device }).unsqueeze(0); // (1, L)
  const outside = k.le(q.sub(window)).reshape(1, 1, t, l); // (1, 1, T, L)
  return (base ?? attentionBias(null, 1, t, past, like)).maskedFill(outside, -Infinity);
}

/**
 * Attention for the model families: q (B, nh, T, hs) over k/v (B, nkv, L, hs), nh = nkv · g, query head
 * h reading kv head ⌊h/g⌋ (HF's repeat_kv, without repeating anything). A `bias` from attentionBias
 * already holds the causal mask; without one, `causal` masks the future.
 */
export function groupedAttention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | null, causal: boolean): Tensor {
  return fusedAttention(q, k, v, { bias, causal: causal && bias === null });
}

/** Token ids must be integers inside the vocabulary, and positions inside the model's range. */
export function checkInput(ids: Tensor, c: ModelConfigCommon, past: number, positionIds?: Tensor | null): void {
  if (ids.ndim !== 2) throw new Error(`input ids must be (batch, time), got shape [${ids.shape.join(', ')}]`);
  if (ids.dtype !== 'int64' && ids.dtype !== 'int32') throw new Error(`input ids must be int64 or int32, got ${ids.dtype}`);
  const t = ids.size(1);
  if (past + t > c.maxPositions) throw new Error(`sequence of ${past + t} positions exceeds the model's maximum of ${c.maxPositions}`);
  if (ids.numel === 0) return;
  const [lo, hi] = ids.extrema();
  if (lo < 0 || hi >= c.vocabSize) throw new Error(`token id ${lo < 0 ? lo : hi} is outside the vocabulary (size ${c.vocabSize})`);
  if (positionIds) {
    if (positionIds.shape.join() !== ids.shape.join()) throw new Error(`positionIds [${positionIds.shape.join(', ')}] must match input ids [${ids.shape.join(', ')}]`);
    const [plo, phi] = positionIds.extrema();
    if (plo < 0 || phi >= c.maxPositions) throw new Error(`position ${plo < 0 ? plo : phi} is outside the model's range [0, ${c.maxPositions})`);
  }
}

/** The attention bias a forward should use: the given one, one built from the padding mask, or none (causal flag). */
export function biasFor(opts: ForwardOptions, b: number, t: number, past: number, like: Tensor): Tensor | null {
  if (opts.bias) return opts.bias;
  return opts.attentionMask || past > 0 ? attentionBias(opts.attentionMask ?? null, b, t, past, like) : null;
}

/**
 * What every family's hidden() starts with: validate the input, then the batch and time sizes, the
 * cache and its length, and the positions (given, or past + 0..T−1 for every row).
 */
export function forwardInputs(ids: Tensor, config: ModelConfigCommon, opts: ForwardOptions): { b: number; t: number; cache: KVCache | null; past: number; positions: Tensor } {
  const cache = opts.cache ?? null;
  const past = cache ? cache.length : 0;
  checkInput(ids, config, past, opts.positionIds);
  const [b, t] = ids.shape as [number, number];
  const positions = opts.positionIds ?? arange(past, past + t, 1, { device: ids.device }).unsqueeze(0).expand(b, t); // (B, T)
  return { b, t, cache, past, positions };
}
