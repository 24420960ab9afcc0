/**
 * Turning next-token logits (B, V) into tokens. The warpers (temperature, top-k, top-p) shape the
 * sampling distribution only; the log-probabilities reported for a sampled token are always those of
 * the raw model (softmax of the unmodified logits), which is what RL's importance ratios need.
 */
import { sampleCdf, sampleLogits, type Tensor, gatherLogprobs } from '../tensor/index.js';

/** Temperature, top-k and top-p (0 and 1 switch the filters off; temperature 0 is greedy). */
export interface SamplingOptions {
  /** 0 means greedy (argmax, lowest id on ties). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = off). Holtzman et al. 2020. */
  topP?: number;
}

export function validateSampling(o: SamplingOptions): Required<SamplingOptions> {
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  if (!(Number.isFinite(temperature) && temperature >= 0)) throw new Error(`temperature must be >= 0, got ${temperature}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new Error(`top_k must be a non-negative integer, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`top_p must be in (0, 1], got ${topP}`);
  return { temperature, topK, topP };
}

/** Logits with everything outside the top k set to −∞. */
export function topKFilter(logits: Tensor, k: number): Tensor {
  if (k <= 0 || k >= logits.size(-1)) return logits;
  const kth = logits.topk(k, { dim: -1 }).values.narrow(-1, k - 1, 1); // (B, 1)
  return logits.maskedFill(logits.lt(kth), -Infinity);
}

/** Logits with everything outside the nucleus set to −∞; the most likely token always stays. */
export function topPFilter(logits: Tensor, p: number): Tensor {
  if (p >= 1) return logits;
  const { values, indices } = logits.sort({ dim: -1, descending: true });
  const probs = values.softmax(-1);
  // Drop a token when the mass strictly before it already reaches p.
  const before = probs.cumsum(-1).sub(probs);
  const dropSorted = before.ge(p);
  const drop = dropSorted.scatter(-1, indices, dropSorted);
  return logits.maskedFill(drop, -Infinity);
}

/**
 * Samples one token per row from softmax(logits) by inverting the CDF at the given uniforms (one per
 * row, from each sequence's own stream): index = #{j : cdf_j ≤ u · total}, i.e. token j owns
 * [cdf_{j−1}, cdf_j).
 */
export function sampleRows(logits: Tensor, uniforms: Float64Array): Tensor {
  return sampleCdf(logits.float().softmax(-1), uniforms); // (B,) int64
}

/** Chooses the next token of every row: greedy, or sampled after temperature / top-k / top-p. */
export function chooseTokens(logits: Tensor, o: Required<SamplingOptions>, uniforms: () => Float64Array): Tensor {
  if (o.temperature === 0) return logits.argmax(-1);
  let l = o.temperature === 1 ? logits : logits.div(o.temperature);
  l = topPFilter(topKFilter(l, o.topK), o.topP);
  return sampleRows(l, uniforms());
}

/**
 * The next token of every row and its log-prob under the raw model (softmax of the unmodified logits).
 * On float32 CPU logits without top-k / top-p, one native pass per row (sampleLogits: the same
 * inverse-CDF rule on the same uniforms, with its own float32 exp); with the filters, tensor ops choose
 * and gatherLogprobs scores with sampleLogits' arithmetic, so a token gets the same log-prob either way.
 * Elsewhere (CUDA, 16-bit logits) tensor ops throughout.
 */
export function nextTokens(logits: Tensor, o: Required<SamplingOptions>, uniforms: () => Float64Array): { tokens: BigInt64Array; logprobs: Float32Array } {
  const native = logits.dtype === 'float32' && logits.device === 'cpu';
  if (native && o.topK === 0 && o.topP === 1) {
    const { tokens, logprobs } = sampleLogits(logits, o.temperature, o.temperature === 0 ? new Float64Array(logits.size(0)) : uniforms());
    return { tokens: tokens.data() as BigInt64Array, logprobs: logprobs.data() as Float32Array };
  }
  const next = chooseTokens(logits, o, uniforms);
  const logp = native ? gatherLogprobs(logits, next) : logits.float().logSoftmax(-1).gather(-1, next.unsqueeze(-1)).squeeze(-1);
  return { tokens: next.data() as BigInt64Array, logprobs: logp.data() as Float32Array };
}
