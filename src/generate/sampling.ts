/**
 * Turning next-token logits (B, V) into tokens. The warpers (temperature, top-k, top-p) shape the
 * sampling distribution only; the log-probabilities reported for a sampled token are always those of
 * the raw model (softmax of the unmodified logits), which is what RL's importance ratios need.
 */
import { sampleCdf, type Tensor } from '../tensor/index.js';

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
