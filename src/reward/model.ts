/**
 * Reward (and value) models: a language-model backbone from the model layer plus a linear scalar head,
 * as Hugging Face's `*ForSequenceClassification` with num_labels = K: the head is `score` (no bias) and
 * the backbone keeps its own names (`model.*` for Llama, `transformer.*` for GPT-2), so a checkpoint
 * loads in either library by key copy. K > 1 heads on one backbone form an ensemble (ensemble.ts).
 *
 * Batches are left-padded (as generation's are), so a sequence's last token is always at column T−1:
 * the sequence reward is the head at the last position; per-token values are the head everywhere.
 */
import type { Generator, Tensor } from '../tensor/index.js';
import { Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import type { CausalLM, ModelConfigCommon } from '../models/common.js';
import { positionsFromMask } from '../generate/generate.js';

export interface RewardHeadConfig {
  /** Number of scalar heads (ensemble members sharing the backbone). */
  heads: number;
  /** Reward statistics on a reference set, stored after training for normalisation in RL. */
  mean?: number;
  std?: number;
}

/** A causal LM's backbone with K scalar heads on the last token: the reward model of `rlhf train rm`. */
export class RewardModel extends Module {
  readonly score: Linear;
  /** The backbone's children are registered here directly (model.*, transformer.*): HF's layout. */
  constructor(readonly backbone: CausalLM, readonly head: RewardHeadConfig, opts: { generator?: Generator } = {}) {
    super();
    for (const [name, child] of backbone.namedChildren()) {
      if (name !== 'lm_head') this.child(name, child);
    }
    const c = backbone.config;
    // HF initialises `score` like every Linear: normal(0, initializer_range); no bias.
    this.score = this.child('score', new Linear(c.hiddenSize, head.heads, { bias: false, std: 0.02, generator: opts.generator }));
  }

  get config(): ModelConfigCommon {
    return this.backbone.config;
  }

  /** Per-token head outputs (B, T, K) for left-padded ids (B, T) with mask (B, T). */
  tokenScores(ids: Tensor, mask: Tensor | null): Tensor {
    const h = this.backbone.hidden(ids, { attentionMask: mask, positionIds: mask ? positionsFromMask(mask) : null }); // (B, T, C)
    return this.score.forward(h);
  }

  /** Sequence rewards (B, K): the heads at the last (non-padding, by left padding) position. */
  rewards(ids: Tensor, mask: Tensor | null): Tensor {
    const h = this.backbone.hidden(ids, { attentionMask: mask, positionIds: mask ? positionsFromMask(mask) : null }); // (B, T, C)
    return this.score.forward(h.select(1, h.size(1) - 1)); // (B, K)
  }
}
