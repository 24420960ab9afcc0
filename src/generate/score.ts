/**
 * Teacher-forced scoring: log p(token_t | tokens_<t) of given sequences in one batched forward pass —
 * the inner loop of PPO, GRPO and DPO. Sequences are left-padded; the result is aligned so that column
 * j scores token j+1.
 */
import { type Tensor, tensor } from '../tensor/index.js';
import type { CausalLM } from '../models/common.js';
import { leftPad, positionsFromMask } from './generate.js';

/**
 * Per-token log-probs of `ids` (B, T) under the model: (B, T−1), entry [b, j] = log p(ids[b, j+1] |
 * ids[b, ≤j]). Computed as gather(logits) − logsumexp(logits), without materialising a (B, T, V)
 * log-softmax. Padding positions get garbage: multiply by a mask.
 */
export function tokenLogprobs(model: CausalLM, ids: Tensor, mask: Tensor | null): Tensor {
  const positions = mask ? positionsFromMask(mask) : null;
  const logits = model.forward(ids, { attentionMask: mask, positionIds: positions }).float(); // (B, T, V)
  const t = ids.size(1);
  const pred = logits.narrow(1, 0, t - 1); // (B, T-1, V)
  const target = ids.narrow(1, 1, t - 1).unsqueeze(-1); // (B, T-1, 1)
  return pred.gather(-1, target).squeeze(-1).sub(pred.logsumexp(-1));
}

/** Teacher-forced log-probs of completion tokens (B, A) and their mask. */
export interface ScoredBatch {
  /** (B, A) log-probs of the completion tokens, zero on padding. */
  logprobs: Tensor;
  /** (B, A) 1 for completion tokens, 0 for padding (float32). */
  mask: Tensor;
}

/**
 * Log-probs of completions given prompts, batched: prompt+completion are left-padded together and the
 * completion part is returned right-padded to the longest completion A (the layout generate's
 * completionBatch uses), so scoring a generated completion reproduces generation's log-probs.
 */
export function scoreCompletions(model: CausalLM, prompts: readonly (readonly number[])[], completions: readonly (readonly number[])[]): ScoredBatch {
  if (prompts.length !== completions.length) throw new Error(`${prompts.length} prompts but ${completions.length} completions`);
  const seqs = prompts.map((p, i) => [...p, ...completions[i]!]);
  const width = Math.max(...seqs.map((s) => s.length));
  const a = Math.max(1, ...completions.map((c) => c.length));
  const { ids, mask } = leftPad(seqs, width);
  const lp = tokenLogprobs(model, ids, mask); // (B, width-1)
  // Row b's completion starts at column width − |c_b| − 1 of lp; gather it into columns 0..A-1.
  const b = seqs.length;
  const index = new BigInt64Array(b * a);
  const m = new Float32Array(b * a);
  completions.forEach((c, i) => {
    const start = width - c.length - 1;
    for (let j = 0; j < a; j++) {
      index[i * a + j] = BigInt(j < c.length ? start + j : 0);
      m[i * a + j] = j < c.length ? 1 : 0;
    }
  });
  const idx = tensor(index, { shape: [b, a] });
  const maskT = tensor(m, { shape: [b, a] });
  return { logprobs: lp.gather(1, idx).mul(maskT), mask: maskT };
}
