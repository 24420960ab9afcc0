/**
 * Tolerances derived from float32 arithmetic, for tests where two computations of the same quantity must
 * agree up to rounding (cache vs recompute, batch vs alone, fused vs layer by layer, micro-batches vs one
 * batch). A bound here holds for ANY summation order — any BLAS, kernel path (vector or scalar) or thread
 * count — because it rests on the worst case, not on what one processor happened to give:
 *
 *   a float32 sum (or dot product) of n terms differs from the exact one by at most γ_n · Σ|terms|, with
 *   γ_n = n·u / (1 − n·u) and u = 2⁻²⁴ (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1);
 *   two orders of the same sum therefore differ by at most 2·γ_n · Σ|terms|.
 *
 * Through a network, first-order error analysis adds the rounding of every reduction on the path to an
 * output: with norm layers keeping the residual stream's scale, a logit computed twice differs by at most
 * 2·γ_K · M, K the reduction lengths along the path added up and M the scale of the terms (we take the
 * larger of 1 and the largest |logit|: the logits are the largest values on the path in these models).
 * Such bounds are loose (typical errors grow like √K·u, not K·u) but they never depend on the machine;
 * the tests keep their teeth through separate checks that a wrong computation moves far beyond them.
 */

import type { CausalLM } from '../src/models/common.js';
import type { LlamaConfig } from '../src/models/llama.js';
import type { Gpt2Config } from '../src/models/gpt2.js';
import { noGrad, scope, tensor } from '../src/tensor/index.js';

/** float32 unit roundoff. */
export const U32 = 2 ** -24;

/** Higham's γ_n: the relative error bound of an n-term float32 sum or dot product in any order. */
export function gamma(n: number, u = U32): number {
  if (n * u >= 1) throw new Error(`γ_${n} is unbounded at u = ${u}`);
  return (n * u) / (1 - n * u);
}

/** How far two float32 evaluations (any orders) of an n-term sum with Σ|terms| ≤ absSum can differ. */
export function sumBound(n: number, absSum: number): number {
  return 2 * gamma(n) * absSum;
}

/** The reduction lengths of a decoder that matter for rounding (a Llama-family or GPT-2 config). */
export interface DecoderDims {
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  headDim: number;
}

/**
 * The summed reduction lengths along the path from the input to one logit, attending over `keys`
 * positions: per layer a norm (hidden), q/k/v (hidden), scores (headDim), the softmax's sum and the
 * value mix (keys each), o_proj (heads·headDim), a norm (hidden), gate/up (hidden) and down
 * (intermediate); then the final norm and the head (hidden each).
 */
export function decoderPathLength(d: DecoderDims, keys: number): number {
  const perLayer = 4 * d.hidden + d.headDim + 2 * keys + d.heads * d.headDim + d.intermediate;
  return d.layers * perLayer + 2 * d.hidden;
}

/**
 * How far two float32 log_softmax computations of the same logits (row length V, |z| ≤ maxAbs) may differ:
 * the normaliser's sum of V positive terms is off by a relative γ_V on each side (so its log by γ_V), and
 * z − max − log(sum) rounds a few times at the logits' magnitude.
 */
export function logSoftmaxBound(vocab: number, maxAbs: number): number {
  return 2 * gamma(vocab) + 4 * U32 * Math.max(1, maxAbs);
}

/** How far a logit may move between two computations that differ only in their order of summation. */
export function logitBound(d: DecoderDims, keys: number, maxAbsLogit: number): number {
  return sumBound(decoderPathLength(d, keys), Math.max(1, maxAbsLogit));
}

/**
 * The same for a log-probability: log_softmax(z)_i = z_i − logsumexp(z) moves by at most twice the
 * largest logit move (logsumexp is 1-Lipschitz in the max norm), plus logsumexp's own rounding: its sum
 * over the vocabulary has positive terms, so it is off by a relative γ_V at most, and its log by γ_V.
 */
export function logprobBound(d: DecoderDims, keys: number, maxAbsLogit: number, vocab: number): number {
  return 2 * logitBound(d, keys, maxAbsLogit) + 2 * gamma(vocab);
}

/** A Llama-family config's reduction lengths. */
export function llamaDims(c: LlamaConfig): DecoderDims {
  return { layers: c.numLayers, hidden: c.hiddenSize, intermediate: c.intermediateSize, heads: c.numHeads, headDim: c.headDim };
}

/** A GPT-2 config's: its block has the same reductions (LayerNorms where Llama has RMSNorms, fc for gate/up). */
export function gpt2Dims(c: Gpt2Config): DecoderDims {
  return { layers: c.numLayers, hidden: c.hiddenSize, intermediate: c.innerSize, heads: c.numHeads, headDim: c.headDim };
}

/** stories260K (assets/stories260k/config.json). */
export const STORIES260K: DecoderDims = { layers: 5, hidden: 64, intermediate: 172, heads: 8, headDim: 8 };
export const STORIES260K_VOCAB = 512;

/**
 * A bound on every logit a Llama-family model can give, from its weights alone: the final RMSNorm's output
 * has RMS 1 before its gain g, so its 2-norm is at most √D·max|g|, and logit v = w_v · that is at most
 * ‖w_v‖₂·√D·max|g| (Cauchy–Schwarz). M for a bound when the sequences are not at hand.
 */
export function llamaLogitScale(model: CausalLM): number {
  const sd = model.stateDict();
  const g = sd.get('model.norm.weight');
  const w = sd.get('lm_head.weight') ?? sd.get('model.embed_tokens.weight');
  if (!g || !w) throw new Error('llamaLogitScale: not a Llama-family state dict (no model.norm.weight or head)');
  return scope(() => w.square().sum(1).sqrt().max().item() * Math.sqrt(g.shape[0]!) * g.abs().max().item());
}

/** The largest |logit| a model gives over `rows` (token ids, each from BOS): M for the bounds above. */
export function maxAbsLogit(model: CausalLM, rows: readonly (readonly number[])[]): number {
  return scope(() => noGrad(() => Math.max(...rows.map((r) => model.forward(tensor([[...r]], { dtype: 'int64' })).abs().max().item()))));
}

/**
 * How far a parameter's gradient may move between two float32 evaluations in other orders (one batch
 * against micro-batches, another kernel path or thread count): the forward's reductions, the backward's
 * mirror of them, and the sum over the batch's `tokens`, with the largest gradient as the terms' scale.
 */
export function gradientBound(d: DecoderDims, keys: number, tokens: number, maxAbsGrad: number): number {
  return sumBound(2 * decoderPathLength(d, keys) + tokens, maxAbsGrad);
}

/** logprobBound for completions of prompts (token ids from BOS), with M measured on the whole sequences. */
export function completionBound(model: CausalLM, d: DecoderDims, prompts: readonly (readonly number[])[], completions: readonly (readonly number[])[]): number {
  const rows = completions.map((c, i) => [...prompts[i]!, ...c]);
  return logprobBound(d, Math.max(...rows.map((r) => r.length)), maxAbsLogit(model, rows), model.config.vocabSize);
}
