/**
 * Teacher-forced scoring: log p(token_t | tokens_<t) of given sequences in one batched forward pass —
 * the inner loop of PPO, GRPO and DPO. Sequences are left-padded; the result is aligned so that column
 * j scores token j+1.
 */
import { cat, scope, type Tensor, tensor } from '../tensor/index.js';
import type { CausalLM } from '../models/common.js';
import { leftPad, positionsFromMask } from './generate.js';

let logitsBudget = 256 * 2 ** 20;
/**
 * The most bytes of float32 logits headLogprobs holds at once (default 256 MiB): positions are taken in
 * chunks of ⌊budget / (4 · B · V)⌋. At Qwen3's 151,936-token vocabulary the logits of 64 × 128 tokens are
 * 5 GB; in chunks a no-gradient pass (scoring, the reference) never holds more than the budget. `bytes`
 * sets it; returns the value in force.
 */
export function logitsChunkBudget(bytes?: number): number {
  if (bytes !== undefined) {
    if (!(Number.isFinite(bytes) && bytes > 0)) throw new Error(`logits chunk budget must be a positive number of bytes, got ${bytes}`);
    logitsBudget = bytes;
  }
  return logitsBudget;
}

/**
 * log p(targets) (B, T) from final hidden states h (B, T, C) through the model's LM head, and with
 * `entropy` each position's entropy H = logsumexp(z) − Σ softmax(z)·z, computed over chunks of positions
 * (logitsChunkBudget) so the (B, T, V) logits are never whole: gather(z) − logsumexp(z), no log-softmax.
 * Under autograd each chunk's logits stay saved for the backward pass (recomputing them there is not built),
 * but the log-softmax and softmax temporaries are a chunk's at a time.
 */
export function headLogprobs(model: CausalLM, h: Tensor, targets: Tensor, opts: { entropy?: boolean } = {}): { logprobs: Tensor; entropy: Tensor | null } {
  const [b, t] = h.shape as [number, number];
  const chunk = Math.max(1, Math.floor(logitsBudget / (4 * b * model.config.vocabSize)));
  const lps: Tensor[] = [];
  const hs: Tensor[] = [];
  for (let s = 0; s < t; s += chunk) {
    const n = Math.min(chunk, t - s);
    const [lp, ent] = scope(() => {
      const z = model.logits(h.narrow(1, s, n)).float(); // (B, n, V)
      const lse = z.logsumexp(-1); // (B, n)
      const logp = z.gather(-1, targets.narrow(1, s, n).unsqueeze(-1)).squeeze(-1).sub(lse);
      return [logp, opts.entropy ? lse.sub(z.softmax(-1).mul(z).sum(-1)) : null] as const;
    });
    lps.push(lp);
    if (ent) hs.push(ent);
  }
  const join = (xs: Tensor[]) => (xs.length === 1 ? xs[0]! : cat(xs, 1));
  return { logprobs: join(lps), entropy: opts.entropy ? join(hs) : null };
}

/**
 * Per-token log-probs of `ids` (B, T) under the model: (B, T−1), entry [b, j] = log p(ids[b, j+1] |
 * ids[b, ≤j]), through headLogprobs (chunks of positions, no whole logits). Padding positions get
 * garbage: multiply by a mask.
 */
export function tokenLogprobs(model: CausalLM, ids: Tensor, mask: Tensor | null): Tensor {
  const positions = mask ? positionsFromMask(mask) : null;
  const h = model.hidden(ids, { attentionMask: mask, positionIds: positions }); // (B, T, C)
  const t = ids.size(1);
  return headLogprobs(model, h.narrow(1, 0, t - 1), ids.narrow(1, 1, t - 1)).logprobs; // (B, T−1)
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
